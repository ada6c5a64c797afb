#!/usr/bin/env bash
# test/cluster/t_limits_dump.sh: tenant limits survive pg_dump and restore
# (issue 14).
#
# One node.  Database src has tenants la (every limit: max_active_statements
# 1, statement_timeout 300ms, work_mem 4MB, temp_file_limit 10MB,
# max_statements_per_second 50), lb (work_mem 2MB only) and lc (no limits of
# its own), set with set_tenant_limits(), and a LOGIN member role
# each.  src is dumped in custom format (restored with pg_restore into dst)
# and in plain format (restored with psql into dst_plain).  In each copy:
#  - tenant_iso.limits has the same rows (updated_at included), and the view
#    tenant_limits shows the same effective limits and own_limits flags;
#  - the limits are in effect for the members there: work_mem is capped to
#    4MB (even with PGOPTIONS -c work_mem=1GB), a longer statement is
#    cancelled by the 300ms statement_timeout, SET work_mem above the
#    limit is refused (42501), and with one statement of la running in the
#    copy, the next waits for admission (53300 with admission_timeout 0);
#  - statistics and admission are per database and tenant: a statement of
#    la running in src does not take la's slot in the copy;
#  - lb keeps only its work_mem, lc has no limits; a later
#    set_tenant_limits() in the copy changes the copy only.
#
# nodes: 1
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 30

node_init n1
node_start n1
node_psql n1 postgres "CREATE DATABASE src"
node_psql n1 src "
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
CREATE ROLE ld_a LOGIN;
CREATE ROLE ld_b LOGIN;
CREATE ROLE ld_c LOGIN;
SELECT tenant_iso.create_tenant('la') \\g /dev/null
SELECT tenant_iso.create_tenant('lb') \\g /dev/null
SELECT tenant_iso.create_tenant('lc') \\g /dev/null
SELECT tenant_iso.add_member('ld_a', 'la') \\g /dev/null
SELECT tenant_iso.add_member('ld_b', 'lb') \\g /dev/null
SELECT tenant_iso.add_member('ld_c', 'lc') \\g /dev/null
SELECT tenant_iso.set_tenant_limits('la', max_active_statements => 1, statement_timeout => '300ms',
	work_mem => '4MB', temp_file_limit => '10MB', max_statements_per_second => 50) \\g /dev/null
SELECT tenant_iso.set_tenant_limits('lb', work_mem => '2MB') \\g /dev/null
"

LIMITS_SQL="SELECT tenant_id, coalesce(max_active_statements::text, '-'), coalesce(statement_timeout::text, '-'),
	coalesce(work_mem, '-'), coalesce(temp_file_limit, '-'), coalesce(max_statements_per_second::text, '-'),
	updated_at FROM tenant_iso.limits ORDER BY 1"
VIEW_SQL="SELECT tenant, coalesce(max_active_statements::text, '-'), coalesce(statement_timeout::text, '-'),
	coalesce(work_mem, '-'), coalesce(temp_file_limit, '-'), coalesce(max_statements_per_second::text, '-'),
	own_limits FROM tenant_iso.tenant_limits ORDER BY 1"
SRC_LIMITS=$(node_psql n1 src "$LIMITS_SQL")
SRC_VIEW=$(node_psql n1 src "$VIEW_SQL")
is "$(node_psql n1 src "SELECT string_agg(tenant_id, ',' ORDER BY 1) FROM tenant_iso.limits")" "la,lb" \
	"src: la and lb have rows in tenant_iso.limits"

PSQL=("$PGBIN/psql" -X -A -t -q -h 127.0.0.1 -p "$(node_port n1)")
# try ROLE DB SQL: run SQL (errors do not stop it; application_name $APP);
# print the output and messages, then SQLSTATE=<last error state or 00000>
try() {
	printf '%s;\n\\echo SQLSTATE=:LAST_ERROR_SQLSTATE\n' "$3" |
		PGAPPNAME=${APP:-psql} "${PSQL[@]}" -v ON_ERROR_STOP=0 -U "$1" -d "$2" -f - 2>&1 || true
}
state_of() { sed -n 's/^SQLSTATE=//p' <<<"$1" | tail -n 1; }
# probe DB TENANT: the superuser enters TENANT in DB and runs a statement
# with admission_timeout = 0: "free" if it ran, else its SQLSTATE
probe() {
	local st
	st=$(state_of "$(try postgres "$1" "SET tenant_iso.admission_timeout = 0;
		SELECT tenant_iso.set_tenant('$2') \\g /dev/null
		SELECT 1 \\g /dev/null")")
	if [ "$st" = 00000 ]; then echo free; else echo "$st"; fi
}
# hold DB NAME: a statement of la that sleeps in DB (application_name NAME)
# until cancel_app DB NAME; waits until it runs
declare -A BG=()
hold() {
	local i
	APP=$2 try ld_a "$1" "SELECT pg_sleep(60)" >/dev/null &
	BG[$2]=$!
	for ((i = 0; i < 400; i++)); do
		[ "$(node_psql n1 "$1" "SELECT count(*) FROM pg_stat_activity
			WHERE application_name = '$2' AND wait_event = 'PgSleep'")" = 1 ] && return 0
		sleep 0.05
	done
	diag "holder $2 in $1 did not start"
}
cancel_app() {
	node_psql n1 "$1" "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = '$2'" >/dev/null
	wait "${BG[$2]}" 2>/dev/null || true
}

# ---- dumps and restores
DUMP_DIR=$CLUSTER_BASE/dumps
mkdir -p "$DUMP_DIR"
PG_ARGS=(-h 127.0.0.1 -p "$(node_port n1)" -U postgres)
ok_cmd "pg_dump -Fc src" "$PGBIN/pg_dump" "${PG_ARGS[@]}" -Fc -f "$DUMP_DIR/src.dump" src
ok_cmd "pg_dump (plain) src" "$PGBIN/pg_dump" "${PG_ARGS[@]}" -Fp -f "$DUMP_DIR/src.sql" src
node_psql n1 postgres "CREATE DATABASE dst"
out=$("$PGBIN/pg_restore" "${PG_ARGS[@]}" -d dst "$DUMP_DIR/src.dump" 2>&1) && rc=0 || rc=$?
ok "$rc" "pg_restore of the custom-format dump into dst succeeds"
[ "$rc" -eq 0 ] || diag "$out"
node_psql n1 postgres "CREATE DATABASE dst_plain"
out=$("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "${PG_ARGS[@]}" -d dst_plain \
	-f "$DUMP_DIR/src.sql" 2>&1 >/dev/null) && rc=0 || rc=$?
ok "$rc" "psql restore of the plain dump into dst_plain succeeds"
[ "$rc" -eq 0 ] || diag "$out"

# check_copy DB: 12 tests on a restored copy
check_copy() {
	local db=$1 out t0 el
	is "$(node_psql n1 "$db" "$LIMITS_SQL")" "$SRC_LIMITS" "$db: tenant_iso.limits has the same rows as src (updated_at too)"
	is "$(node_psql n1 "$db" "$VIEW_SQL")" "$SRC_VIEW" "$db: tenant_limits shows the same effective limits"

	out=$(PGOPTIONS='-c work_mem=1GB' try ld_a "$db" "SELECT 1 \\g /dev/null
SHOW work_mem")
	is "$(head -n 1 <<<"$out")" 4MB "$db: la's member gets work_mem 4MB (PGOPTIONS asked for 1GB)"
	is "$(state_of "$(try ld_a "$db" "SET work_mem = '64MB'")")" 42501 \
		"$db: SET work_mem above la's limit is refused (42501)"
	t0=$(date +%s%3N)
	out=$(try ld_a "$db" "SELECT pg_sleep(3)")
	el=$(($(date +%s%3N) - t0))
	is "$(state_of "$out")" 57014 "$db: la's statement_timeout 300ms cancels SELECT pg_sleep(3) (57014, $el ms)"
	is "$(try ld_b "$db" "SHOW work_mem" | head -n 1)" 2MB "$db: lb's member gets its work_mem 2MB"
	is "$(PGOPTIONS='-c work_mem=1GB' try ld_c "$db" "SHOW work_mem" | head -n 1)" 1GB \
		"$db: lc has no limits (PGOPTIONS work_mem=1GB stays)"

	hold "$db" "hold_$db"
	is "$(probe "$db" la)" 53300 "$db: with one statement of la running, the next waits for admission (max_active_statements 1)"
	is "$(probe "$db" lb)" free "$db: ... lb is not held"
	cancel_app "$db" "hold_$db"
	hold src "hold_src_$db"
	is "$(probe "$db" la)" free "$db: a statement of la running in src does not take la's slot in $db"
	is "$(probe src la)" 53300 "... but does in src"
	cancel_app src "hold_src_$db"
	is "$(probe "$db" la)" free "$db: la's slot is free again"
}
check_copy dst
check_copy dst_plain

node_psql n1 dst "SELECT tenant_iso.set_tenant_limits('lb', work_mem => '8MB') \\g /dev/null"
export PGOPTIONS='-c work_mem=1GB'
is "$(try ld_b dst "SHOW work_mem" | head -n 1)|$(try ld_b src "SHOW work_mem" | head -n 1)" "8MB|2MB" \
	"set_tenant_limits in dst changes dst only (lb asking for 1GB: 8MB in dst, 2MB in src)"
unset PGOPTIONS
tap_done
