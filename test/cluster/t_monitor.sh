#!/usr/bin/env bash
# test/cluster/t_monitor.sh: the integrity monitor (issue 15) against real
# faults, on three copies.
#
# Nodes: a primary (tenant_iso.monitor_databases = 'app', verify_interval
# 2 s); a streaming hot standby; a logical subscriber of the application
# table only, with its own digests (track() there, tenant_iso_digest_row and
# tenant_iso_digest_trunc ENABLE ALWAYS).  The primary's tenant_iso.peers
# lists the standby and the subscriber.  Table items: tenants acme, globex, initech, umbrella, 500
# rows each, plus marked rows with ids 73491xx (the "distinctive key values"
# that must never show up in an event or a log line).
#
#  1. One byte of a globex row flipped in the primary's heap file (server
#     stopped): repaired from a peer within 30 s, verify() clean, the row is
#     back on all three copies, the other tenants' rows untouched, no event
#     about another tenant.
#  2. An errant write on the subscriber: with 3 copies repaired from the
#     majority; with 2 copies (standby disabled) quarantined, WARNING,
#     nothing written; acknowledge(); integrity_events is append-only.
#  3. The subscriber down: peer_unreachable, no repair and no false alarm;
#     back: ok again, peer_back.
#  4. kill -9 of the monitor worker, then of the whole primary, while a
#     repair of 20 subscriber rows runs (slowed by a 0.15 s-per-row trigger
#     on the subscriber: a repair of fewer than max_auto_repair_rows rows
#     is too fast to be caught otherwise): all or nothing was written, the
#     worker comes back and the next run completes the repair.
#  5. A divergence of more than max_auto_repair_rows: quarantined, nothing
#     written.
#  6. A tenant member's own writes on the primary: no repair, no event for
#     any other tenant.
#  7. No key value or marker in integrity_events nor in any server log.
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 76

TENANTS="acme globex initech umbrella"

# ev_max NODE: the last event id
ev_max() {
	node_psql "${1:-primary}" app "SELECT coalesce(max(event_id), 0) FROM tenant_iso.integrity_events"
}
# evs SINCE [WHERE]: "kind|tenant|peer" of the primary's events after SINCE
evs() {
	node_psql primary app "
SELECT coalesce(string_agg(kind || '|' || coalesce(tenant_id, '') || '|' || coalesce(peer, ''), ',' ORDER BY event_id), '')
  FROM tenant_iso.integrity_events WHERE event_id > $1 ${2:+AND ($2)}"
}
# wait_sql NODE TIMEOUT SQL: poll (every 0.2 s) until SQL on app returns t
wait_sql() {
	_node_wait "$1" app "$2" "$3"
}
# tmd5 NODE: "tenant=count:md5" of items per tenant
tmd5() {
	node_psql "$1" app "
SELECT string_agg(tenant_id || '=' || n || ':' || h, ',' ORDER BY tenant_id)
  FROM (SELECT tenant_id, count(*) AS n, md5(string_agg(t::text, '|' ORDER BY id)) AS h
          FROM items t GROUP BY tenant_id) s" 2>&1
}
# tmd5_but TENANT NODE: the same without TENANT
tmd5_but() {
	tmd5 "$2" | tr ',' '\n' | grep -v "^$1=" | paste -sd, -
}
# vbad NODE: the (table/tenant)s whose verify() fails, comma-separated
vbad() {
	node_psql "$1" app "
SELECT coalesce(string_agg(rel::text || '/' || tenant_id, ',' ORDER BY 1), '')
  FROM tenant_iso.verify() WHERE NOT ok" 2>&1
}
# note_of NODE TENANT ID
note_of() {
	node_psql "$1" app "SELECT note FROM items WHERE tenant_id = '$2' AND id = $3" 2>&1
}
monitor_pid() {
	node_psql primary app "SELECT coalesce(string_agg(pid::text, ' '), '') FROM pg_stat_activity
	 WHERE backend_type = 'tenant_iso integrity monitor' AND datname = 'app'" 2>/dev/null || true
}
# states [WHERE]: "tenant|peer|state" of the primary's integrity_status rows
states() {
	node_psql primary app "
SELECT coalesce(string_agg(tenant_id || '|' || peer || '|' || state, ',' ORDER BY tenant_id, peer), '')
  FROM tenant_iso.integrity_status WHERE rel = 'items'::regclass ${1:+AND ($1)}"
}
# all_ok: every status row of the primary is ok
ALL_OK="SELECT count(*) > 0 AND bool_and(state = 'ok') FROM tenant_iso.integrity_status"
log_lines() { wc -l <"$(node_log "$1")"; }
# log_since NODE LINE: the log after line LINE
log_since() { tail -n "+$(($2 + 1))" "$(node_log "$1")"; }
# sub_synced: the subscriber applied everything the primary wrote so far
sub_synced() { node_wait_sub_sync sub app app_sub 60 >/dev/null; }

# flip NODE MARKER...: with NODE stopped, change one byte ('z' -> 'y', the
# last character) of each MARKER in the heap file of items; each marker must
# be there exactly once.  NODE is started again.
flip() {
	local node=$1 relpath file m offs n rc=0
	shift
	node_psql "$node" app "CHECKPOINT"
	relpath=$(node_psql "$node" app "SELECT pg_relation_filepath('items')")
	node_stop "$node" fast
	file=$(node_datadir "$node")/$relpath
	for m in "$@"; do
		offs=$(grep -obUa -- "$m" "$file" | cut -d: -f1 || true)
		n=$(grep -c . <<<"$offs" || true)
		if [ "$n" -ne 1 ]; then
			diag "flip: marker $m is $n times in $relpath"
			rc=1
			continue
		fi
		printf 'y' | dd of="$file" bs=1 seek=$((offs + ${#m} - 1)) conv=notrunc status=none
		# the file now holds the flipped value, once, and no longer the marker
		if [ "$(grep -caF -- "${m%?}y" "$file" || true)" -ne 1 ] ||
			grep -qaF -- "$m" "$file"; then
			diag "flip: marker $m was not flipped in $relpath"
			rc=1
		fi
	done
	node_start "$node"
	return $rc
}

# ---------------------------------------------------------------- setup
SCHEMA="
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
$(for t in $TENANTS; do echo "SELECT tenant_iso.create_tenant('$t') \\g /dev/null"; done)
CREATE TABLE items (
	tenant_id text NOT NULL,
	id int NOT NULL,
	qty int NOT NULL DEFAULT 0,
	note text,
	PRIMARY KEY (tenant_id, id)
);
SELECT tenant_iso.protect('items') \\g /dev/null
"
# autovacuum off: no page of items may change behind the test's back (a
# full-page image written after a flip would carry it to the standby)
node_init primary "autovacuum = off" "tenant_iso.monitor_databases = 'app'" \
	"tenant_iso.verify_interval = '2s'"
node_start primary
node_psql primary postgres "CREATE DATABASE app"
node_psql primary app "$SCHEMA
CREATE ROLE acme_app LOGIN;
SELECT tenant_iso.add_member('acme_app', 'acme') \\g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO acme_app;
INSERT INTO items (tenant_id, id, qty, note)
	SELECT t, g, g % 13, t || '-row-' || g || '-payload'
	  FROM generate_series(1, 500) g, unnest(string_to_array('$TENANTS', ' ')) t;
-- marked rows: case 1 (flip), 2 (errant writes), 4 (slow repairs), 5 (too many)
INSERT INTO items (tenant_id, id, qty, note) VALUES
	('globex', 7349101, 1, 'QXflipmarkerQX-zzzz'),
	('globex', 7349111, 1, 'errant-a-orig'),
	('globex', 7349112, 1, 'errant-b-orig');
INSERT INTO items (tenant_id, id, qty, note)
	SELECT 'initech', g, 1, 'slow-orig-' || g FROM generate_series(7349120, 7349159) g;
INSERT INTO items (tenant_id, id, qty, note)
	SELECT 'umbrella', g, 1, 'many-orig-' || g FROM generate_series(7349160, 7349169) g;
SELECT tenant_iso.track('items') \\g /dev/null
VACUUM (FREEZE) items;
"
node_standby standby primary
node_subscriber sub
node_psql sub postgres "CREATE DATABASE app"
node_psql sub app "$SCHEMA"
node_publish primary app app_pub "TABLE items"
node_subscribe sub app app_sub primary app_pub 2>/dev/null
sub_synced
node_psql sub app "
SET client_min_messages = warning;
SELECT tenant_iso.track('items') \\g /dev/null
ALTER TABLE items ENABLE ALWAYS TRIGGER tenant_iso_digest_row, ENABLE ALWAYS TRIGGER tenant_iso_digest_trunc;"
node_wait_catchup standby primary >/dev/null
node_psql primary app "
SELECT tenant_iso.add_peer('standby', '$(node_connstr standby app)', 'standby', 10);
SELECT tenant_iso.add_peer('sub', '$(node_connstr sub app)', 'subscriber', 20);" >/dev/null

P0=$(tmd5 primary)
is "$(tmd5 sub)|$(tmd5 standby)" "$P0|$P0" "setup: the three copies have the same rows (per-tenant md5)"
is "$(vbad primary)|$(vbad standby)|$(vbad sub)" "||" "setup: verify() is clean on all three copies"
ok "$(wait_sql primary 20 "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'tenant_iso integrity monitor' AND datname = 'app'"; echo $?)" \
	"setup: one monitor worker for database app on the primary"
ok "$(wait_sql primary 30 "SELECT count(*) = 8 AND bool_and(state = 'ok') FROM tenant_iso.integrity_status WHERE rel = 'items'::regclass"; echo $?)" \
	"setup: integrity_status: items x 4 tenants x 2 peers, all ok"
is "$(evs 0 "kind NOT IN ('peer_back')")" "" "setup: no event while all is in sync"
# the subscriber's digests follow the applied changes
node_psql primary app "UPDATE items SET qty = qty + 1 WHERE tenant_id = 'initech' AND id <= 5"
sub_synced
is "$(vbad sub)" "" "setup: verify() on the subscriber is clean after replicated changes (ALWAYS triggers)"
ok "$(wait_sql primary 15 "$ALL_OK"; echo $?)" "setup: still all ok after a replicated change"

# =====================================================================
# 1. byte flip in the primary's heap
# =====================================================================
ev=$(ev_max)
P0=$(tmd5 primary)
before_others=$(tmd5_but globex primary)
orig=$(note_of primary globex 7349101)
ok_cmd "1: one byte of globex's row flipped in the primary's heap file" flip primary QXflipmarkerQX-zzzz
t0=$SECONDS
ok "$(wait_sql primary 30 "SELECT EXISTS (SELECT 1 FROM tenant_iso.integrity_events WHERE event_id > $ev AND kind = 'repaired' AND tenant_id = 'globex')"; echo $?)" \
	"1: a 'repaired' event for globex within 30 s"
diag "1: repaired after $((SECONDS - t0)) s: $(evs "$ev")"
# The worker runs at once after the restart, so the flipped value may be
# gone before a query could read it; the proof that the server read it is
# the primary's own verify() failing for globex before the repair.
like "$(evs "$ev" "tenant_id = 'globex' AND kind IN ('corrupt', 'repaired')")" \
	'^corrupt\|globex\|[a-z]+,(.*,)?repaired\|globex\|' \
	"1: the primary read the flipped value: a 'corrupt' event for globex (its own verify() failed), then 'repaired'"
like "$(node_psql primary app "SELECT string_agg(state || ':' || rows_repaired, ',') FROM tenant_iso.integrity_status WHERE tenant_id = 'globex' AND rel = 'items'::regclass")" \
	'(^|,)repaired:[1-9]' "1: integrity_status shows 'repaired' for globex"
is "$(vbad primary)" "" "1: verify() on the primary is clean"
is "$(note_of primary globex 7349101)" "$orig" "1: the primary's row has its value again"
node_wait_catchup standby primary >/dev/null
sub_synced
is "$(note_of standby globex 7349101)|$(note_of sub globex 7349101)" "$orig|$orig" "1: standby and subscriber have the value too"
is "$(tmd5 primary)|$(tmd5 standby)|$(tmd5 sub)" "$P0|$P0|$P0" "1: all three copies are back to their rows before the flip"
is "$(tmd5_but globex primary)" "$before_others" "1: the other tenants' rows are unchanged (per-tenant md5)"
is "$(vbad sub)" "" "1: verify() on the subscriber is clean after the replicated repair"
is "$(evs "$ev" "tenant_id IS DISTINCT FROM 'globex'")" "" "1: no event names another tenant"
ok "$(wait_sql primary 15 "$ALL_OK"; echo $?)" "1: back to ok on the next run"

# =====================================================================
# 2. errant writes on the subscriber
# =====================================================================
ev=$(ev_max)
node_psql sub app "UPDATE items SET note = 'errant-a-WRONG' WHERE tenant_id = 'globex' AND id = 7349111"
ok "$(wait_sql sub 30 "SELECT note = 'errant-a-orig' FROM items WHERE tenant_id = 'globex' AND id = 7349111"; echo $?)" \
	"2: 3 copies: the subscriber's errant write is repaired from the majority"
ok "$(wait_sql primary 10 "SELECT EXISTS (SELECT 1 FROM tenant_iso.integrity_events WHERE event_id > $ev AND kind = 'repaired' AND tenant_id = 'globex' AND peer = 'sub')"; echo $?)" \
	"2: ... with a 'repaired' event for globex on peer sub"
diag "2: $(evs "$ev")"
is "$(note_of primary globex 7349111)" "errant-a-orig" "2: the primary's row is unchanged"
is "$(vbad sub)" "" "2: verify() on the subscriber is clean after the repair"
is "$(tmd5 sub)" "$P0" "2: the subscriber has the primary's rows again"
ok "$(wait_sql primary 15 "$ALL_OK"; echo $?)" "2: all ok again"

# two copies: the standby disabled
node_psql primary app "UPDATE tenant_iso.peers SET enabled = false WHERE name = 'standby'"
is "$(node_psql primary app "SELECT count(*) FROM tenant_iso.integrity_status WHERE peer = 'standby'")" 0 \
	"2: the disabled standby has no integrity_status rows"
ev=$(ev_max)
ll=$(log_lines primary)
node_psql sub app "UPDATE items SET note = 'errant-b-WRONG' WHERE tenant_id = 'globex' AND id = 7349112"
ok "$(wait_sql primary 30 "SELECT EXISTS (SELECT 1 FROM tenant_iso.integrity_events WHERE event_id > $ev AND kind = 'quarantined' AND tenant_id = 'globex')"; echo $?)" \
	"2: 2 copies: the errant write is quarantined"
qev=$(node_psql primary app "SELECT max(event_id) FROM tenant_iso.integrity_events WHERE event_id > $ev AND kind = 'quarantined'")
sleep 5 # two more runs
is "$(note_of sub globex 7349112)|$(note_of primary globex 7349112)" "errant-b-WRONG|errant-b-orig" \
	"2: nothing written on either side (after two more runs)"
is "$(evs "$ev" "kind = 'repaired'")" "" "2: no 'repaired' event"
is "$(states "tenant_id = 'globex'")" "globex|sub|quarantined" "2: integrity_status: globex/sub quarantined"
sleep 0.5
like "$(log_since primary "$ll" | grep 'WARNING' | grep -i quarantin | head -n 1)" "WARNING: .*quarantin" \
	"2: a WARNING in the primary's log"
# the operator repairs, then acknowledges
node_psql sub app "UPDATE items SET note = 'errant-b-orig' WHERE tenant_id = 'globex' AND id = 7349112"
node_psql primary app "SELECT tenant_iso.acknowledge($qev, 'fixed by hand in the test')"
is "$(node_psql primary app "SELECT kind || '|' || ref || '|' || note || '|' || coalesce(by_user, '') FROM tenant_iso.integrity_events WHERE event_id > $qev AND kind = 'acknowledged'")" \
	"acknowledged|$qev|fixed by hand in the test|postgres" "2: acknowledge() appends an 'acknowledged' event (ref, note, by_user)"
ok "$(wait_sql primary 20 "SELECT state = 'ok' FROM tenant_iso.integrity_status WHERE tenant_id = 'globex' AND peer = 'sub' AND rel = 'items'::regclass"; echo $?)" \
	"2: after the acknowledgement globex/sub goes back to ok"
out=$(node_psql primary app "\\set VERBOSITY verbose
UPDATE tenant_iso.integrity_events SET note = 'x' WHERE event_id = $qev" 2>&1) || true
like "$out" "ERROR:  55000" "2: UPDATE of integrity_events is refused (55000)"
out=$(node_psql primary app "\\set VERBOSITY verbose
DELETE FROM tenant_iso.integrity_events WHERE event_id = $qev" 2>&1) || true
like "$out" "ERROR:  55000" "2: DELETE from integrity_events is refused (55000)"
out=$(node_psql primary app "\\set VERBOSITY verbose
TRUNCATE tenant_iso.integrity_events" 2>&1) || true
like "$out" "ERROR:  55000" "2: TRUNCATE of integrity_events is refused (55000)"
node_psql primary app "UPDATE tenant_iso.peers SET enabled = true WHERE name = 'standby'"
ok "$(wait_sql primary 20 "SELECT count(*) = 8 AND bool_and(state = 'ok') FROM tenant_iso.integrity_status WHERE rel = 'items'::regclass"; echo $?)" \
	"2: standby enabled again: 8 status rows, all ok"

# =====================================================================
# 3. a peer down
# =====================================================================
ev=$(ev_max)
node_stop sub fast
ok "$(wait_sql primary 20 "SELECT count(*) = 4 AND bool_and(state = 'peer_unreachable') FROM tenant_iso.integrity_status WHERE peer = 'sub'"; echo $?)" \
	"3: subscriber down: its status rows are peer_unreachable"
# the primary goes on being written meanwhile
node_psql primary app "UPDATE items SET qty = qty + 1 WHERE tenant_id = 'initech' AND id BETWEEN 10 AND 30"
sleep 5
like "$(evs "$ev")" "^peer_unreachable\|[^,]*\|sub(,peer_unreachable\|[^,]*\|sub)*$" \
	"3: only peer_unreachable events for sub (no repair, no corrupt/diverged alarm)"
is "$(states "peer = 'standby' AND state <> 'ok'")" "" "3: the standby's rows stay ok"
node_start sub
ok "$(wait_sql primary 30 "SELECT count(*) = 4 AND bool_and(state = 'ok') FROM tenant_iso.integrity_status WHERE peer = 'sub'"; echo $?)" \
	"3: subscriber back: ok again"
is "$(evs "$ev" "kind IN ('peer_back')" | tr ',' '\n' | sort -u | paste -sd,)" "peer_back||sub" "3: a peer_back event"
is "$(evs "$ev" "kind NOT IN ('peer_unreachable', 'peer_back', 'diverged')")" "" \
	"3: no repair, corrupt or quarantine event around the outage"
sub_synced
is "$(tmd5 sub)" "$(tmd5 primary)" "3: the subscriber caught up, same rows as the primary"
is "$(vbad sub)" "" "3: verify() on the subscriber is clean after the catch-up"

# =====================================================================
# 4. kill -9 in the middle of a repair
# =====================================================================
# A repair of the subscriber made slow by a row trigger there (0.15 s per row)
node_psql sub app "
CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF current_setting('ti_test.fast', true) IS DISTINCT FROM 'on' THEN
		PERFORM pg_sleep(0.15);
	END IF;
	RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END \$\$;
CREATE TRIGGER slow_down BEFORE INSERT OR UPDATE OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION slow_down();
ALTER TABLE items ENABLE ALWAYS TRIGGER slow_down;"
REPAIRING="SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND backend_type = 'client backend'"
# errant_count LO HI: the subscriber's rows in [LO, HI] still errant
errant_count() {
	node_psql sub app "SELECT count(*) FROM items WHERE tenant_id = 'initech' AND id BETWEEN $1 AND $2 AND note LIKE 'slow-WRONG-%'"
}
P4=$(tmd5 primary)
ev=$(ev_max)
node_psql sub app "SET ti_test.fast = on;
UPDATE items SET note = 'slow-WRONG-' || id WHERE tenant_id = 'initech' AND id BETWEEN 7349120 AND 7349139"
pid1=$(monitor_pid)
ok "$(wait_sql sub 30 "$REPAIRING"; echo $?)" "4: the repair of 20 rows on the subscriber is under way"
diag "4: killing the monitor worker $pid1 with $(errant_count 7349120 7349139) rows still errant"
kill -9 "$pid1"
wait_sql sub 30 "SELECT NOT ($REPAIRING)" || true
n=$(errant_count 7349120 7349139)
ok "$([ "$n" = 0 ] || [ "$n" = 20 ]; echo $?)" "4: after the kill the repair is all or nothing ($n of 20 rows errant)"
ok "$(wait_sql primary 30 "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'tenant_iso integrity monitor' AND pid <> ${pid1:-0}"; echo $?)" \
	"4: the monitor worker is back (a new process)"
ok "$(wait_sql sub 40 "SELECT count(*) = 0 FROM items WHERE tenant_id = 'initech' AND id BETWEEN 7349120 AND 7349139 AND note LIKE 'slow-WRONG-%'"; echo $?)" \
	"4: the next run completes the repair"

# the same, killing the whole primary
node_psql sub app "SET ti_test.fast = on;
UPDATE items SET note = 'slow-WRONG-' || id WHERE tenant_id = 'initech' AND id BETWEEN 7349140 AND 7349159"
ok "$(wait_sql sub 30 "$REPAIRING"; echo $?)" "4: a second repair of 20 rows is under way"
diag "4: killing the primary with $(errant_count 7349140 7349159) rows still errant"
node_kill9 primary
wait_sql sub 30 "SELECT NOT ($REPAIRING)" || true
n=$(errant_count 7349140 7349159)
ok "$([ "$n" = 0 ] || [ "$n" = 20 ]; echo $?)" "4: after the crash the repair is all or nothing ($n of 20 rows errant)"
ok_cmd "4: the primary restarts (crash recovery)" node_start primary
ok "$(wait_sql primary 30 "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'tenant_iso integrity monitor'"; echo $?)" \
	"4: the monitor worker starts again"
ok "$(wait_sql sub 40 "SELECT count(*) = 0 FROM items WHERE tenant_id = 'initech' AND id BETWEEN 7349140 AND 7349159 AND note LIKE 'slow-WRONG-%'"; echo $?)" \
	"4: the next run completes the repair"
node_psql sub app "DROP TRIGGER slow_down ON items; DROP FUNCTION slow_down();"
sub_synced
is "$(tmd5 primary)|$(tmd5 sub)" "$P4|$P4" "4: nothing lost: primary and subscriber have the rows of before (counts and md5)"
is "$(vbad primary)|$(vbad sub)" "|" "4: verify() is clean on the primary and the subscriber"
node_wait_catchup standby primary >/dev/null
is "$(vbad standby)" "" "4: verify() is clean on the standby"
is "$(evs "$ev" "kind IN ('repaired') AND tenant_id = 'initech' AND peer = 'sub'" | tr ',' '\n' | sort -u)" "repaired|initech|sub" \
	"4: the repairs are recorded as 'repaired' events"
is "$(evs "$ev" "kind IN ('quarantined', 'repair_failed', 'corrupt') OR tenant_id <> 'initech'")" "" "4: no other event"
ok "$(wait_sql primary 20 "$ALL_OK"; echo $?)" "4: all ok again"

# =====================================================================
# 5. more than max_auto_repair_rows
# =====================================================================
node_psql primary app "ALTER SYSTEM SET tenant_iso.max_auto_repair_rows = 5; SELECT pg_reload_conf() \\g /dev/null"
sleep 0.5
is "$(node_psql primary app "SHOW tenant_iso.max_auto_repair_rows")" 5 "5: max_auto_repair_rows is 5"
ev=$(ev_max)
P5=$(tmd5 primary)
node_psql sub app "UPDATE items SET note = 'many-WRONG-' || id WHERE tenant_id = 'umbrella' AND id BETWEEN 7349160 AND 7349169"
ok "$(wait_sql primary 30 "SELECT EXISTS (SELECT 1 FROM tenant_iso.integrity_events WHERE event_id > $ev AND kind = 'quarantined' AND tenant_id = 'umbrella')"; echo $?)" \
	"5: 10 divergent rows > 5: quarantined"
qev=$(node_psql primary app "SELECT max(event_id) FROM tenant_iso.integrity_events WHERE event_id > $ev AND kind = 'quarantined'")
sleep 4
is "$(node_psql sub app "SELECT count(*) FROM items WHERE tenant_id = 'umbrella' AND note LIKE 'many-WRONG-%'")|$(tmd5 primary)" "10|$P5" \
	"5: nothing written: the subscriber's 10 rows still differ, the primary unchanged"
is "$(evs "$ev" "kind = 'repaired'")" "" "5: no 'repaired' event"
node_psql sub app "UPDATE items SET note = 'many-orig-' || id WHERE tenant_id = 'umbrella' AND id BETWEEN 7349160 AND 7349169"
node_psql primary app "ALTER SYSTEM RESET tenant_iso.max_auto_repair_rows; SELECT pg_reload_conf() \\g /dev/null
SELECT tenant_iso.acknowledge($qev, 'case 5 cleaned up')"
ok "$(wait_sql primary 20 "$ALL_OK"; echo $?)" "5: after the clean-up and acknowledge(): all ok"

# =====================================================================
# 6. a tenant's own writes
# =====================================================================
ev=$(ev_max)
others=$(tmd5_but acme primary)
cat >"$CLUSTER_BASE/acme.sql" <<'EOF'
\set id random(100000, 100400)
\set id2 random(1, 500)
INSERT INTO items (id, qty, note) VALUES (:id, 1, 'acme-own') ON CONFLICT (tenant_id, id) DO UPDATE SET qty = items.qty + 1;
UPDATE items SET qty = qty + 1 WHERE id = :id2;
DELETE FROM items WHERE id = :id + 1;
EOF
t6=$(node_psql primary app "SELECT extract(epoch FROM clock_timestamp())")
"$PGBIN/pgbench" -h 127.0.0.1 -p "$(node_port primary)" -U acme_app -n -c 2 -T 8 \
	-f "$CLUSTER_BASE/acme.sql" app >"$CLUSTER_BASE/acme.out" 2>&1 &
pgb=$!
# while acme writes: acme is busy, the others are still compared (a writer
# cannot blind the monitor to the other tenants)
sleep 6
is "$(node_psql primary app "SELECT count(*) > 0 AND bool_and(last_checked > to_timestamp($t6 + 1))
	FROM tenant_iso.integrity_status WHERE rel = 'items'::regclass AND tenant_id <> 'acme'")" t \
	"6: during acme's writes the other tenants are compared on every run"
wait "$pgb" && rc=0 || rc=$?
ok "$rc" "6: acme's member role writes its own rows for 8 s (pgbench)"
[ "$rc" -eq 0 ] || diag "$(cat "$CLUSTER_BASE/acme.out")"
sub_synced
node_wait_catchup standby primary >/dev/null
sleep 5 # two more runs on the settled state
is "$(evs "$ev" "tenant_id IS DISTINCT FROM 'acme'")" "" "6: no event for any other tenant"
is "$(evs "$ev" "kind IN ('repaired', 'quarantined', 'corrupt', 'repair_failed')")" "" "6: no repair or quarantine at all"
is "$(tmd5_but acme primary)|$(tmd5_but acme sub)|$(tmd5_but acme standby)" "$others|$others|$others" \
	"6: the other tenants' rows are unchanged on all three copies"
is "$(tmd5 sub)" "$(tmd5 primary)" "6: acme's rows replicated normally"
is "$(vbad sub)" "" "6: verify() on the subscriber is clean after the replicated writes"
ok "$(wait_sql primary 20 "$ALL_OK"; echo $?)" "6: all ok"

# =====================================================================
# 7. no key value in events or logs
# =====================================================================
is "$(node_psql primary app "SELECT count(*) > 0 AND bool_and(cardinality(key_hashes) > 0) FROM tenant_iso.integrity_events WHERE kind = 'repaired'")" t \
	"7: every 'repaired' event carries key hashes"
is "$(node_psql primary app "
SELECT count(*) FROM tenant_iso.integrity_events e
 WHERE concat_ws('|', e.relname, e.detail, e.key_hashes::text, e.note) ~ '73491[0-9][0-9]|QXflip|errant-|slow-|many-'
    OR EXISTS (SELECT 1 FROM unnest(e.key_hashes) h, generate_series(7349100, 7349199) k
                WHERE h IN (md5(k::text), md5('globex' || k), md5('initech' || k), md5('umbrella' || k)))")" 0 \
	"7: no event holds a key value or a marker, nor a plain md5 of a key"
sleep 0.5
is "$(cat "$(node_log primary)" "$(node_log standby)" "$(node_log sub)" | grep -cE '73491[0-9][0-9]|QXflip|errant-[ab]|slow-(orig|WRONG)|many-(orig|WRONG)' || true)" 0 \
	"7: no key value or marker in the logs of the three nodes"

tap_done
