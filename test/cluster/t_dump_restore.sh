#!/usr/bin/env bash
# test/cluster/t_dump_restore.sh: pg_dump and restore of a database that
# uses tenant_iso.
#
# One node.  Database src has tenants acme, globex (and a suspended
# initech), member roles, a switcher, a protected table and a protected
# partitioned table (one partition created after protect()), with rows of
# two tenants.  It is dumped in custom format and restored with pg_restore
# into dst, and dumped in plain format and restored with psql into
# dst_plain.  In both copies: the extension and its configuration rows
# (pg_extension_config_dump) came back, the same tables are protected with
# row security enabled and forced, member roles see only their tenant's
# rows, and a switcher without a context is refused (42501).
#
# nodes: 1
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 39

# sqlstate NODE USER DB SQL: run SQL (errors do not stop psql) and print the
# SQLSTATE of the last error, or 00000.
sqlstate() {
	local name=$1 user=$2 db=$3 sql=$4
	printf '%s;\n\\echo :LAST_ERROR_SQLSTATE\n' "$sql" |
		"$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=0 -h 127.0.0.1 \
			-p "$(node_port "$name")" -U "$user" -d "$db" -f - 2>/dev/null | tail -n 1
}

# Everything the extension keeps about the database, as text.
CONFIG_SQL="
SELECT 'tenant', tenant_id, coalesce(display_name, '-'), status, created_at
  FROM tenant_iso.tenants ORDER BY tenant_id;
SELECT 'member', member::text, tenant_id, added_at FROM tenant_iso.members ORDER BY 2;
SELECT 'switcher', grantee::text, granted_at FROM tenant_iso.switchers ORDER BY 2;
SELECT 'protected', rel::text, tenant_column, coalesce(via::text, '-'), default_set,
       prior_rls, prior_force, protected_at
  FROM tenant_iso.protected ORDER BY 2;"
PROTECTED_TABLES_SQL="SELECT rel::text || ' ' || tenant_column || ' ' || protected_at
  FROM tenant_iso.protected_tables ORDER BY 1"
RLS_FLAGS_SQL="SELECT c.oid::regclass::text || ' ' || c.relrowsecurity || ' ' || c.relforcerowsecurity
  FROM pg_class c JOIN tenant_iso.protected p ON p.rel = c.oid ORDER BY 1"
DOCS_SQL="SELECT string_agg(tenant_id || ':' || id || ':' || body, ',' ORDER BY tenant_id, id) FROM docs"
EVENTS_SQL="SELECT string_agg(tenant_id || ':' || at || ':' || what, ',' ORDER BY tenant_id, at) FROM events"

node_init n1
node_start n1

# ---- the source database
node_psql n1 postgres "CREATE DATABASE src"
node_psql n1 src "
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
CREATE ROLE dr_alice LOGIN;
CREATE ROLE dr_bob LOGIN;
CREATE ROLE dr_pool LOGIN;
SELECT tenant_iso.create_tenant('acme', 'Acme Inc.') \\g /dev/null
SELECT tenant_iso.create_tenant('globex') \\g /dev/null
SELECT tenant_iso.create_tenant('initech', 'Initech') \\g /dev/null
SELECT tenant_iso.suspend_tenant('initech') \\g /dev/null
SELECT tenant_iso.add_member('dr_alice', 'acme') \\g /dev/null
SELECT tenant_iso.add_member('dr_bob', 'globex') \\g /dev/null
SELECT tenant_iso.grant_switch('dr_pool') \\g /dev/null

CREATE TABLE docs (
	tenant_id text NOT NULL,
	id int NOT NULL,
	body text,
	PRIMARY KEY (tenant_id, id)
);
SELECT tenant_iso.protect('docs') \\g /dev/null

CREATE TABLE events (
	tenant_id text NOT NULL,
	at date NOT NULL,
	what text,
	PRIMARY KEY (tenant_id, at)
) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
SELECT tenant_iso.protect('events') \\g /dev/null
-- created after protect(): protected by the event trigger
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');

-- an unprotected table, which must stay unprotected
CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO notes VALUES (1, 'shared');

GRANT SELECT, INSERT, UPDATE, DELETE ON docs, events, events_2024, events_2025, events_2026, notes
	TO dr_alice, dr_bob, dr_pool;

INSERT INTO docs VALUES
	('acme', 1, 'a-one'), ('acme', 2, 'a-two'),
	('globex', 1, 'g-one'), ('globex', 3, 'g-three');
INSERT INTO events VALUES
	('acme', '2024-03-01', 'a-24'), ('acme', '2025-03-01', 'a-25'), ('acme', '2026-03-01', 'a-26'),
	('globex', '2024-04-01', 'g-24'), ('globex', '2026-04-01', 'g-26');
"

SRC_CONFIG=$(node_psql n1 src "$CONFIG_SQL")
SRC_PROTECTED=$(node_psql n1 src "$PROTECTED_TABLES_SQL")
SRC_FLAGS=$(node_psql n1 src "$RLS_FLAGS_SQL")
is "$(node_psql n1 src "SELECT string_agg(rel::text, ',' ORDER BY rel::text) FROM tenant_iso.protected_tables")" \
	"docs,events,events_2024,events_2025,events_2026" \
	"src: docs, events and its three partitions are protected"
is "$(node_psql_as n1 dr_alice src "$DOCS_SQL")" "acme:1:a-one,acme:2:a-two" \
	"src: dr_alice sees only acme's docs"

# ---- dumps
DUMP_DIR=$CLUSTER_BASE/dumps
mkdir -p "$DUMP_DIR"
PG_ARGS=(-h 127.0.0.1 -p "$(node_port n1)" -U postgres)
ok_cmd "pg_dump -Fc src" "$PGBIN/pg_dump" "${PG_ARGS[@]}" -Fc -f "$DUMP_DIR/src.dump" src
ok_cmd "pg_dump (plain) src" "$PGBIN/pg_dump" "${PG_ARGS[@]}" -Fp -f "$DUMP_DIR/src.sql" src

# ---- restores
node_psql n1 postgres "CREATE DATABASE dst"
out=$("$PGBIN/pg_restore" "${PG_ARGS[@]}" -d dst "$DUMP_DIR/src.dump" 2>&1) && rc=0 || rc=$?
ok "$rc" "pg_restore of the custom-format dump into dst succeeds"
[ "$rc" -eq 0 ] || diag "$out"

node_psql n1 postgres "CREATE DATABASE dst_plain"
out=$("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "${PG_ARGS[@]}" -d dst_plain \
	-f "$DUMP_DIR/src.sql" 2>&1 >/dev/null) && rc=0 || rc=$?
ok "$rc" "psql restore of the plain dump into dst_plain succeeds"
[ "$rc" -eq 0 ] || diag "$out"

# check_restored DB: 16 tests on a restored copy of src.
check_restored() {
	local db=$1

	is "$(node_psql n1 "$db" "SELECT extversion FROM pg_extension WHERE extname = 'tenant_iso'")" \
		"$(node_psql n1 src "SELECT extversion FROM pg_extension WHERE extname = 'tenant_iso'")" \
		"$db: extension tenant_iso recreated, same version"
	is "$(node_psql n1 "$db" "$PROTECTED_TABLES_SQL")" "$SRC_PROTECTED" \
		"$db: protected_tables lists the same tables (column, protected_at)"
	is "$(node_psql n1 "$db" "$CONFIG_SQL")" "$SRC_CONFIG" \
		"$db: tenants, members, switchers and protected rows carried over"
	is "$(node_psql n1 "$db" "$RLS_FLAGS_SQL")" "$SRC_FLAGS" \
		"$db: row security flags as in src"
	is "$(node_psql n1 "$db" "SELECT count(*) FROM pg_class c JOIN tenant_iso.protected p ON p.rel = c.oid
			WHERE c.relrowsecurity AND c.relforcerowsecurity")" 5 \
		"$db: row security enabled and forced on all 5 protected tables"
	is "$(node_psql n1 "$db" "SELECT relrowsecurity FROM pg_class WHERE oid = 'notes'::regclass")" f \
		"$db: unprotected table notes has no row security"

	is "$(node_psql_as n1 dr_alice "$db" "SELECT tenant_iso.current_tenant()")" acme \
		"$db: dr_alice is a member of acme"
	is "$(node_psql_as n1 dr_alice "$db" "$DOCS_SQL")" "acme:1:a-one,acme:2:a-two" \
		"$db: dr_alice sees only acme's docs"
	is "$(node_psql_as n1 dr_alice "$db" "$EVENTS_SQL")" \
		"acme:2024-03-01:a-24,acme:2025-03-01:a-25,acme:2026-03-01:a-26" \
		"$db: dr_alice sees only acme's events (partitioned parent)"
	is "$(node_psql_as n1 dr_bob "$db" "SELECT string_agg(what, ',' ORDER BY at) FROM events_2026")" "g-26" \
		"$db: dr_bob reading partition events_2026 directly sees only globex's row"
	is "$(node_psql_as n1 dr_bob "$db" "
		INSERT INTO docs (id, body) VALUES (7, 'g-seven');
		SELECT tenant_id FROM docs WHERE id = 7;")" globex \
		"$db: the tenant column default fills in dr_bob's tenant"
	is "$(sqlstate n1 dr_bob "$db" "INSERT INTO docs VALUES ('acme', 8, 'forged')")" 42501 \
		"$db: dr_bob cannot insert a row of acme (42501)"

	is "$(sqlstate n1 dr_pool "$db" "SELECT count(*) FROM docs")" 42501 \
		"$db: switcher dr_pool without a context is refused (42501)"
	is "$(node_psql_as n1 dr_pool "$db" "
		SELECT tenant_iso.set_tenant('globex') \\g /dev/null
		$DOCS_SQL;")" "globex:1:g-one,globex:3:g-three,globex:7:g-seven" \
		"$db: switcher dr_pool in globex sees only globex's docs"
	is "$(sqlstate n1 dr_pool "$db" "SELECT tenant_iso.set_tenant('initech')")" 42501 \
		"$db: initech is still suspended (set_tenant refused, 42501)"

	node_psql n1 "$db" "CREATE TABLE events_2027 PARTITION OF events
		FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
		GRANT SELECT ON events_2027 TO dr_alice;
		INSERT INTO events VALUES ('acme', '2027-05-01', 'a-27'), ('globex', '2027-05-01', 'g-27');"
	is "$(node_psql_as n1 dr_alice "$db" "SELECT string_agg(what, ',') FROM events_2027")" "a-27" \
		"$db: a partition created after the restore is protected too"
}

check_restored dst
check_restored dst_plain

# the source is untouched by all this
is "$(node_psql n1 src "$CONFIG_SQL")" "$SRC_CONFIG" "src: configuration unchanged"

tap_done
