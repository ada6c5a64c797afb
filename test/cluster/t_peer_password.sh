#!/usr/bin/env bash
# test/cluster/t_peer_password.sh: tenant_iso.peer_password_command, the way
# peer connections get a password without one stored in tenant_iso.peers.
#
# Two nodes: "peer" asks role ti_pw for a SCRAM password on 127.0.0.1 (an
# hba line before the trust ones); "here" connects to it with _peer_query()
# (the monitor's call) and diff_peer().  The command is a script that logs
# its arguments and prints the password (or a wrong one, or nothing).
# Attacks: a conninfo whose database and host carry shell syntax for the
# command line; a non-superuser who would borrow the server's password;
# the password in an error message or a server log.
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 16

SECRET='Pw-9f2c1e7a-peer-secret'
WRONG='Pw-wrong-3b8d'
CMD=$CLUSTER_BASE/pwcmd.sh
ARGS=$CLUSTER_BASE/pwcmd.args
MODE=$CLUSTER_BASE/pwcmd.mode
cat >"$CMD" <<EOF
#!/bin/sh
# one line per call: its arguments, each in brackets
for a in "\$@"; do printf '[%s]' "\$a"; done >>"$ARGS"
echo >>"$ARGS"
case "\$(cat "$MODE")" in
right) echo '$SECRET' ;;
wrong) echo '$WRONG' ;;
empty) : ;;
fail) exit 3 ;;
esac
EOF
chmod 755 "$CMD"
echo right >"$MODE"
: >"$ARGS"
ti_chown_pg "$CMD" "$ARGS" "$MODE"

SCHEMA="
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
SELECT tenant_iso.create_tenant('acme') \\g /dev/null
CREATE TABLE t (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
INSERT INTO t VALUES ('acme', 1, 'one');
SELECT tenant_iso.protect('t') \\g /dev/null
SELECT tenant_iso.track('t') \\g /dev/null
"
node_init peer
node_start peer
node_psql peer postgres "CREATE DATABASE app"
node_psql peer app "$SCHEMA
CREATE ROLE ti_pw LOGIN SUPERUSER PASSWORD '$SECRET';"
hba=$(node_datadir peer)/pg_hba.conf
{ echo "host all ti_pw 127.0.0.1/32 scram-sha-256"; cat "$hba"; } >"$hba.new"
cat "$hba.new" >"$hba"
rm -f "$hba.new"
node_psql peer postgres "SELECT pg_reload_conf()" >/dev/null

node_init here
node_start here
node_psql here postgres "CREATE DATABASE app"
node_psql here app "$SCHEMA
CREATE ROLE ti_np LOGIN;
GRANT SELECT ON t TO ti_np;
GRANT EXECUTE ON FUNCTION tenant_iso.diff_peer(regclass, text, text) TO ti_np;"
PEER="host=127.0.0.1 port=$(node_port peer) user=ti_pw dbname=app sslmode=disable"
peer_user() { node_psql here app "SELECT x[1] FROM tenant_iso._peer_query(\$ci\$$1\$ci\$, 'SELECT current_user::text') x" 2>&1; }
set_cmd() {
	node_psql here postgres "ALTER SYSTEM SET tenant_iso.peer_password_command = '$1'; SELECT pg_reload_conf();" >/dev/null
	sleep 0.3
}
calls() { grep -c . "$ARGS" || true; }

# controls: the peer asks ti_pw for its password
out=$(PGPASSWORD=wrong "$PGBIN/psql" -X -At -h 127.0.0.1 -p "$(node_port peer)" -U ti_pw -d app -c "SELECT 1" 2>&1) && rc=0 || rc=$?
isnt "$rc" 0 "control: the peer refuses ti_pw with a wrong password"
is "$(PGPASSWORD=$SECRET "$PGBIN/psql" -X -At -h 127.0.0.1 -p "$(node_port peer)" -U ti_pw -d app -c "SELECT 1" 2>&1)" 1 \
	"control: ... and lets it in with the right one"
like "$(peer_user "$PEER")" "password" "without a command: the peer connection fails for want of a password"

# the command supplies it
set_cmd "$CMD %h %p %u %d"
is "$(peer_user "$PEER")" ti_pw "with peer_password_command: the peer connection authenticates as ti_pw"
is "$(tail -n 1 "$ARGS")" "[127.0.0.1][$(node_port peer)][ti_pw][app]" \
	"the command got the peer's host, port, user and database as four arguments"
is "$(node_psql here app "SELECT count(*) FROM tenant_iso.diff_peer('t', '$PEER')" 2>&1)" 0 \
	"diff_peer() through the same password: no difference"

# a wrong password, no password, a failing command: refused, nothing echoed
echo wrong >"$MODE"
out=$(peer_user "$PEER" || true)
like "$out" "password authentication failed" "the command prints a wrong password: the connection is refused"
unlike_wrong=$([[ "$out" == *"$WRONG"* ]] && echo 1 || echo 0)
ok "$unlike_wrong" "... and the error does not show what the command printed"
echo empty >"$MODE"
like "$(peer_user "$PEER")" "peer_password_command failed or printed no password" \
	"the command prints nothing: refused with a message naming the setting"
echo fail >"$MODE"
like "$(peer_user "$PEER")" "peer_password_command failed or printed no password" \
	"the command exits 3: refused the same way"
echo right >"$MODE"

# attack: shell syntax in the connection string reaches the command quoted
peer_user "host=127.0.0.1 port=$(node_port peer) user=ti_pw sslmode=disable dbname='app\$(touch $CLUSTER_BASE/pwned)\`touch $CLUSTER_BASE/pwned2\`;touch $CLUSTER_BASE/pwned3'" >/dev/null || true
ok "$([ ! -e "$CLUSTER_BASE/pwned" ] && [ ! -e "$CLUSTER_BASE/pwned2" ] && [ ! -e "$CLUSTER_BASE/pwned3" ] && echo 0 || echo 1)" \
	"attack: \$(...), backquotes and ; in dbname run nothing"
is "$(tail -n 1 "$ARGS")" "[127.0.0.1][$(node_port peer)][ti_pw][app\$(touch $CLUSTER_BASE/pwned)\`touch $CLUSTER_BASE/pwned2\`;touch $CLUSTER_BASE/pwned3]" \
	"attack: ... the command got the database name as one literal argument"

# attack: a non-superuser cannot borrow the server's password
n0=$(calls)
like "$(node_psql_as here ti_np app "SELECT count(*) FROM tenant_iso.diff_peer('t', '$PEER')" 2>&1)" "password is required" \
	"attack: a non-superuser's diff_peer() without a password: 'password is required'"
is "$(calls)" "$n0" "attack: ... and the command did not run for it"

# the password is in no log
sleep 0.5
is "$(cat "$(node_log here)" "$(node_log peer)" | grep -cF -e "$SECRET" -e "$WRONG" || true)" 0 \
	"the password (right or wrong) is in neither server's log"
is "$(node_psql here app "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%$SECRET%' AND pid <> pg_backend_pid()")" 0 \
	"... nor in any query text here"

tap_done
