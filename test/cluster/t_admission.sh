#!/usr/bin/env bash
# test/cluster/t_admission.sh: noisy-neighbour limits on a real server
# (issue 14): admission (max_active_statements), the rate limit, the caps,
# and the bounded statistics hash.
#
# One node with tenant_iso.stats_max_tenants = 10 (the minimum) and
# stats_period = 86400 (so a period boundary does not fall inside a test).
# Tenants: ta (max_active_statements = 1), tb (no limits), tr (20
# statements per second), tx (0.01 per second), tc (statement_timeout
# 300ms, work_mem 4MB), t01..t15 (statistics only).  Each has a LOGIN member
# role; the superuser enters a tenant with set_tenant() where it needs to.
#
#  - statistics: 16 tenants active, one of them (ta) with a live idle
#    session: at most 10 tenant rows plus the NULL row, the sum of
#    `statements` over all rows equals the number of statements run, and
#    ta (in use by a session) was not evicted;
#  - admission: a statement waiting longer than tenant_iso.admission_timeout
#    (ALTER SYSTEM + reload) fails with 53300 naming max_active_statements;
#    throttled and rejected count it; the overload LOG line appears once
#    for the tenant, not once per statement;
#  - no leaked slot after: pg_cancel_backend of a waiter (57014),
#    pg_terminate_backend of a waiter and of a running statement, kill -9 of
#    a running and of a waiting backend (crash recovery).  "No leaked slot"
#    is three checks: active_statements = 0, a statement is admitted at
#    once (admission_timeout 0), and with one statement running the next is
#    still refused (the count did not go below zero either);
#  - DO, EXPLAIN ANALYZE, COPY (query) TO and CREATE TABLE AS wait for
#    admission like a SELECT (no way around the limit); SET and SHOW do not;
#  - a parallel query of ta runs (its workers do not wait for slots); an
#    open cursor holds no slot between FETCHes;
#  - raising max_active_statements while a statement waits admits it, with
#    no reload, while the first still runs;
#  - rate: a burst loop of 60 statements runs at close to 20 per second;
#    a statement whose token is due after admission_timeout fails at once
#    with 53400; the LOG line comes once per tenant per period (and again in
#    a new period);
#  - a tenant whose rate or admission waiters were cancelled or terminated
#    can be evicted again (no waiting count left behind);
#  - ten tenants in use fill the hash: a new tenant with a limit fails
#    closed (53300), one without runs and counts under NULL;
#  - track_stats = off: counters stop, the limit still applies;
#  - caps: statement_timeout cancels a longer statement (even with
#    PGOPTIONS -c statement_timeout=0), and PGOPTIONS -c work_mem=1GB gives
#    the capped 4MB for the member's statements.
#
# nodes: 1
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 77

node_init main "tenant_iso.stats_max_tenants = 10" "tenant_iso.stats_period = 86400"
node_start main
node_psql main postgres "CREATE DATABASE app"
node_psql main app "
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
DO \$\$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['ta', 'tb', 'tr', 'tx', 'tc', 'tv', 'tw'] LOOP
		PERFORM tenant_iso.create_tenant(t);
		EXECUTE format('CREATE ROLE %I LOGIN', 'adm_' || t);
		PERFORM tenant_iso.add_member(('adm_' || t)::regrole, t);
	END LOOP;
	FOR i IN 1 .. 15 LOOP
		PERFORM tenant_iso.create_tenant(format('t%s', lpad(i::text, 2, '0')));
	END LOOP;
END
\$\$;
SELECT tenant_iso.set_tenant_limits('ta', max_active_statements => 1) \\g /dev/null
SELECT tenant_iso.set_tenant_limits('tr', max_statements_per_second => 20) \\g /dev/null
SELECT tenant_iso.set_tenant_limits('tx', max_statements_per_second => 0.01) \\g /dev/null
SELECT tenant_iso.set_tenant_limits('tc', statement_timeout => '300ms', work_mem => '4MB') \\g /dev/null
SELECT tenant_iso.set_tenant_limits('tv', max_active_statements => 1) \\g /dev/null
SELECT tenant_iso.set_tenant_limits('tw', max_statements_per_second => 0.2) \\g /dev/null
CREATE TABLE public.pbig AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g;
ANALYZE public.pbig;
GRANT SELECT ON public.pbig TO adm_ta;
"
LOG=$(node_log main)
PSQL=("$PGBIN/psql" -X -A -t -q -h 127.0.0.1 -p "$(node_port main)" -d app)

q() { node_psql main app "$1"; }

# try ROLE SQL: run SQL as ROLE (errors do not stop it; application_name
# $APP); print its output and messages, then a last line
# SQLSTATE=<state of the last error, or 00000>
try() {
	printf '%s;\n\\echo SQLSTATE=:LAST_ERROR_SQLSTATE\n' "$2" |
		PGAPPNAME=${APP:-psql} "${PSQL[@]}" -v ON_ERROR_STOP=0 -U "$1" -f - 2>&1 || true
}
state_of() { sed -n 's/^SQLSTATE=//p' <<<"$1" | tail -n 1; }

# bg NAME ROLE SQL: try ROLE SQL in the background, application_name NAME,
# output in $CLUSTER_BASE/NAME.out; bg_wait NAME waits (up to 60 s) and
# prints it (polling: it may run in a subshell, where wait cannot)
declare -A BG=()
bg() {
	APP=$1 try "$2" "$3" >"$CLUSTER_BASE/$1.out" 2>&1 &
	BG[$1]=$!
}
bg_wait() {
	local i
	for ((i = 0; i < 1200; i++)); do
		kill -0 "${BG[$1]}" 2>/dev/null || break
		sleep 0.05
	done
	cat "$CLUSTER_BASE/$1.out"
}

# wait_for SQL EXPECTED [SECONDS]: poll (default 20 s); print the last value
wait_for() {
	local i got
	for ((i = 0; i < ${3:-20} * 20; i++)); do
		got=$(q "$1" 2>/dev/null || true)
		[ "$got" = "$2" ] && break
		sleep 0.05
	done
	echo "$got"
}
# backend pid of application NAME; wait until it waits for admission / sleeps
app_pid() { q "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'"; }
waits_admission() {
	wait_for "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'
		AND wait_event_type = 'Extension' AND wait_event IN ('Extension', 'TenantIsoAdmission')" 1
}
sleeps() {
	wait_for "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'
		AND state = 'active' AND wait_event = 'PgSleep'" 1
}
stat() { q "SELECT $2 FROM tenant_iso.tenant_stats WHERE tenant IS NOT DISTINCT FROM ${1:-NULL}"; }
reload() {
	q "SELECT pg_reload_conf()" >/dev/null
	sleep 0.3
}
now_ms() { date +%s%3N; }

# probe TENANT [SQL]: the superuser enters TENANT and runs SQL (default a
# SELECT) with admission_timeout = 0: "free" if it ran, else the SQLSTATE
probe() {
	local out
	out=$(try postgres "SET tenant_iso.admission_timeout = 0;
		SELECT tenant_iso.set_tenant('$1') \\g /dev/null
		${2:-SELECT 1} \\g /dev/null")
	out=$(state_of "$out")
	if [ "$out" = 00000 ]; then echo free; else echo "$out"; fi
}

# holder NAME: a statement of ta that runs (sleeps) until cancelled
holder() {
	bg "$1" adm_ta "SELECT pg_sleep(60)"
	[ "$(sleeps "$1")" = 1 ] || diag "holder $1 did not start"
}
cancel_app() {
	q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = '$1'" >/dev/null
	bg_wait "$1" >/dev/null
}

# no_leak WHAT: 3 tests that ta's slot is back
no_leak() {
	is "$(wait_for "SELECT coalesce((SELECT active_statements FROM tenant_iso.tenant_stats
		WHERE tenant = 'ta'), 0)" 0 5)" 0 "$1: ta's active_statements is 0 (or ta has no row yet)"
	is "$(probe ta)" free "$1: a new statement of ta is admitted at once"
	holder chk
	is "$(probe ta)" 53300 "$1: with one statement running, the limit 1 still holds (53300)"
	cancel_app chk
}

# ---------------------------------------------------------------- statistics
q "SELECT tenant_iso.reset_tenant_stats()" >/dev/null
# ta: a member session that ran one statement and stays idle in its context
rm -f "$CLUSTER_BASE/ta_idle"
printf "SELECT 'ta idle';\n\\\\! touch '%s'; sleep 6\n" "$CLUSTER_BASE/ta_idle" |
	"${PSQL[@]}" -U adm_ta -f - >/dev/null 2>&1 &
IDLE=$!
for ((i = 0; i < 200; i++)); do [ -f "$CLUSTER_BASE/ta_idle" ] && break; sleep 0.05; done
# 15 tenants in turn on one superuser connection: set_tenant (counted for the
# tenant it was run in, or NULL), 3 statements, ... reset_tenant()
{
	for i in $(seq -w 1 15); do
		echo "SELECT tenant_iso.set_tenant('t$i') \\g /dev/null"
		echo "SELECT 1 \\g /dev/null"
		echo "SELECT count(*) FROM generate_series(1, $((10#$i))) \\g /dev/null"
		echo "SELECT current_setting('work_mem') \\g /dev/null"
	done
	echo "SELECT tenant_iso.reset_tenant() \\g /dev/null"
} | "${PSQL[@]}" -U postgres -v ON_ERROR_STOP=1 -f -
# run: reset_tenant_stats 1, ta 1, 15 x (set_tenant + 3), reset_tenant 1
is "$(q "SELECT count(*) FILTER (WHERE tenant IS NOT NULL) <= 10, count(*) FILTER (WHERE tenant IS NULL),
		sum(statements) FROM tenant_iso.tenant_stats")" "t|1|63" \
	"16 tenants active with stats_max_tenants = 10: at most 10 tenant rows, one NULL row, and the 63 statements run are all counted"
is "$(q "SELECT statements || ',' || sessions_in_context FROM tenant_iso.tenant_stats WHERE tenant = 'ta'")" "1,1" \
	"ta, least recently active but with a live session, was not evicted (its 1 statement, 1 session)"
is "$(q "SELECT statements FROM tenant_iso.tenant_stats WHERE tenant = 't15'")" 4 \
	"the last tenant, t15, has its own row: its 3 statements and the reset_tenant() run in it"
wait "$IDLE" || true

# ---------------------------------------------------------------- admission timeout
q "ALTER SYSTEM SET tenant_iso.admission_timeout = '1s'"
reload
q "SELECT tenant_iso.reset_tenant_stats('ta')" >/dev/null
holder h1
t0=$(now_ms)
out=$(try adm_ta "SELECT 'admitted'")
el=$(($(now_ms) - t0))
is "$(state_of "$out")" 53300 "a statement of ta waiting longer than admission_timeout (1s) fails with 53300"
like "$out" "too many active statements for this tenant" "... 'too many active statements for this tenant'"
like "$out" "max_active_statements = 1" "... its detail names max_active_statements = 1"
like "$out" "tenant_iso.admission_timeout" "... and tenant_iso.admission_timeout"
ok "$([ "$el" -ge 900 ] && [ "$el" -lt 5000 ]; echo $?)" "... after waiting about 1 s ($el ms)"
try adm_ta "SELECT 'admitted'" >/dev/null
try adm_ta "SELECT 'admitted'" >/dev/null
is "$(stat "'ta'" "throttled || ',' || rejected")" "3,3" "ta: throttled 3, rejected 3"
is "$(grep -c 'tenant_iso: tenant "ta" is held back by its limit max_active_statements = 1' "$LOG")" 1 \
	"the LOG line 'tenant \"ta\" is held back by its limit max_active_statements = 1' appears once, not per statement"
cancel_app h1
no_leak "after the timeouts"

q "ALTER SYSTEM SET tenant_iso.admission_timeout = '30s'"
reload

# ---------------------------------------------------------------- cancel a waiter
holder h2
bg w2 adm_ta "SELECT 'admitted'"
is "$(waits_admission w2)" 1 "a second statement of ta waits for admission (wait_event_type Extension)"
q "SELECT pg_cancel_backend($(app_pid w2))" >/dev/null
is "$(state_of "$(bg_wait w2)")" 57014 "pg_cancel_backend of the waiter: 57014"
cancel_app h2
no_leak "after cancelling a waiter"

# ---------------------------------------------------------------- other statement forms
# A statement that runs a query as a utility is a statement of the tenant
# too (neighbours-spec: DO, EXPLAIN, COPY ... count as one statement each):
# with ta's one slot in use it must wait like a SELECT, or max_active_statements
# is bypassed by wrapping the heavy query.
holder h9
is "$(probe ta "DO \$\$ BEGIN PERFORM count(*) FROM generate_series(1, 1000); END \$\$")" 53300 \
	"with ta's slot in use, a DO block running a query waits for admission too (53300)"
is "$(probe ta "EXPLAIN ANALYZE SELECT count(*) FROM generate_series(1, 1000)")" 53300 \
	"... and EXPLAIN ANALYZE of a query (53300)"
is "$(probe ta "COPY (SELECT count(*) FROM generate_series(1, 1000)) TO STDOUT")" 53300 \
	"... and COPY (query) TO STDOUT (53300)"
is "$(probe ta "CREATE TEMP TABLE adm_ctas AS SELECT count(*) FROM generate_series(1, 1000)")" 53300 \
	"... and CREATE TABLE AS (53300)"
is "$(probe ta "SET work_mem = '1MB'")|$(probe ta "SHOW work_mem")" "free|free" \
	"... but SET and SHOW never wait for a slot"
cancel_app h9

# ---------------------------------------------------------------- parallel query, cursors
# ta's one slot is the leader's: its parallel workers do not wait for slots
out=$(try adm_ta "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT count(*) FROM public.pbig WHERE v LIKE '%ab%';
SELECT count(*) FROM public.pbig WHERE v LIKE '%ab%'")
like "$out" "Workers Launched: [1-9]" "a parallel query of ta (max_active_statements 1) launches its workers"
is "$(grep -x '[0-9]*' <<<"$out" | tail -n 1)|$(state_of "$out")" \
	"$(q "SELECT count(*) FROM public.pbig WHERE v LIKE '%ab%'")|00000" \
	"... and runs to its result: the workers do not wait for admission"
# an open cursor holds no slot between its FETCHes
rm -f "$CLUSTER_BASE/cursor_open"
printf "BEGIN;\nDECLARE c CURSOR FOR SELECT g FROM generate_series(1, 10) g;\nFETCH 1 FROM c;\n\\\\! touch '%s'; sleep 1\nFETCH 1 FROM c;\nCOMMIT;\n" \
	"$CLUSTER_BASE/cursor_open" | "${PSQL[@]}" -U adm_ta -f - >"$CLUSTER_BASE/cursor.out" 2>&1 &
CUR=$!
for ((i = 0; i < 200; i++)); do [ -f "$CLUSTER_BASE/cursor_open" ] && break; sleep 0.05; done
is "$(probe ta)" free "while a session of ta has an open cursor between FETCHes, another statement of ta is admitted at once"
wait "$CUR" || true
is "$(paste -sd' ' "$CLUSTER_BASE/cursor.out")" "1 2" "... and the cursor's next FETCH runs too"

# ---------------------------------------------------------------- limits change live
holder h3
bg w3 adm_ta "SELECT 'admitted'"
waits_admission w3 >/dev/null
t0=$(now_ms)
q "SELECT tenant_iso.set_tenant_limits('ta', max_active_statements => 2)" >/dev/null
out=$(bg_wait w3)
el=$(($(now_ms) - t0))
like "$out" "admitted" "raising max_active_statements to 2 admits the waiting statement, with no reload ($el ms)"
is "$(q "SELECT state FROM pg_stat_activity WHERE application_name = 'h3'")" active \
	"... while the first statement still runs"
q "SELECT tenant_iso.set_tenant_limits('ta', max_active_statements => 1)" >/dev/null
cancel_app h3
# removing ta's limits (all NULL deletes its row) also admits a waiter
holder h3b
bg w3b adm_ta "SELECT 'admitted'"
waits_admission w3b >/dev/null
q "SELECT tenant_iso.set_tenant_limits('ta')" >/dev/null
like "$(bg_wait w3b)" "admitted" "removing ta's limits (set_tenant_limits('ta')) admits a waiting statement at once"
q "SELECT tenant_iso.set_tenant_limits('ta', max_active_statements => 1)" >/dev/null
cancel_app h3b

# ---------------------------------------------------------------- terminate
holder h4
bg w4 adm_ta "SELECT 'admitted'"
waits_admission w4 >/dev/null
q "SELECT pg_terminate_backend($(app_pid w4))" >/dev/null
like "$(bg_wait w4)" "terminating connection" "pg_terminate_backend of a waiter ends its connection"
cancel_app h4
no_leak "after terminating a waiter"

holder h5
q "SELECT pg_terminate_backend($(app_pid h5))" >/dev/null
like "$(bg_wait h5)" "terminating connection" "pg_terminate_backend of a running statement ends its connection"
no_leak "after terminating a running statement"

# ---------------------------------------------------------------- track_stats = off
q "ALTER SYSTEM SET tenant_iso.track_stats = off"
reload
try adm_tb "SELECT 0" >/dev/null
before=$(stat "'tb'" statements)
try adm_tb "SELECT 1; SELECT 2; SELECT 3" >/dev/null
is "$(stat "'tb'" statements)" "$before" "track_stats = off: tb's statements are not counted"
holder h6
is "$(probe ta)" 53300 "track_stats = off: ta's limit still applies (53300)"
cancel_app h6
q "ALTER SYSTEM SET tenant_iso.track_stats = on"
reload
try adm_tb "SELECT 1" >/dev/null
is "$(stat "'tb'" statements)" "$((before + 1))" "track_stats = on again: counted again"

# ---------------------------------------------------------------- rate
q "SELECT tenant_iso.reset_tenant_stats('tr')" >/dev/null
t0=$(now_ms)
for i in $(seq 1 60); do echo "SELECT $i \\g /dev/null"; done | "${PSQL[@]}" -U adm_tr -v ON_ERROR_STOP=1 -f -
el=$(($(now_ms) - t0))
rate=$(awk -v el="$el" 'BEGIN { printf "%.2f", 58 / (el / 1000) }')
diag "60 statements at 20/s (burst 2) took $el ms: $rate statements/s after the burst"
ok "$(awk -v r="$rate" 'BEGIN { exit !(r >= 18 && r <= 21) }'; echo $?)" \
	"a burst loop of tr runs at close to its 20 statements per second ($rate/s after the burst of 2)"
thr=$(stat "'tr'" throttled)
ok "$([ "$thr" -ge 50 ] && [ "$thr" -le 58 ]; echo $?)" "tr: the statements after the burst were throttled ($thr of 60)"
is "$(stat "'tr'" rejected)" 0 "tr: none rejected (each wait was shorter than admission_timeout)"
is "$(grep -c 'tenant_iso: tenant "tr" is held back by its limit max_statements_per_second = 20' "$LOG")" 1 \
	"the rate LOG line for tr appears once in the period, not once per throttled statement"

t0=$(now_ms)
out=$(try adm_tx "SELECT 'first'; SELECT 'second'")
el=$(($(now_ms) - t0))
like "$out" "first" "tx (0.01 statements/s): the first statement runs (the burst token)"
is "$(state_of "$out")" 53400 "the second, whose token is due in 100 s > admission_timeout (30 s), fails with 53400"
like "$out" "statement rate limit of this tenant exceeded" "... 'statement rate limit of this tenant exceeded'"
ok "$([ "$el" -lt 3000 ]; echo $?)" "... at once, without waiting ($el ms)"
is "$(stat "'tx'" rejected)" 1 "tx: rejected 1"

# a new period: the LOG line comes again (stats_period = 3, epoch-aligned)
q "ALTER SYSTEM SET tenant_iso.stats_period = 3"
reload
burst6() { for i in 1 2 3 4 5 6; do echo "SELECT $i \\g /dev/null"; done | "${PSQL[@]}" -U adm_tr -f -; }
to_period_start() { sleep "$(awk -v ms="$(now_ms)" 'BEGIN { printf "%.3f", (3000 - ms % 3000) / 1000 + 0.2 }')"; }
n0=$(grep -c 'tenant "tr" is held back' "$LOG")
to_period_start
burst6
burst6
n1=$(grep -c 'tenant "tr" is held back' "$LOG")
to_period_start
burst6
n2=$(grep -c 'tenant "tr" is held back' "$LOG")
is "$((n1 - n0)),$((n2 - n1))" "1,1" \
	"stats_period = 3: one LOG line for tr in a period of two throttled bursts, one more in the next period"
q "ALTER SYSTEM SET tenant_iso.stats_period = 86400"
reload

# ---------------------------------------------------------------- caps
t0=$(now_ms)
out=$(try adm_tc "SELECT pg_sleep(3)")
el=$(($(now_ms) - t0))
is "$(state_of "$out")" 57014 "tc (statement_timeout 300ms): SELECT pg_sleep(3) is cancelled (57014)"
like "$out" "statement timeout" "... 'canceling statement due to statement timeout'"
ok "$([ "$el" -lt 2500 ]; echo $?)" "... early ($el ms)"
t0=$(now_ms)
out=$(PGOPTIONS='-c statement_timeout=0' try adm_tc "SELECT pg_sleep(3)")
el=$(($(now_ms) - t0))
is "$(state_of "$out")" 57014 "with PGOPTIONS -c statement_timeout=0 too (57014, $el ms)"
is "$(PGOPTIONS='-c work_mem=1GB' try adm_tb "SELECT 1 \\g /dev/null
SHOW work_mem" | head -n 1)" 1GB "control: PGOPTIONS -c work_mem=1GB reaches a tenant without limits"
out=$(PGOPTIONS='-c work_mem=1GB' try adm_tc "SELECT 1 \\g /dev/null
SHOW work_mem;
SELECT current_setting('work_mem')")
is "$(state_of "$out")" 00000 "tc's member connects with PGOPTIONS -c work_mem=1GB and runs statements"
is "$(head -n 2 <<<"$out" | paste -sd' ')" "4MB 4MB" \
	"... and work_mem in effect for its statements is the capped 4MB (SHOW, current_setting)"
is "$(PGOPTIONS='-c work_mem=1GB' try adm_tc "SHOW work_mem" | head -n 1)" 4MB \
	"... also for SHOW as the first statement"

# ---------------------------------------------------------------- waiters gone: evictable
# A tenant whose waiters were cancelled or terminated has no waiting
# statement left, so its entry can be evicted again (a leaked "waiting"
# count would pin it in the hash for good).
rate_waits() {
	wait_for "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'
		AND wait_event_type = 'Extension' AND wait_event IN ('Extension', 'TenantIsoRateLimit')" 1
}
bg tw1 adm_tw "SELECT 'first'; SELECT 'second'"	# 0.2/s: the second waits ~5 s for its token
is "$(rate_waits tw1)" 1 "tw (0.2 statements/s): the second statement waits for its token"
q "SELECT pg_cancel_backend($(app_pid tw1))" >/dev/null
is "$(state_of "$(bg_wait tw1)")" 57014 "... pg_cancel_backend of the rate waiter: 57014"
bg tw2 adm_tw "SELECT 'third'"
rate_waits tw2 >/dev/null
q "SELECT pg_terminate_backend($(app_pid tw2))" >/dev/null
like "$(bg_wait tw2)" "terminating connection" "... pg_terminate_backend of another rate waiter ends it"
bg tv1 adm_tv "SELECT pg_sleep(60)"
sleeps tv1 >/dev/null
bg tv2 adm_tv "SELECT 'admitted'"
waits_admission tv2 >/dev/null
q "SELECT pg_terminate_backend($(app_pid tv2))" >/dev/null
bg_wait tv2 >/dev/null
cancel_app tv1
is "$(q "SELECT count(*) FROM tenant_iso.tenant_stats WHERE tenant IN ('tv', 'tw') AND active_statements = 0")" 2 \
	"tv and tw have their rows, with no statement running"
{
	for i in $(seq -w 1 15); do
		echo "SELECT tenant_iso.set_tenant('t$i') \\g /dev/null"
		echo "SELECT 1 \\g /dev/null"
	done
} | "${PSQL[@]}" -U postgres -v ON_ERROR_STOP=1 -f -
is "$(q "SELECT count(*) FROM tenant_iso.tenant_stats WHERE tenant IN ('tv', 'tw')")" 0 \
	"after their waiters were cancelled or terminated, tv and tw (idle) are evicted by 15 newer tenants"

# ---------------------------------------------------------------- hash full: fail closed
# Ten tenants held by live idle sessions fill the hash (stats_max_tenants =
# 10): nothing can be evicted.  A new tenant with a limit then fails closed
# (53300 "cannot track another tenant"); one without limits runs, counted
# under the NULL row.
rm -f "$CLUSTER_BASE"/full_*
FULL=()
for i in $(seq -w 1 10); do
	printf "SELECT tenant_iso.set_tenant('t%s') \\\\g /dev/null\nSELECT 1 \\\\g /dev/null\n\\\\! touch '%s'; sleep 4\n" \
		"$i" "$CLUSTER_BASE/full_$i" | "${PSQL[@]}" -U postgres -f - >/dev/null 2>&1 &
	FULL+=($!)
done
for ((i = 0; i < 200; i++)); do [ "$(ls "$CLUSTER_BASE"/full_* 2>/dev/null | wc -l)" -eq 10 ] && break; sleep 0.05; done
nullbefore=$(stat NULL statements)
out=$(try adm_tv "SELECT 'tv ran'")
is "$(state_of "$out")" 53300 "hash full of tenants in use: a statement of tv (max_active_statements 1) fails closed with 53300"
like "$out" "cannot track another tenant" "... 'tenant_iso cannot track another tenant'"
out=$(try adm_tb "SELECT 'tb ran'")
is "$(state_of "$out")|$(q "SELECT count(*) FROM tenant_iso.tenant_stats WHERE tenant = 'tb'")" "00000|0" \
	"... while tb (no limits) runs, with no row of its own"
ok "$([ "$(stat NULL statements)" -gt "$nullbefore" ]; echo $?)" "... its statement counted under the NULL row"
for p in "${FULL[@]}"; do wait "$p" || true; done

# ---------------------------------------------------------------- kill -9
# wait_up: the server accepts connections again after crash recovery
wait_up() {
	local i
	for ((i = 0; i < 300; i++)); do
		q "SELECT 1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
holder h7
kill -9 "$(app_pid h7)"
bg_wait h7 >/dev/null
ok_cmd "kill -9 of a running statement's backend: crash recovery, the server is back" wait_up
like "$(grep -c 'terminated by signal 9' "$LOG")" "^[1-9]" "... (the postmaster saw the backend die by signal 9)"
no_leak "after kill -9 of a running statement"

holder h8
bg w8 adm_ta "SELECT 'admitted'"
waits_admission w8 >/dev/null
kill -9 "$(app_pid w8)"
bg_wait w8 >/dev/null
bg_wait h8 >/dev/null
ok_cmd "kill -9 of a waiting backend: crash recovery, the server is back" wait_up
no_leak "after kill -9 of a waiting statement"

tap_done
