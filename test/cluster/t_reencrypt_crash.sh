#!/usr/bin/env bash
# test/cluster/t_reencrypt_crash.sh: tenant_iso.reencrypt() survives a crash.
#
# 300,000 rows of two tenants (ta, tb), encrypted by their member roles with
# context 'ctx'; both keys rotated; reencrypt('t', 'col', 'ctx', 200) runs in
# the background.  Once the worker has committed some batches (visible from
# another session) but not all, the postmaster is killed with SIGKILL.  After
# crash recovery: every value still decrypts to its original plaintext
# (md5 stored in column h, and recomputed from the id), the committed batches
# are kept, some rows are at the new version and some still at the old one;
# rerunning reencrypt rewrites exactly the rest, and a third run returns 0.
#
# nodes: 1
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

ROWS_PER_TENANT=150000
TOTAL=$((2 * ROWS_PER_TENANT))

tap_plan 22

node_init n1
node_start n1
node_psql n1 postgres "CREATE DATABASE app"
node_psql n1 app "
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
CREATE ROLE reenc_a LOGIN;
CREATE ROLE reenc_b LOGIN;
SELECT tenant_iso.create_tenant('ta') \\g /dev/null
SELECT tenant_iso.create_tenant('tb') \\g /dev/null
SELECT tenant_iso.add_member('reenc_a', 'ta') \\g /dev/null
SELECT tenant_iso.add_member('reenc_b', 'tb') \\g /dev/null
CREATE TABLE t (
	tenant_id text NOT NULL,
	id int NOT NULL,
	col bytea,
	h text NOT NULL,            -- md5 of the plaintext
	PRIMARY KEY (tenant_id, id)
);
SELECT tenant_iso.protect('t') \\g /dev/null
GRANT SELECT, INSERT ON t TO reenc_a, reenc_b;
"
# each member role encrypts its own rows (committed: the worker must see them)
node_psql_as n1 reenc_a app "
INSERT INTO t (id, col, h)
	SELECT g, tenant_iso.encrypt('plain-ta-' || g, 'ctx'), md5('plain-ta-' || g)
	  FROM generate_series(1, $ROWS_PER_TENANT) g;"
node_psql_as n1 reenc_b app "
INSERT INTO t (id, col, h)
	SELECT g, tenant_iso.encrypt('plain-tb-' || g, 'ctx'), md5('plain-tb-' || g)
	  FROM generate_series(1, $ROWS_PER_TENANT) g;"

# version_counts: "rows at v1|rows at v2|rows at any other version or none"
version_counts() {
	node_psql n1 app "
SELECT count(*) FILTER (WHERE tenant_iso.key_version(col) = 1) || '|' ||
       count(*) FILTER (WHERE tenant_iso.key_version(col) = 2) || '|' ||
       count(*) FILTER (WHERE tenant_iso.key_version(col) IS DISTINCT FROM 1
                          AND tenant_iso.key_version(col) IS DISTINCT FROM 2)
  FROM t"
}

# decrypt_check ROLE TENANT: rows whose value decrypts to the original plaintext
decrypt_check() {
	node_psql_as n1 "$1" app "
SELECT count(*) FROM t
 WHERE md5(tenant_iso.decrypt_text(col, 'ctx')) = h
   AND tenant_iso.decrypt_text(col, 'ctx') = 'plain-$2-' || id" 2>&1
}

is "$(version_counts)" "$TOTAL|0|0" "setup: $TOTAL rows, all at key version 1"

node_psql n1 app "
SELECT tenant_iso.rotate_tenant_key('ta') \\g /dev/null
SELECT tenant_iso.rotate_tenant_key('tb') \\g /dev/null"
is "$(node_psql n1 app "SELECT string_agg(tenant_id || '=' || version, ',' ORDER BY tenant_id)
                         FROM tenant_iso.keys WHERE state = 'active'")" "ta=2,tb=2" \
	"both tenants rotated: active version 2"

# proc_alive PID: true if PID is a live (not zombie) PostgreSQL process
proc_alive() {
	local line state cmd
	{ read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -r state _ <<<"${line##*) }"
	[ "$state" != Z ] || return 1
	cmd=$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) || return 1
	[[ "$cmd" == postgres* ]]
}

# ---- reencrypt in the background; kill -9 halfway
BG_OUT=$CLUSTER_BASE/reencrypt_bg.out
node_psql n1 app "SELECT tenant_iso.reencrypt('t', 'col', 'ctx', 200)" >"$BG_OUT" 2>&1 &
BG=$!

LOW=5000
seen=0
halfway=1
for ((i = 0; i < 600; i++)); do
	seen=$(node_psql n1 app "SELECT count(*) FROM t WHERE tenant_iso.key_version(col) = 2" 2>/dev/null) || seen=0
	if ! kill -0 "$BG" 2>/dev/null; then
		halfway=0
		diag "reencrypt finished before it was caught halfway ($seen rows at v2): increase ROWS_PER_TENANT"
		break
	fi
	[ "$seen" -ge "$LOW" ] && [ "$seen" -lt $((TOTAL - LOW)) ] && break
	sleep 0.1
done
if [ "$halfway" -eq 1 ] && { [ "$seen" -lt "$LOW" ] || [ "$seen" -ge $((TOTAL - LOW)) ]; }; then
	halfway=0
	diag "reencrypt was not seen halfway within 60 s ($seen rows at v2)"
fi
# the node's server processes (this test started them), to check they all go
worker=$(node_psql n1 app "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tenant_iso reencrypt'")
pids=$(node_psql n1 app "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE pid <> pg_backend_pid()")
diag "killing the postmaster with $seen of $TOTAL rows committed at version 2 (worker pid ${worker:-none})"
node_kill9 n1
ok $((1 - halfway)) "reencrypt was running with committed batches ($LOW <= $seen < $((TOTAL - LOW))) when the postmaster was killed"

bg_rc=0
wait "$BG" || bg_rc=$?
isnt "$bg_rc" 0 "the interrupted reencrypt() call did not return a count"
[ "$bg_rc" -eq 0 ] && diag "reencrypt() call output: $(cat "$BG_OUT")"

# every server process should exit once the postmaster is gone (they watch
# for postmaster death); give them 3 s
for ((i = 0; i < 30; i++)); do
	left=
	for p in $pids; do
		proc_alive "$p" && left="$left $p"
	done
	[ -z "$left" ] && break
	sleep 0.1
done
ok "$([ -z "$left" ]; echo $?)" "all server processes exit within 3 s of the postmaster's death"
ok "$([ -n "$worker" ] && ! proc_alive "$worker"; echo $?)" \
	"the reencrypt background worker does not outlive the postmaster"
if [ -n "$left" ]; then
	diag "still running after the postmaster's death:$left; $(for p in $left; do { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null; echo; done)"
	diag "killing them (kill -9 by pid) so that the node can restart"
	for p in $left; do
		kill -9 "$p" 2>/dev/null || true
	done
	for ((i = 0; i < 50; i++)); do
		still=
		for p in $left; do proc_alive "$p" && still=1; done
		[ -z "$still" ] && break
		sleep 0.1
	done
fi

ok_cmd "restart after kill -9 (crash recovery)" node_start n1

# ---- after the crash
IFS='|' read -r old new other <<<"$(version_counts)"
is "$((old + new + other))" "$TOTAL" "after the crash: still $TOTAL rows"
is "$other" 0 "after the crash: every value is an envelope at version 1 or 2"
ok "$([ "$new" -ge "$seen" ]; echo $?)" "the batches committed before the crash are kept ($new >= $seen rows at v2)"
ok "$([ "$new" -gt 0 ]; echo $?)" "some rows are at the new version ($new)"
ok "$([ "$old" -gt 0 ]; echo $?)" "some rows are still at the old version ($old): the run was cut halfway"
is "$(decrypt_check reenc_a ta)" "$ROWS_PER_TENANT" \
	"after the crash: all $ROWS_PER_TENANT values of ta decrypt to their plaintext (as reenc_a)"
is "$(decrypt_check reenc_b tb)" "$ROWS_PER_TENANT" \
	"after the crash: all $ROWS_PER_TENANT values of tb decrypt to their plaintext (as reenc_b)"
is "$(node_psql n1 app "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tenant_iso reencrypt'")" 0 \
	"no reencrypt worker was restarted after the crash"

# ---- rerun
is "$(node_psql n1 app "SELECT tenant_iso.reencrypt('t', 'col', 'ctx', 200)" 2>&1)" "$old" \
	"rerun: reencrypt returns the number of rows still at the old version ($old)"
is "$(version_counts)" "0|$TOTAL|0" "rerun: all $TOTAL rows at version 2"
is "$(node_psql n1 app "
SELECT count(*) FROM t
  JOIN tenant_iso.keys k ON k.tenant_id = t.tenant_id AND k.state = 'active'
 WHERE tenant_iso.key_version(t.col) = k.version")" "$TOTAL" \
	"rerun: every row is at its tenant's active version (keys view)"
is "$(decrypt_check reenc_a ta)" "$ROWS_PER_TENANT" \
	"rerun: all values of ta decrypt to their plaintext (as reenc_a)"
is "$(decrypt_check reenc_b tb)" "$ROWS_PER_TENANT" \
	"rerun: all values of tb decrypt to their plaintext (as reenc_b)"
is "$(node_psql n1 app "SELECT tenant_iso.reencrypt('t', 'col', 'ctx', 200)" 2>&1)" 0 \
	"third run: nothing left, returns 0"
is "$(node_psql n1 app "SELECT count(*) FROM t")" "$TOTAL" "no row added or lost"

tap_done
