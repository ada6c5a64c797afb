#!/usr/bin/env bash
# test/cluster/t_copy_hooks.sh: a tenant's COPY into a protected table is
# seen by the libraries that hook the utility chain (issue 12, part 5).
#
# tenant_iso runs COPY FROM into a protected table itself (native row
# security refuses it).  A library listed BEFORE tenant_iso in
# shared_preload_libraries has its utility hook below ours, so tenant_iso
# must pass the COPY down the chain; one listed AFTER wraps our hook.
# For both orders, with pg_stat_statements and pgaudit loaded:
#  - the member's COPY loads its rows, and pg_stat_statements records it
#    (its text, one call, its row count);
#  - pgaudit writes an audit line for it;
#  - a foreign row still aborts the COPY with 42501 and loads nothing;
#  - no staging table outlives the statement.
# nodes: 1
# needs: pg_stat_statements pgaudit
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 15

check_order() {
	local name=$1 preload=$2 out log
	node_init "$name" "shared_preload_libraries = '$preload'" \
		"pg_stat_statements.track_utility = on" "pgaudit.log = 'write'"
	node_start "$name"
	node_psql "$name" postgres "CREATE DATABASE app"
	node_psql "$name" app "
CREATE EXTENSION tenant_iso;
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION pgaudit;
CREATE ROLE ch_m LOGIN;
SELECT tenant_iso.create_tenant('acme') \\g /dev/null
SELECT tenant_iso.create_tenant('beta') \\g /dev/null
SELECT tenant_iso.add_member('ch_m', 'acme') \\g /dev/null
CREATE TABLE notes (tenant_id text NOT NULL DEFAULT tenant_iso.current_tenant(), id int, body text);
SELECT tenant_iso.protect('notes') \\g /dev/null
GRANT SELECT, INSERT ON notes TO ch_m;
SELECT pg_stat_statements_reset() \\g /dev/null
"
	out=$(node_psql_as "$name" ch_m app "COPY notes (tenant_id, id, body) FROM STDIN;
$(printf 'acme\t1\tone\nacme\t2\ttwo\nacme\t3\tthree\n\\.')" 2>&1) || true
	is "$(node_psql "$name" app "SELECT count(*) FROM notes WHERE tenant_id = 'acme'")" "3" \
		"$name ($preload): the member's COPY loaded its 3 rows${out:+ ($out)}"
	is "$(node_psql "$name" app "SELECT calls || '/' || rows FROM pg_stat_statements
		 WHERE query LIKE 'COPY notes (tenant_id, id, body) FROM STDIN%'")" "1/3" \
		"$name ($preload): pg_stat_statements recorded the COPY once, with its 3 rows"
	log=$(node_log "$name")
	like "$(grep 'AUDIT: SESSION' "$log" | grep -i 'COPY notes' || true)" "WRITE" \
		"$name ($preload): pgaudit logged the COPY as WRITE"
	out=$(node_psql_as "$name" ch_m app "\\set VERBOSITY verbose
COPY notes (tenant_id, id, body) FROM STDIN;
$(printf 'acme\t4\tfour\nbeta\t5\tforeign\n\\.')" 2>&1 || true)
	like "$out" "42501" "$name ($preload): a foreign row aborts the COPY with 42501"
	is "$(node_psql "$name" app "SELECT count(*) FROM notes")" "3" \
		"$name ($preload): the aborted COPY loaded nothing"
	out=$(node_psql_as "$name" ch_m app "COPY notes (tenant_id, id, body) FROM STDIN;
$(printf 'acme\t6\tsix\n\\.')
SELECT count(*) FROM pg_class WHERE relname LIKE 'tenant\\_iso\\_copy%' AND relpersistence = 't'" 2>&1 || true)
	is "$out" "0" "$name ($preload): no staging table outlives the COPY"
	node_stop "$name"
}

# pg_stat_statements and pgaudit below tenant_iso: the COPY must be passed down
check_order below "pg_stat_statements,pgaudit,tenant_iso"
# ... and above it: they wrap our hook
check_order above "tenant_iso,pg_stat_statements,pgaudit"

# the fast path (no hook below ours) and the staged path load the same rows
node_init plain
node_start plain
node_psql plain postgres "CREATE DATABASE app"
node_psql plain app "
CREATE EXTENSION tenant_iso;
CREATE ROLE ch_m LOGIN;
SELECT tenant_iso.create_tenant('acme') \\g /dev/null
SELECT tenant_iso.add_member('ch_m', 'acme') \\g /dev/null
CREATE TABLE notes (tenant_id text NOT NULL DEFAULT tenant_iso.current_tenant(), id int, body text);
SELECT tenant_iso.protect('notes') \\g /dev/null
GRANT SELECT, INSERT ON notes TO ch_m;
"
node_psql_as plain ch_m app "COPY notes (id, body) FROM STDIN;
$(printf '1\tone\n2\ttwo\n\\.')" >/dev/null 2>&1 || true
is "$(node_psql plain app "SELECT string_agg(tenant_id || ':' || id, ',' ORDER BY id) FROM notes")" "acme:1,acme:2" \
	"plain: without a hook below ours, COPY fills the default tenant column"
out=$(node_psql_as plain ch_m app "\\set VERBOSITY verbose
COPY notes (tenant_id, id, body) FROM STDIN;
$(printf 'beta\t9\tforeign\n\\.')" 2>&1 || true)
like "$out" "42501" "plain: a foreign row aborts the COPY with 42501"
node_stop plain
is "$(cat "$(node_log below)" "$(node_log above)" "$(node_log plain)" | grep -c 'TRAP\|was terminated by signal')" "0" \
	"no backend crashed"

tap_done
