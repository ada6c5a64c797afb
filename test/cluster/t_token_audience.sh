#!/usr/bin/env bash
# test/cluster/t_token_audience.sh: a token is bound to its cluster.
#
# Two independent clusters (different system identifiers) share one master
# key, as a fleet provisioned from one KMS key would, and each has the
# same database "app" with the same tenant "acme".
#  - A token issued by one is refused by the other (28000, "invalid tenant
#    token"), in both directions; each accepts its own tokens.
#  - With the same tenant_iso.token_audience on both (set in the server
#    configuration), a token of one is accepted by the other.
#  - With different audiences it is refused again, and a token issued
#    under the default audience is refused once an audience is configured.
#  - The token never appears in either server's log.
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 16

setup='
CREATE EXTENSION tenant_iso;
CREATE ROLE aud_plain LOGIN;
SELECT tenant_iso.create_tenant($$acme$$) \g /dev/null
CREATE FUNCTION public.try_token(t text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
	PERFORM tenant_iso.set_tenant_token(t);
	RETURN $$entered $$ || tenant_iso.current_tenant();
EXCEPTION WHEN others THEN
	RETURN SQLSTATE || $$: $$ || SQLERRM;
END $f$;
GRANT EXECUTE ON FUNCTION public.try_token(text) TO aud_plain;
'
for n in a b; do
	node_init "$n"
	node_start "$n"
	node_psql "$n" postgres "CREATE DATABASE app"
	node_psql "$n" app "$setup"
done

sys_a=$(node_psql a postgres "SELECT system_identifier FROM pg_control_system()")
sys_b=$(node_psql b postgres "SELECT system_identifier FROM pg_control_system()")
isnt "$sys_a" "$sys_b" "the two clusters have different system identifiers"
is "$(node_psql a postgres "SHOW tenant_iso.master_key_command")" \
	"$(node_psql b postgres "SHOW tenant_iso.master_key_command")" \
	"both clusters take their master key from the same command (same key)"

tok_a=$(node_psql a app "SELECT tenant_iso.issue_token('acme')")
tok_b=$(node_psql b app "SELECT tenant_iso.issue_token('acme')")
like "$tok_a" '^ti2\.' "cluster a issues a ti2 token"

is "$(node_psql_as a aud_plain app "SELECT public.try_token('$tok_a')")" "entered acme" \
	"control: cluster a accepts its own token"
is "$(node_psql_as b aud_plain app "SELECT public.try_token('$tok_b')")" "entered acme" \
	"control: cluster b accepts its own token"
is "$(node_psql_as b aud_plain app "SELECT public.try_token('$tok_a')")" "28000: invalid tenant token" \
	"a token of cluster a replayed into cluster b (same master key, database, tenant) -> 28000"
is "$(node_psql_as a aud_plain app "SELECT public.try_token('$tok_b')")" "28000: invalid tenant token" \
	"a token of cluster b replayed into cluster a -> 28000"

# the same audience on both: tokens are shared on purpose
for n in a b; do
	node_psql "$n" postgres "ALTER SYSTEM SET tenant_iso.token_audience = 'fleet-1'; SELECT pg_reload_conf() \\g /dev/null"
done
sleep 0.5
is "$(node_psql a app "SHOW tenant_iso.token_audience")" "fleet-1" "cluster a: token_audience = fleet-1 (server configuration)"
is "$(node_psql b app "SHOW tenant_iso.token_audience")" "fleet-1" "cluster b: token_audience = fleet-1"
shared_a=$(node_psql a app "SELECT tenant_iso.issue_token('acme')")
shared_b=$(node_psql b app "SELECT tenant_iso.issue_token('acme')")
is "$(node_psql_as b aud_plain app "SELECT public.try_token('$shared_a')")" "entered acme" \
	"same token_audience: cluster b accepts cluster a's token"
is "$(node_psql_as a aud_plain app "SELECT public.try_token('$shared_b')")" "entered acme" \
	"same token_audience: cluster a accepts cluster b's token"
is "$(node_psql_as a aud_plain app "SELECT public.try_token('$tok_a')")" "28000: invalid tenant token" \
	"cluster a's token of the default audience is refused once an audience is configured"

# different audiences: refused again
node_psql b postgres "ALTER SYSTEM SET tenant_iso.token_audience = 'fleet-2'; SELECT pg_reload_conf() \\g /dev/null"
sleep 0.5
is "$(node_psql_as b aud_plain app "SELECT public.try_token('$shared_a')")" "28000: invalid tenant token" \
	"different token_audience (fleet-1 vs fleet-2): cluster a's token -> 28000 on b"
is "$(node_psql_as b aud_plain app "SET tenant_iso.token_audience = 'fleet-1'" 2>&1 | grep -c 'permission denied' || true)" "1" \
	"a non-superuser cannot choose the audience (token_audience is superuser-only)"

for n in a b; do
	if grep -qF -e "${tok_a:4:24}" -e "${shared_a:4:24}" "$(node_log "$n")"; then
		ok 1 "cluster $n: no token in the server log"
	else
		ok 0 "cluster $n: no token in the server log"
	fi
done

tap_done
