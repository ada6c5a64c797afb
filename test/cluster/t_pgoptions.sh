#!/usr/bin/env bash
# test/cluster/t_pgoptions.sh: context forgery through connection options,
# and the shared_preload_libraries requirement.
#
#  - PGOPTIONS='-c tenant_iso.tenant=...' (and options= in a connection
#    string) must make the connection fail, for a switcher, a member and a
#    superuser alike; without it the same roles connect normally.
#  - On a node that does not preload tenant_iso, CREATE EXTENSION tenant_iso
#    and LOAD 'tenant_iso' fail with SQLSTATE 55000 and a hint naming
#    shared_preload_libraries, and leave nothing behind.
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 26

# ---- a node with tenant_iso preloaded
node_init main
node_start main
node_psql main postgres "CREATE DATABASE app"
node_psql main app "
CREATE EXTENSION tenant_iso;
CREATE ROLE pgo_m LOGIN;
CREATE ROLE pgo_pool LOGIN;
SELECT tenant_iso.create_tenant('acme') \\g /dev/null
SELECT tenant_iso.create_tenant('beta') \\g /dev/null
SELECT tenant_iso.add_member('pgo_m', 'acme') \\g /dev/null
SELECT tenant_iso.grant_switch('pgo_pool') \\g /dev/null
CREATE TABLE notes (tenant_id text NOT NULL, body text);
INSERT INTO notes VALUES ('acme', 'a1'), ('beta', 'b1');
SELECT tenant_iso.protect('notes') \\g /dev/null
GRANT SELECT ON notes TO pgo_m, pgo_pool;
"

# controls: the roles connect, and PGOPTIONS itself works
is "$(node_psql_as main pgo_pool app "SELECT coalesce(tenant_iso.current_tenant(), '-')" 2>&1)" "-" \
	"control: pool role connects without a tenant"
is "$(node_psql_as main pgo_m app "SELECT tenant_iso.current_tenant()" 2>&1)" "acme" \
	"control: member role connects in its tenant acme"
is "$(PGOPTIONS='-c work_mem=5MB' node_psql_as main pgo_pool app "SHOW work_mem" 2>&1)" "5MB" \
	"control: PGOPTIONS reaches the server (work_mem=5MB)"

# PGOPTIONS naming the hidden context setting: the connection fails
out=$(PGOPTIONS='-c tenant_iso.tenant=acme' node_psql_as main pgo_pool app \
	"SELECT 'connected:' || coalesce(tenant_iso.current_tenant(), '-')" 2>&1) && rc=0 || rc=$?
is "$rc" 2 "PGOPTIONS -c tenant_iso.tenant=acme: the pool's connection fails (psql exit status 2: no connection)"
like "$out" "tenant context cannot be set directly" "... with 'tenant context cannot be set directly'"
if [[ "$out" != *connected:* ]]; then ok 0 "... and no statement ran"; else ok 1 "... and no statement ran"; fi

out=$(PGOPTIONS='-c tenant_iso.tenant=beta' node_psql_as main pgo_m app "SELECT 'connected'" 2>&1) && rc=0 || rc=$?
is "$rc" 2 "PGOPTIONS -c tenant_iso.tenant=beta: the member's connection fails (psql exit status 2: no connection)"
like "$out" "tenant context cannot be set directly" "... with 'tenant context cannot be set directly'"

out=$(PGOPTIONS='-c tenant_iso.tenant=acme' node_psql main app "SELECT 'connected'" 2>&1) && rc=0 || rc=$?
is "$rc" 2 "PGOPTIONS -c tenant_iso.tenant=acme: even a superuser's connection fails (psql exit status 2: no connection)"
like "$out" "tenant context cannot be set directly" "... with 'tenant context cannot be set directly'"

out=$(PGOPTIONS='-c tenant_iso.tenant=' node_psql_as main pgo_pool app "SELECT 'connected'" 2>&1) && rc=0 || rc=$?
is "$rc" 2 "PGOPTIONS -c tenant_iso.tenant= (empty value): the connection fails (psql exit status 2: no connection)"
like "$out" "tenant context cannot be set directly" "... with 'tenant context cannot be set directly'"

out=$(PGOPTIONS='-c TENANT_ISO.TENANT=acme' node_psql_as main pgo_pool app "SELECT 'connected'" 2>&1) && rc=0 || rc=$?
is "$rc" 2 "PGOPTIONS with the setting name in upper case: the connection fails (psql exit status 2: no connection)"
like "$out" "tenant context cannot be set directly" "... with 'tenant context cannot be set directly'"

out=$(PGOPTIONS='--tenant_iso.tenant=acme' node_psql_as main pgo_pool app "SELECT 'connected'" 2>&1) && rc=0 || rc=$?
is "$rc" 2 "PGOPTIONS --tenant_iso.tenant=acme (long form): the connection fails (psql exit status 2: no connection)"
like "$out" "tenant context cannot be set directly" "... with 'tenant context cannot be set directly'"

# the same through the options keyword of a connection string
out=$("$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
	-d "$(node_connstr main app pgo_pool) options='-c tenant_iso.tenant=acme'" \
	-c "SELECT 'connected'" 2>&1) && rc=0 || rc=$?
is "$rc" 2 "connection string options='-c tenant_iso.tenant=acme': the connection fails (psql exit status 2: no connection)"
like "$out" "tenant context cannot be set directly" "... with 'tenant context cannot be set directly'"

# after all that, normal connections still work and nothing was stored
is "$(node_psql_as main pgo_pool app "
SELECT tenant_iso.set_tenant('beta') \\g /dev/null
SELECT string_agg(body, ',') FROM notes;" 2>&1)" "b1" \
	"the pool still connects, enters beta with set_tenant and sees only beta's note"
is "$(node_psql main app "SELECT count(*) FROM pg_db_role_setting, unnest(setconfig) c WHERE c ILIKE 'tenant_iso.tenant%'")" "0" \
	"no role or database default for tenant_iso.tenant exists"

# ---- a node WITHOUT tenant_iso in shared_preload_libraries
node_init nopreload "shared_preload_libraries = ''"
node_start nopreload
node_psql nopreload postgres "CREATE DATABASE app"
is "$(node_psql nopreload app "SHOW shared_preload_libraries")" "" \
	"nopreload: shared_preload_libraries is empty"
out=$(node_psql nopreload app "\\set VERBOSITY verbose
CREATE EXTENSION tenant_iso;" 2>&1) && rc=0 || rc=$?
is "$rc" 3 "nopreload: CREATE EXTENSION tenant_iso fails (psql exit status 3: the script stopped at an error)"
like "$out" "ERROR: +55000" "... with SQLSTATE 55000"
like "$out" "HINT: .*shared_preload_libraries" "... and a hint naming shared_preload_libraries"
is "$(node_psql nopreload app "SELECT count(*) FROM pg_extension WHERE extname = 'tenant_iso'
	UNION ALL SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_iso'" | tr '\n' ' ')" "0 0 " \
	"nopreload: the failed CREATE EXTENSION left no extension and no schema"
out=$(node_psql nopreload app "\\set VERBOSITY verbose
LOAD 'tenant_iso';" 2>&1) && rc=0 || rc=$?
like "$rc:$out" "^[1-9][0-9]*:.*ERROR: +55000.*shared_preload_libraries" \
	"nopreload: LOAD 'tenant_iso' fails with 55000 naming shared_preload_libraries"

tap_done
