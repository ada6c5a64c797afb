-- test/pgtap/history.sql
--
-- Self-service restore (issue 13), the functional side: enable_history() /
-- disable_history() and their refusals, the shape of a history table, the
-- events that history() lists, the recycle bin (deleted_rows, undelete),
-- as_of(), restore_rows() over INSERT/UPDATE/DELETE mixes (plain and
-- partitioned tables, a primary-key change, encrypted columns, identity and
-- generated columns, an administrator's TRUNCATE), restore_tenant() over two
-- tables with a foreign key between them, dry runs, restores that violate a
-- constraint, schema changes (ADD / DROP / RENAME COLUMN, a type change),
-- retention and purge_history() per tenant, shred_tenant(), and verify()
-- after restores.  The attacks are in attack_history.sql.
--
-- One psql session as the superuser postgres, no enclosing transaction:
-- every statement is its own transaction, so clock_timestamp() taken with
-- h.mark() between two statements lies strictly between their changes.
-- SET ROLE hi_a / hi_b / hi_c acts as a member of tenant ha / hb / hc;
-- hi_pool is a switcher; RESET ROLE returns to the superuser, who checks
-- the real state.  Roles are cluster-wide: prefix hi_, dropped at the start
-- (should an earlier run have died half-way) and at the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['hi_a', 'hi_b', 'hi_c', 'hi_pool', 'hi_plain', 'hi_own'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;

\ir include/h.sql

-- ---------------------------------------------------------------------
-- Helpers (SECURITY INVOKER: they run as the current role)
-- ---------------------------------------------------------------------
-- h.mark(k) stores clock_timestamp() under the name k; h.t(k) returns it.
CREATE TABLE h.ts (k text PRIMARY KEY, t timestamptz NOT NULL);
GRANT SELECT, INSERT, UPDATE ON h.ts TO PUBLIC;
CREATE FUNCTION h.mark(k text) RETURNS void LANGUAGE sql AS $f$
	INSERT INTO h.ts VALUES ($1, clock_timestamp()) ON CONFLICT ON CONSTRAINT ts_pkey DO UPDATE SET t = excluded.t
$f$;
CREATE FUNCTION h.t(k text) RETURNS timestamptz LANGUAGE sql STABLE AS $f$
	SELECT ts.t FROM h.ts WHERE ts.k = $1
$f$;

-- The rows of a query as sorted row literals separated by a space ('none'
-- when there is none), or 'ERROR <sqlstate>'.  The effects are kept.
CREATE FUNCTION h.rows(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE format($x$WITH x AS (%s) SELECT coalesce(string_agg(x::text, ' ' ORDER BY x::text COLLATE "C"), 'none') FROM x$x$, q)
		INTO r;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

-- The error a statement raises, in parts ('no error' as state if none).
-- The statement's effects are undone either way, so that an expected error
-- that does not come cannot change what the next tests see.
CREATE FUNCTION h.e(q text, OUT state text, OUT msg text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $f$
BEGIN
	EXECUTE q;
	RAISE EXCEPTION USING ERRCODE = 'TIUND', MESSAGE = 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
							detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	IF state = 'TIUND' THEN
		state := 'no error';
		msg := NULL;
	END IF;
END
$f$;

-- h.rows(q), but its effects are undone (for a call that should fail).
CREATE FUNCTION h.rt(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	r := h.rows(q);
	RAISE EXCEPTION USING ERRCODE = 'TIUND', MESSAGE = r;
EXCEPTION WHEN OTHERS THEN
	IF SQLSTATE = 'TIUND' THEN
		RETURN SQLERRM;
	END IF;
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

-- The history table of a table (superuser: from the registry).
CREATE FUNCTION h.hist(r regclass) RETURNS regclass LANGUAGE sql STABLE AS $f$
	SELECT ht.hist FROM tenant_iso.history_tables ht WHERE ht.rel = $1
$f$;

-- Number of rows of a table's history table, of one tenant or all
-- (superuser: row security does not apply to it).
CREATE FUNCTION h.nhist(r regclass, tenant text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
	n bigint;
BEGIN
	EXECUTE format('SELECT count(*) FROM %s WHERE $1 IS NULL OR tenant_id = $1', h.hist(r))
		INTO n USING tenant;
	RETURN n;
END
$f$;

-- Number of events of a history table older than now() - age (superuser).
CREATE FUNCTION h.nhist_older(hr regclass, age interval) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
	n bigint;
BEGIN
	EXECUTE format('SELECT count(*) FROM %s WHERE coalesce(valid_to, valid_from) < now() - $1', hr)
		INTO n USING age;
	RETURN n;
END
$f$;

-- Number of rows of any table (superuser).
CREATE FUNCTION h.cnt(r regclass) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
	n bigint;
BEGIN
	EXECUTE format('SELECT count(*) FROM %s', r) INTO n;
	RETURN n;
END
$f$;

-- verify() of one table as 'tenant:rows:ok|BAD ...' sorted by tenant, or 'none'.
CREATE FUNCTION h.v(r regclass) RETURNS text LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(format('%s:%s:%s', v.tenant_id, v.rows, CASE WHEN v.ok THEN 'ok' ELSE 'BAD' END),
							   ' ' ORDER BY v.tenant_id COLLATE "C"), 'none')
	  FROM tenant_iso.verify(r) v
$f$;

-- A fingerprint of the stored digest rows of a table (superuser).
CREATE FUNCTION h.dig(r regclass) RETURNS text LANGUAGE sql AS $f$
	SELECT md5(coalesce(string_agg(d::text, ',' ORDER BY d::text COLLATE "C"), ''))
	  FROM tenant_iso.digests d WHERE d.relname = (SELECT t.relname FROM tenant_iso.tracked t WHERE t.rel = $1)
$f$;

-- One tenant's history of a table as 'op+id' words in the order history()
-- returns them, between two marks.
CREATE FUNCTION h.ops(r regclass, since text, until text DEFAULT NULL, tenant text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(x.op::text || (x.key->>'id'), ' ' ORDER BY x.n), 'none')
	  FROM tenant_iso.history($1, h.t($2), $4) WITH ORDINALITY
		   AS x(changed_at, op, key, image, valid_from, valid_to, xid, n)
	 WHERE $3 IS NULL OR x.changed_at < h.t($3)
$f$;

-- ---------------------------------------------------------------------
-- Roles, tenants
-- ---------------------------------------------------------------------
CREATE ROLE hi_a;		-- member of ha
CREATE ROLE hi_b;		-- member of hb
CREATE ROLE hi_c;		-- member of hc
CREATE ROLE hi_pool;	-- switcher
CREATE ROLE hi_plain;	-- nothing
CREATE ROLE hi_own;		-- switcher that owns a protected table
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant(t) FROM unnest(ARRAY['ha', 'hb', 'hc', 'hd', 'he', 'hf']) t;
	PERFORM tenant_iso.add_member('hi_a', 'ha');
	PERFORM tenant_iso.add_member('hi_b', 'hb');
	PERFORM tenant_iso.add_member('hi_c', 'hc');
	PERFORM tenant_iso.grant_switch('hi_pool');
	PERFORM tenant_iso.grant_switch('hi_own');
END
$$;

-- items: the first history-enabled table (a collation, a default and a
-- CHECK that the history table must not copy)
CREATE TABLE items (tenant_id text NOT NULL, id int NOT NULL, v text COLLATE "C", n int DEFAULT 0 CHECK (n >= 0),
					PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('items') \g /dev/null
CREATE TABLE not_protected (id int PRIMARY KEY, v text);
CREATE TABLE nopk (tenant_id text NOT NULL, id int, v text);
SELECT tenant_iso.protect('nopk') \g /dev/null
CREATE TABLE owned (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('owned') \g /dev/null
ALTER TABLE owned OWNER TO hi_own;

-- pt: range-partitioned on id, so that a primary-key change moves a row
-- to another partition; pt_hi is added after enable_history()
CREATE TABLE pt (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id)) PARTITION BY RANGE (id);
CREATE TABLE pt_lo PARTITION OF pt FOR VALUES FROM (0) TO (100);
CREATE TABLE pt_mid PARTITION OF pt FOR VALUES FROM (100) TO (200);
SELECT tenant_iso.protect('pt') \g /dev/null

SELECT plan(168);

-- =====================================================================
-- 1. enable_history(): refusals
-- =====================================================================
SELECT throws_ok($$SELECT tenant_iso.enable_history('not_protected')$$, '55000', NULL,
	'enable_history(): a table that is not protected is refused with 55000');
SELECT throws_ok($$SELECT tenant_iso.enable_history('nopk')$$, '55000', NULL,
	'enable_history(): a protected table without a primary key is refused with 55000');
SELECT throws_ok($$SELECT tenant_iso.enable_history('pt_lo')$$, '42809', NULL,
	'enable_history(): a partition is refused with 42809 (enable it on the root)');
SELECT throws_ok($$SELECT tenant_iso.disable_history('items')$$, '42704', NULL,
	'disable_history() of a table whose history is not enabled: 42704');
SELECT is(tenant_iso.enable_history('items')::text, 'tenant_iso_history."public.items"',
	'enable_history(items) returns its history table tenant_iso_history."public.items"');
SELECT throws_ok($$SELECT tenant_iso.enable_history('items')$$, '42710', NULL,
	'enable_history() twice: 42710');
SET ROLE hi_plain;
SELECT throws_ok($$SELECT tenant_iso.enable_history('owned')$$, '42501', NULL,
	'enable_history() by a role that does not own the table: 42501');
RESET ROLE;
SET ROLE hi_a;
SELECT throws_ok($$SELECT tenant_iso.enable_history('owned')$$, '42501', NULL,
	'enable_history() by a tenant member (not the owner, in a tenant context): 42501');
RESET ROLE;
SET ROLE hi_own;
SELECT tenant_iso.set_tenant('ha') \g /dev/null
SELECT throws_ok($$SELECT tenant_iso.enable_history('owned')$$, '42501', NULL,
	'enable_history() by the owner while in a tenant context: 42501');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT lives_ok($$SELECT tenant_iso.enable_history('owned')$$,
	'enable_history() by the owner outside any tenant context works (positive control)');
RESET ROLE;
SELECT is((SELECT array_agg(rel::text ORDER BY rel::text) FROM tenant_iso.history_tables),
	ARRAY['items', 'owned'], 'the refused calls registered nothing: history_tables holds items and owned');
SELECT throws_ok($$SELECT tenant_iso.set_history_retention('ha', '0')$$, '22023', NULL,
	'set_history_retention() with a zero interval: 22023');
SELECT throws_ok($$SELECT tenant_iso.set_history_retention('ha', '-1 day')$$, '22023', NULL,
	'set_history_retention() with a negative interval: 22023');
SET ROLE hi_a;
SELECT throws_ok($$SELECT tenant_iso.set_history_retention('ha', '1 day')$$, '42501', NULL,
	'set_history_retention() by a tenant member: 42501');
RESET ROLE;

-- =====================================================================
-- 2. The history table
-- =====================================================================
SELECT is((SELECT string_agg(format('%s %s', attname, format_type(atttypid, atttypmod)), ', ' ORDER BY attnum)
			 FROM pg_attribute WHERE attrelid = h.hist('items') AND attnum > 0 AND NOT attisdropped),
	'tenant_id text, id integer, v text, n integer, valid_from timestamp with time zone, '
	'valid_to timestamp with time zone, op "char", xid xid8',
	'history table: the table''s columns in order, then valid_from, valid_to, op, xid');
SELECT is((SELECT c.collname::text FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
			WHERE a.attrelid = h.hist('items') AND a.attname = 'v'), 'C',
	'history table: a column keeps its collation ("C")');
SELECT is((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
			WHERE attrelid = h.hist('items') AND attnum > 0 AND attnotnull), ARRAY['op', 'xid'],
	'history table: only op and xid are NOT NULL');
SELECT is((SELECT count(*)::int FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
			WHERE d.adrelid = h.hist('items') AND a.attname <> 'tenant_id'), 0,
	'history table: no column defaults but protect()''s tenant default (items.n has one)');
SELECT is((SELECT count(*)::int FROM pg_constraint WHERE conrelid = h.hist('items')
			AND (contype IN ('p', 'u', 'f', 'x') OR pg_get_constraintdef(oid) ~ 'n >= 0')), 0,
	'history table: no primary key, unique, foreign key or the table''s CHECK');
SELECT is((SELECT count(*)::int FROM pg_index i WHERE i.indrelid = h.hist('items')
			AND pg_get_indexdef(i.indexrelid) ~ '\(tenant_id, id, valid_to DESC( NULLS FIRST)?\)$'), 1,
	'history table: an index on (tenant column, primary key..., valid_to DESC NULLS FIRST)');
SELECT is((SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = h.hist('items')), true,
	'history table: row security enabled and forced');
SELECT is((SELECT via::text FROM tenant_iso.protected WHERE rel = h.hist('items')), 'items',
	'history table: registered in tenant_iso.protected with via = items');
SELECT is((SELECT relowner FROM pg_class WHERE oid = h.hist('items')),
	(SELECT extowner FROM pg_extension WHERE extname = 'tenant_iso'),
	'history table: owned by the extension''s owner');
SELECT is((SELECT count(*)::int FROM pg_class c, aclexplode(c.relacl) a
			WHERE c.oid = h.hist('items') AND a.grantee <> c.relowner), 0,
	'history table: no grant to anyone but its owner');
SELECT is(ARRAY[has_table_privilege('hi_a', h.hist('items'), 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
				has_table_privilege('public', h.hist('items'), 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
				has_schema_privilege('public', 'tenant_iso_history', 'USAGE, CREATE')],
	ARRAY[false, false, false],
	'a member and PUBLIC have no privilege on the history table, PUBLIC none on schema tenant_iso_history');
SELECT is((SELECT relowner FROM pg_class WHERE oid = h.hist('owned')),
	(SELECT extowner FROM pg_extension WHERE extname = 'tenant_iso'),
	'the history table of a table hi_own owns is owned by the extension''s owner, not by hi_own');
SELECT is((SELECT format('%s %s %s', hist, coalesce(retention::text, 'null'), enabled_at <= now())
			 FROM tenant_iso.history_tables WHERE rel = 'items'::regclass),
	'tenant_iso_history."public.items" null t',
	'history_tables: hist, retention NULL (no argument), enabled_at');
SELECT is(ARRAY[(SELECT 'tenant_iso.history_tables'::regclass::oid = ANY (extconfig) FROM pg_extension WHERE extname = 'tenant_iso'),
				(SELECT 'tenant_iso.history_retention'::regclass::oid = ANY (extconfig) FROM pg_extension WHERE extname = 'tenant_iso'),
				has_table_privilege('public', 'tenant_iso.history_tables', 'SELECT, INSERT, UPDATE, DELETE'),
				has_table_privilege('public', 'tenant_iso.history_retention', 'SELECT, INSERT, UPDATE, DELETE')],
	ARRAY[true, true, false, false],
	'history_tables and history_retention are dumped with the data; PUBLIC has no rights on them');

-- a name clash: "x.y"."z" and "x"."y.z" both map to "x.y.z"
CREATE SCHEMA "x.y";
CREATE SCHEMA x;
CREATE TABLE "x.y".z (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE x."y.z" (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('"x.y".z') \g /dev/null
SELECT tenant_iso.protect('x."y.z"') \g /dev/null
SELECT tenant_iso.enable_history('"x.y".z') \g /dev/null
SELECT tenant_iso.enable_history('x."y.z"') \g /dev/null
SELECT is((SELECT format('%s / %s', h.hist('"x.y".z'), h.hist('x."y.z"') <> h.hist('"x.y".z')
						 AND (SELECT relname FROM pg_class WHERE oid = h.hist('x."y.z"')) ~ '^x\.y\.z.*[0-9]$')),
	'tenant_iso_history."x.y.z" / t',
	'two tables whose names map to the same history name: the second gets a numeric suffix');
SELECT tenant_iso.disable_history('"x.y".z') \g /dev/null
SELECT tenant_iso.disable_history('x."y.z"') \g /dev/null

-- =====================================================================
-- 3. history(): the events, newest first
-- =====================================================================
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO hi_a, hi_b, hi_pool;
SELECT h.mark('c0');
SET ROLE hi_a;
INSERT INTO items (id, v) VALUES (1, 'a1'), (2, 'a2'), (3, 'a3');
SET ROLE hi_b;
INSERT INTO items (id, v) VALUES (1, 'b1');
RESET ROLE;
SELECT h.mark('c1');
SET ROLE hi_a;
BEGIN;
UPDATE items SET v = 'a1x' WHERE id = 1;
SELECT pg_current_xact_id()::text AS xid_u \gset
COMMIT;
RESET ROLE;
SELECT h.mark('c2');
SET ROLE hi_a;
DELETE FROM items WHERE id = 2;
RESET ROLE;
SELECT h.mark('c3');
SET ROLE hi_a;
UPDATE items SET id = 30 WHERE id = 3;
RESET ROLE;
SELECT h.mark('c4');

SET ROLE hi_a;
SELECT is((SELECT array_agg(w ORDER BY w) FROM unnest(string_to_array(h.ops('items', 'c0', 'c1'), ' ')) w),
	ARRAY['I1', 'I2', 'I3'], 'history(): three inserts between c0 and c1 (I markers)');
SELECT is(h.ops('items', 'c1', 'c3'), 'D2 U1', 'history(): then the update of 1 and the delete of 2, newest first');
SELECT is((SELECT array_agg(x.op::text || (x.key->>'id') ORDER BY x.op) FROM tenant_iso.history('items', h.t('c3')) x),
	ARRAY['D3', 'I30'], 'history(): an UPDATE of the primary key is a D of the old key and an I of the new one');
SELECT is((SELECT count(*)::int FROM tenant_iso.history('items', h.t('c0')) x
			WHERE x.changed_at < h.t('c0') OR x.changed_at > h.t('c4')), 0,
	'history(): every event lies after since (and before now)');
SELECT is((SELECT bool_and(x.prev >= x.changed_at)
			 FROM (SELECT changed_at, lag(changed_at) OVER (ORDER BY n) AS prev
					 FROM tenant_iso.history('items', h.t('c0')) WITH ORDINALITY
						  AS y(changed_at, op, key, image, valid_from, valid_to, xid, n)) x),
	true, 'history(): newest first over all 7 events');
SELECT is((SELECT count(*)::int FROM tenant_iso.history('items', h.t('c0'))), 7,
	'history(): the member sees its 7 events (not hb''s insert)');
SELECT is((SELECT count(*)::int FROM tenant_iso.history('items')), 7,
	'history() with the default since (now() - 1 day) lists the same 7 events');
SELECT is((SELECT format('%s|%s|%s|%s', x.key, x.image->>'tenant_id', x.image->>'v', x.image->>'n')
			 FROM tenant_iso.history('items', h.t('c0')) x WHERE x.op = 'U'),
	'{"id": 1, "tenant_id": "ha"}|ha|a1|0',
	'history(): the key is the primary key as jsonb, the U image is the old row');
SELECT is((SELECT bool_and(x.image = x.key AND x.valid_to IS NULL AND x.changed_at = x.valid_from)
			 FROM tenant_iso.history('items', h.t('c0')) x WHERE x.op = 'I'),
	true, 'history(): an I marker''s image is the key only, valid_to NULL, changed_at = valid_from');
SELECT is((SELECT format('%s %s %s %s', u.valid_from = i.valid_from, u.valid_to = u.changed_at,
						 u.changed_at > h.t('c1') AND u.changed_at < h.t('c2'), u.xid::text = :'xid_u')
			 FROM tenant_iso.history('items', h.t('c0')) u, tenant_iso.history('items', h.t('c0')) i
			WHERE u.op = 'U' AND i.op = 'I' AND i.key = u.key),
	't t t t',
	'history(): U valid_from = the insert''s time, valid_to = the change''s time, xid = the updating transaction');
SELECT is((SELECT format('%s %s', d.image->>'v', d.valid_from = i.valid_from)
			 FROM tenant_iso.history('items', h.t('c0')) d, tenant_iso.history('items', h.t('c0')) i
			WHERE d.op = 'D' AND d.key->>'id' = '2' AND i.op = 'I' AND i.key = d.key),
	'a2 t', 'history(): the D image is the deleted row, valid_from its insert''s time');
SELECT is(h.ops('items', 'c4'), 'none', 'history(): nothing since c4');
-- the event time is the change's clock_timestamp(), not the commit's
BEGIN;
UPDATE items SET v = v WHERE id = 1;
SELECT h.mark('c5');
SELECT pg_sleep(0.05);
COMMIT;
SELECT is((SELECT format('%s %s', count(*), bool_and(x.changed_at < h.t('c5'))) FROM tenant_iso.history('items', h.t('c4')) x),
	'1 t', 'history(): the event time is the time of the change, not of the commit (even a no-op UPDATE is an event)');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM tenant_iso_history."public.items" WHERE op = 'I' AND (v IS NOT NULL OR n IS NOT NULL)), 0,
	'an I marker stores only the tenant and primary key columns');
SET ROLE hi_b;
SELECT is(h.ops('items', 'c0'), 'I1', 'history(): hb''s member sees only hb''s insert');
RESET ROLE;

-- who may call it
SELECT is((SELECT format('%s | %s', e.state, e.msg ~ 'no tenant context' AND e.hint ~ '\mtenant\M')
			 FROM h.e($$SELECT * FROM tenant_iso.history('items', h.t('c0'))$$) e),
	'42501 | t', 'history() by an administrator without tenant =>: 42501 "no tenant context", the hint names the argument');
SELECT is(h.ops('items', 'c1', 'c3', 'ha'), 'D2 U1',
	'history(..., tenant => ''ha'') by an administrator lists ha''s events');
SELECT throws_ok($$SELECT * FROM tenant_iso.history('items', h.t('c0'), 'nosuch')$$, '42704', NULL,
	'history(..., tenant => a tenant that does not exist): 42704');
SET ROLE hi_pool;
SELECT tenant_iso.set_tenant('hb') \g /dev/null
SELECT is(h.ops('items', 'c0'), 'I1', 'history() by a pool in hb''s context: hb''s event');
SELECT tenant_iso.set_tenant('ha') \g /dev/null
SELECT is((SELECT count(*)::int FROM tenant_iso.history('items', h.t('c0'))), 8,
	'history() by a pool in ha''s context: ha''s 8 events');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;

-- =====================================================================
-- 4. deleted_rows() and undelete()
-- =====================================================================
SET ROLE hi_a;
SELECT is((SELECT string_agg(format('%s=%s', x.key->>'id', x.image->>'v'), ' ' ORDER BY n)
			 FROM tenant_iso.deleted_rows('items', h.t('c0')) WITH ORDINALITY AS x(deleted_at, key, image, xid, n)),
	'3=a3 2=a2', 'deleted_rows(): keys 3 (moved to 30) and 2, newest first, with their last image');
SELECT is((SELECT bool_and(x.deleted_at > h.t('c2') AND x.deleted_at < h.t('c4')) FROM tenant_iso.deleted_rows('items', h.t('c0')) x),
	true, 'deleted_rows(): deleted_at is the time of the delete');
SELECT is((SELECT count(*)::int FROM tenant_iso.deleted_rows('items', h.t('c3'))), 1,
	'deleted_rows(since): only keys deleted at or after since');
SELECT throws_ok($$SELECT * FROM tenant_iso.undelete('items', h.t('c0'), '{"tenant_id": "ha"}')$$, '22023', NULL,
	'undelete(): a key without every primary key column (but the tenant column): 22023');
SELECT throws_ok($$SELECT * FROM tenant_iso.undelete('items', h.t('c0'), '{"id": 99, "tenant_id": "ha", "v": "a3"}')$$, '22023', NULL,
	'undelete(): a key with a column that is not in the primary key: 22023');
SELECT is(h.rows($$SELECT * FROM tenant_iso.undelete('items', h.t('c0'), '{"id": 99, "tenant_id": "ha"}')$$),
	'(items,0,0,0)', 'undelete(): a key that is not in the recycle bin inserts nothing');
SELECT is(h.rows($$SELECT * FROM tenant_iso.undelete('items', h.t('c0'), '{"id": 2, "tenant_id": "ha"}')$$),
	'(items,1,0,0)', 'undelete() of one key: 1 inserted');
SELECT is(h.rows('SELECT id, v, n FROM items'), '(1,a1x,0) (2,a2,0) (30,a3,0)',
	'undelete(): row 2 is back as it was; nothing else changed');
SELECT is((SELECT string_agg(x.key->>'id', ' ') FROM tenant_iso.deleted_rows('items', h.t('c0')) x), '3',
	'deleted_rows(): key 2 left the recycle bin');
INSERT INTO items (id, v, n) SELECT i, 'm' || i, i FROM generate_series(100, 109) i;
RESET ROLE;
SELECT h.mark('d1');
SET ROLE hi_a;
DELETE FROM items WHERE id >= 100;
SELECT is(h.rows($$SELECT * FROM tenant_iso.undelete('items', h.t('d1'))$$), '(items,10,0,0)',
	'undelete(since) of many: the 10 rows deleted since d1, not the older key 3');
SELECT is((SELECT string_agg(format('%s=%s/%s', id, v, n), ' ' ORDER BY id) FROM items WHERE id >= 100),
	'100=m100/100 101=m101/101 102=m102/102 103=m103/103 104=m104/104 105=m105/105 106=m106/106 107=m107/107 108=m108/108 109=m109/109',
	'undelete(): the 10 rows are back with their values');
SELECT is((SELECT count(*)::int FROM tenant_iso.deleted_rows('items', h.t('d1'))), 0,
	'deleted_rows(): the recycle bin since d1 is empty again');
RESET ROLE;
SELECT is((SELECT string_agg(format('%s/%s', id, v), ' ' ORDER BY id) FROM items WHERE tenant_id = 'hb'), '1/b1',
	'undelete(): hb''s row is untouched');

-- =====================================================================
-- 5. restore_rows() on a plain (tracked) table; as_of(); dry run
-- =====================================================================
CREATE TABLE acct (tenant_id text NOT NULL, id int NOT NULL, v text, n int, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('acct') \g /dev/null
SELECT tenant_iso.track('acct') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON acct TO hi_a, hi_b, hi_c, hi_pool;
INSERT INTO acct VALUES ('hb', 1, 'b1', 1), ('hb', 2, 'b2', 2);
SELECT h.mark('pre');
SELECT tenant_iso.enable_history('acct') \g /dev/null
SET ROLE hi_a;
INSERT INTO acct (id, v, n) SELECT i, 'v' || i, i FROM generate_series(1, 5) i;
RESET ROLE;
SELECT h.mark('e1');
SET ROLE hi_a;
SELECT h.rows('SELECT id, v, n FROM acct') AS s1 \gset
UPDATE acct SET v = 'v1x' WHERE id = 1;
UPDATE acct SET n = 20 WHERE id = 2;
DELETE FROM acct WHERE id = 3;
INSERT INTO acct (id, v, n) VALUES (6, 'v6', 6), (7, 'v7', 7);
UPDATE acct SET v = 'v6x' WHERE id = 6;
DELETE FROM acct WHERE id = 7;
UPDATE acct SET n = 41 WHERE id = 4;
UPDATE acct SET n = 42 WHERE id = 4;
UPDATE acct SET v = v WHERE id = 5;
UPDATE acct SET v = 'tmp' WHERE id = 5;
UPDATE acct SET v = 'v5' WHERE id = 5;
SET ROLE hi_b;
UPDATE acct SET v = 'b1 changed' WHERE id = 1;
INSERT INTO acct (id, v, n) VALUES (3, 'b3', 3);
RESET ROLE;
SELECT h.mark('e2');
SET ROLE hi_a;
SELECT h.rows('SELECT id, v, n FROM acct') AS s2 \gset
DELETE FROM acct WHERE id = 1;
INSERT INTO acct (id, v, n) VALUES (8, 'v8', 8);
RESET ROLE;
SELECT h.mark('e3');
SELECT h.rows($$SELECT id, v, n FROM acct WHERE tenant_id = 'ha'$$) AS s3, h.rows($$SELECT id, v, n FROM acct WHERE tenant_id = 'hb'$$) AS sb,
	h.nhist('acct') AS nh3, h.nhist('acct', 'ha') AS nh_ha3, h.dig('acct') AS dig3 \gset

SELECT is(:'s1'::text, '(1,v1,1) (2,v2,2) (3,v3,3) (4,v4,4) (5,v5,5)', 'fixture: ha''s rows at e1');
SELECT is(:'s3'::text, '(2,v2,20) (4,v4,42) (5,v5,5) (6,v6x,6) (8,v8,8)', 'fixture: ha''s rows at e3');
SELECT is((SELECT format('%s %s', x.valid_from IS NULL, x.valid_to = x.changed_at)
			 FROM tenant_iso.history('acct', h.t('e1'), 'hb') x WHERE x.op = 'U'),
	't t', 'history(): the U image of a row that predates enable_history() has valid_from NULL');
SELECT is((SELECT count(*)::int FROM tenant_iso.history('acct', h.t('e1'), 'ha') n, tenant_iso.history('acct', h.t('e1'), 'ha') o
			WHERE n.op = 'U' AND o.op = 'U' AND n.key = o.key AND n.key->>'id' = '4'
			  AND n.changed_at > o.changed_at AND n.valid_from = o.valid_to), 1,
	'history(): the second U image of a key is valid from the time of the first change');
SET ROLE hi_a;
SELECT is(h.rows($$SELECT t.id, t.v, t.n FROM tenant_iso.as_of('acct', h.t('e1')) AS t(tenant_id text, id int, v text, n int)$$),
	:'s1', 'as_of(e1): ha''s rows as they were at e1');
SELECT is(h.rows($$SELECT t.id, t.v, t.n FROM tenant_iso.as_of('acct', h.t('e2')) AS t(tenant_id text, id int, v text, n int)$$),
	:'s2', 'as_of(e2): ha''s rows as they were at e2');
SELECT is(h.rows($$SELECT DISTINCT t.tenant_id FROM tenant_iso.as_of('acct', h.t('e2')) AS t(tenant_id text, id int, v text, n int)$$),
	'(ha)', 'as_of(): only the caller''s tenant');
SELECT throws_ok($$SELECT * FROM tenant_iso.as_of('acct', NULL) AS t(tenant_id text, id int, v text, n int)$$, '22004', NULL,
	'as_of() at NULL: 22004');

-- dry run
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('acct', h.t('e1'), true)$$), '(acct,2,2,2)',
	'restore_rows(e1, dry_run): 2 inserted (1, 3), 2 updated (2, 4; not the no-op 5), 2 deleted (6, 8)');
RESET ROLE;
SELECT is(format('%s %s %s', h.rows($$SELECT id, v, n FROM acct WHERE tenant_id = 'ha'$$) = :'s3',
				 h.nhist('acct') = :nh3, h.dig('acct') = :'dig3'),
	't t t', 'the dry run changed no row, wrote no history and no digest');
SET ROLE hi_a;
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('acct', h.t('e1'))$$), '(acct,2,2,2)',
	'restore_rows(e1) by the member: the same counts as the dry run');
SELECT is(h.rows('SELECT id, v, n FROM acct'), :'s1', 'restore_rows(e1): ha''s rows are as they were at e1');
RESET ROLE;
SELECT is(h.rows($$SELECT id, v, n FROM acct WHERE tenant_id = 'hb'$$), :'sb', 'restore_rows(): hb''s rows are untouched');
SELECT is(h.v('acct'), 'ha:5:ok hb:3:ok', 'verify() is clean after the restore (its writes were digested)');
SELECT is(h.nhist('acct', 'ha'), (:nh_ha3 + 6)::bigint, 'the restore''s own writes are history too (2 I, 2 U, 2 D)');

-- an administrator rewinds forward again (to e3), then a pool back to e2
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('acct', h.t('e3'), tenant => 'ha')$$), '(acct,2,2,2)',
	'restore_rows(e3, tenant => ''ha'') by an administrator: the restore is undone');
SELECT is(format('%s %s', h.rows($$SELECT id, v, n FROM acct WHERE tenant_id = 'ha'$$) = :'s3', tenant_iso.current_tenant() IS NULL),
	't t', 'ha''s rows are as at e3 again, and the administrator left ha''s context');
SET ROLE hi_pool;
SELECT tenant_iso.set_tenant('ha') \g /dev/null
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('acct', h.t('e2'))$$), '(acct,1,0,1)',
	'restore_rows(e2) by a pool in ha''s context: 1 inserted, 1 deleted');
SELECT is(h.rows('SELECT id, v, n FROM acct'), :'s2', 'ha''s rows are as at e2');
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('acct', h.t('e2'))$$), '(acct,0,0,0)',
	'restore_rows() to the state the rows are in already counts nothing');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT is(h.v('acct'), 'ha:5:ok hb:3:ok', 'verify() is clean after the administrator''s and the pool''s restores');
SELECT is(h.rows($$SELECT id, v, n FROM acct WHERE tenant_id = 'hb'$$), :'sb', 'hb''s rows are still untouched');

-- refusals
SET ROLE hi_a;
SELECT throws_ok($$SELECT * FROM tenant_iso.restore_rows('acct', NULL)$$, '22004', NULL,
	'restore_rows() at NULL: 22004');
SELECT is((SELECT format('%s %s', e.state, concat_ws(' ', e.msg, e.detail, e.hint) ~ '\d{4}-\d\d-\d\d')
			 FROM h.e($$SELECT * FROM tenant_iso.restore_rows('acct', h.t('pre'))$$) e),
	'22023 t', 'restore_rows() before the table''s enabled_at: 22023, saying how far back history goes');
SELECT is((SELECT e.state FROM h.e($$SELECT * FROM tenant_iso.undelete('acct', h.t('pre'))$$) e), 'no error',
	'undelete() since before enabled_at: not refused (a since is not checked: history starts at enable_history())');
RESET ROLE;
SELECT is((SELECT format('%s | %s', e.state, e.msg ~ 'no tenant context' AND e.hint ~ '\mtenant\M')
			 FROM h.e($$SELECT * FROM tenant_iso.restore_rows('acct', h.t('e1'))$$) e),
	'42501 | t', 'restore_rows() by an administrator without tenant =>: 42501 "no tenant context", the hint names the argument');
SELECT throws_ok($$SELECT * FROM tenant_iso.restore_rows('acct', h.t('e1'), tenant => 'nosuch')$$, '42704', NULL,
	'restore_rows(..., tenant => a tenant that does not exist): 42704');
SELECT is(h.rows($$SELECT id, v, n FROM acct WHERE tenant_id = 'ha'$$), :'s2', 'the refused calls changed nothing');

-- =====================================================================
-- 6. A partitioned table; a primary-key change that moves a row
-- =====================================================================
SELECT is(tenant_iso.enable_history('pt')::text, 'tenant_iso_history."public.pt"',
	'enable_history() of a partitioned table: one history table for the root');
SELECT is((SELECT count(*)::int FROM tenant_iso.history_tables WHERE rel IN ('pt_lo'::regclass, 'pt_mid'::regclass)), 0,
	'no history table of its own for a partition');
CREATE TABLE pt_hi PARTITION OF pt FOR VALUES FROM (200) TO (300);
SELECT tenant_iso.track('pt') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON pt TO hi_a, hi_b;
INSERT INTO pt VALUES ('hb', 1, 'b1'), ('hb', 250, 'b250');
SET ROLE hi_a;
INSERT INTO pt (id, v) VALUES (1, 'p1'), (150, 'p150'), (250, 'p250');
RESET ROLE;
SELECT h.mark('f1');
SET ROLE hi_a;
SELECT h.rows('SELECT tableoid::regclass, id, v FROM pt') AS f1 \gset
UPDATE pt SET id = 120 WHERE id = 1;
UPDATE pt SET v = 'p150x' WHERE id = 150;
DELETE FROM pt WHERE id = 250;
INSERT INTO pt (id, v) VALUES (260, 'p260');
SET ROLE hi_b;
UPDATE pt SET v = 'b250x' WHERE id = 250;
RESET ROLE;
SELECT h.mark('f2');
SET ROLE hi_a;
SELECT is((SELECT array_agg(w ORDER BY w) FROM unnest(string_to_array(h.ops('pt', 'f1'), ' ')) w),
	ARRAY['D1', 'D250', 'I120', 'I260', 'U150'],
	'history() of the root: the move (D 1, I 120), the update, the delete in the later partition, the insert');
SELECT ok(h.ops('pt', 'f1') LIKE 'I260 D250 U150 %', 'history() of the root: newest first');
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('pt', h.t('f1'), true)$$), '(pt,2,1,2)',
	'restore_rows(f1, dry_run) on the partitioned table: 2 inserted, 1 updated, 2 deleted');
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('pt', h.t('f1'))$$), '(pt,2,1,2)',
	'restore_rows(f1) on the partitioned table: the same counts');
SELECT is(h.rows('SELECT tableoid::regclass, id, v FROM pt'), :'f1',
	'the rows are as at f1, each in its partition again');
RESET ROLE;
SELECT is(h.rows($$SELECT id, v FROM pt WHERE tenant_id = 'hb'$$), '(1,b1) (250,b250x)', 'hb''s rows of pt are untouched');
SELECT is(h.v('pt'), 'ha:3:ok hb:2:ok', 'verify() of the partitioned table is clean after the restore');

-- =====================================================================
-- 7. Encrypted columns: the same bytes come back, and they decrypt
-- =====================================================================
CREATE TABLE sec (tenant_id text NOT NULL, id int NOT NULL, secret bytea, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('sec') \g /dev/null
SELECT tenant_iso.enable_history('sec') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON sec TO hi_a, hi_c;
SET ROLE hi_a;
INSERT INTO sec (id, secret) SELECT i, tenant_iso.encrypt('s' || i, 'sec') FROM generate_series(1, 3) i;
RESET ROLE;
SELECT h.mark('g1');
SELECT string_agg(id || ':' || encode(secret, 'hex'), ' ' ORDER BY id) AS g1_bytes FROM sec WHERE tenant_id = 'ha' \gset
SELECT tenant_iso.rotate_tenant_key('ha') \g /dev/null
SET ROLE hi_a;
UPDATE sec SET secret = tenant_iso.encrypt('s1 new', 'sec') WHERE id = 1;
DELETE FROM sec WHERE id = 2;
INSERT INTO sec (id, secret) VALUES (4, tenant_iso.encrypt('s4', 'sec'));
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('sec', h.t('g1'))$$), '(sec,1,1,1)',
	'restore_rows(g1) on an encrypted column (after a key rotation): 1 inserted, 1 updated, 1 deleted');
SELECT is((SELECT string_agg(id || '=' || tenant_iso.decrypt_text(secret, 'sec'), ' ' ORDER BY id) FROM sec),
	'1=s1 2=s2 3=s3', 'the restored ciphertexts decrypt to the values of g1');
RESET ROLE;
SELECT is((SELECT string_agg(id || ':' || encode(secret, 'hex'), ' ' ORDER BY id) FROM sec WHERE tenant_id = 'ha'),
	:'g1_bytes', 'the restored ciphertexts are the very bytes of g1 (nothing was decrypted and re-encrypted)');

-- =====================================================================
-- 8. restore_tenant(): two tables with a foreign key, one transaction
-- =====================================================================
-- the child sorts first by name and is enabled first: the order must come
-- from the foreign key
CREATE TABLE z_parent (tenant_id text NOT NULL, id int NOT NULL, name text, PRIMARY KEY (tenant_id, id));
CREATE TABLE a_child (tenant_id text NOT NULL, id int NOT NULL, pid int NOT NULL, PRIMARY KEY (tenant_id, id),
					  FOREIGN KEY (tenant_id, pid) REFERENCES z_parent (tenant_id, id));
SELECT tenant_iso.protect('z_parent') \g /dev/null
SELECT tenant_iso.protect('a_child') \g /dev/null
SELECT tenant_iso.track('z_parent') \g /dev/null
SELECT tenant_iso.track('a_child') \g /dev/null
SELECT tenant_iso.enable_history('a_child') \g /dev/null
SELECT tenant_iso.enable_history('z_parent') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON z_parent, a_child TO hi_a, hi_c;
GRANT SELECT, INSERT, UPDATE, DELETE ON items, owned, pt TO hi_c;
INSERT INTO z_parent VALUES ('ha', 1, 'a-p1');
INSERT INTO a_child VALUES ('ha', 1, 1);
SET ROLE hi_c;
INSERT INTO z_parent (id, name) VALUES (1, 'p1'), (2, 'p2');
INSERT INTO a_child (id, pid) VALUES (10, 1), (11, 2);
RESET ROLE;
SELECT h.mark('h1');
SET ROLE hi_c;
SELECT h.rows('SELECT id, name FROM z_parent') || ' / ' || h.rows('SELECT id, pid FROM a_child') AS h1 \gset
DELETE FROM a_child WHERE id = 10;
DELETE FROM z_parent WHERE id = 1;
INSERT INTO z_parent (id, name) VALUES (3, 'p3');
INSERT INTO a_child (id, pid) VALUES (12, 3);
UPDATE z_parent SET name = 'p2x' WHERE id = 2;
RESET ROLE;
SELECT h.mark('h2');
SELECT h.rows($$SELECT id, name FROM z_parent WHERE tenant_id = 'hc'$$) || ' / ' || h.rows($$SELECT id, pid FROM a_child WHERE tenant_id = 'hc'$$) AS h2,
	h.nhist('z_parent') + h.nhist('a_child') AS nh_h2, (SELECT count(*) FROM tenant_iso.history_tables) AS n_ht \gset

SET ROLE hi_c;
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_tenant(h.t('h1'), true) WHERE inserted + updated + deleted > 0$$),
	'(a_child,1,0,1) (z_parent,1,1,1)',
	'restore_tenant(h1, dry_run): child 1 inserted 1 deleted, parent 1 inserted 1 updated 1 deleted');
SELECT is((SELECT count(*) FROM tenant_iso.restore_tenant(h.t('h1'), true)), :n_ht::bigint,
	'restore_tenant(): one row per history-enabled table');
SELECT is(h.rows('SELECT id, name FROM z_parent') || ' / ' || h.rows('SELECT id, pid FROM a_child'), :'h2',
	'the dry run changed nothing');
RESET ROLE;
-- a constraint the old rows break, added after h1: the whole restore fails
ALTER TABLE a_child ADD CONSTRAINT a_child_no_10 CHECK (id <> 10) NOT VALID;
SET ROLE hi_c;
SELECT is((SELECT e.state FROM h.e($$SELECT * FROM tenant_iso.restore_tenant(h.t('h1'))$$) e), '23514',
	'restore_tenant() whose child insert breaks a CHECK: 23514');
SELECT is(h.rows('SELECT id, name FROM z_parent') || ' / ' || h.rows('SELECT id, pid FROM a_child'), :'h2',
	'the failed restore_tenant() changed nothing in either table (one transaction)');
RESET ROLE;
SELECT is(h.nhist('z_parent') + h.nhist('a_child'), :nh_h2::bigint, 'the failed restore_tenant() left no history behind');
ALTER TABLE a_child DROP CONSTRAINT a_child_no_10;
SET ROLE hi_c;
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_tenant(h.t('h1')) WHERE inserted + updated + deleted > 0$$),
	'(a_child,1,0,1) (z_parent,1,1,1)', 'restore_tenant(h1): the same counts as the dry run');
SELECT is(h.rows('SELECT id, name FROM z_parent') || ' / ' || h.rows('SELECT id, pid FROM a_child'), :'h1',
	'both tables are as at h1 (parents inserted before children, children deleted before parents)');
RESET ROLE;
SELECT is(h.rows($$SELECT tenant_id, id FROM z_parent WHERE tenant_id <> 'hc'$$) || ' ' || h.rows($$SELECT tenant_id, id FROM a_child WHERE tenant_id <> 'hc'$$),
	'(ha,1) (ha,1)', 'restore_tenant() left ha''s rows alone');
SELECT is(h.v('z_parent') || ' ' || h.v('a_child'), 'ha:1:ok hc:2:ok ha:1:ok hc:2:ok',
	'verify() of both tables is clean after restore_tenant()');

-- re-parenting: a child moves to a new parent, then the old parent goes
SET ROLE hi_c;
INSERT INTO z_parent (id, name) VALUES (4, 'p4');
RESET ROLE;
SELECT h.mark('h3');
SET ROLE hi_c;
SELECT h.rows('SELECT id, name FROM z_parent') || ' / ' || h.rows('SELECT id, pid FROM a_child') AS h3 \gset
INSERT INTO z_parent (id, name) VALUES (5, 'p5');
UPDATE a_child SET pid = 5 WHERE pid = 4 OR id = 11;
DELETE FROM z_parent WHERE id = 2;
UPDATE a_child SET pid = 4 WHERE id = 10;
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_tenant(h.t('h3')) WHERE inserted + updated + deleted > 0$$),
	'(a_child,0,2,0) (z_parent,1,0,1)',
	'restore_tenant(h3) after a child moved to a new parent and the old parent was deleted');
SELECT is(h.rows('SELECT id, name FROM z_parent') || ' / ' || h.rows('SELECT id, pid FROM a_child'), :'h3',
	'both tables are as at h3');
RESET ROLE;

-- =====================================================================
-- 9. A restore that violates a constraint fails whole
-- =====================================================================
CREATE TABLE uq (tenant_id text NOT NULL, id int NOT NULL, email text, n int, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('uq') \g /dev/null
SELECT tenant_iso.enable_history('uq') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON uq TO hi_a;
SET ROLE hi_a;
INSERT INTO uq (id, email, n) VALUES (1, 'x@e.example', 1), (2, 'x@e.example', 2), (3, 'y@e.example', 3);
RESET ROLE;
SELECT h.mark('i1');
SET ROLE hi_a;
UPDATE uq SET email = 'z@e.example' WHERE id = 2;
UPDATE uq SET n = 30 WHERE id = 3;
RESET ROLE;
ALTER TABLE uq ADD CONSTRAINT uq_email UNIQUE (tenant_id, email);
SELECT h.nhist('uq') AS nh_i \gset
SET ROLE hi_a;
SELECT is((SELECT format('%s %s', e.state, e.detail ~ 'x@e\.example|"id": ?[12]\M')
			 FROM h.e($$SELECT * FROM tenant_iso.restore_rows('uq', h.t('i1'))$$) e),
	'23505 t', 'restore_rows() that would duplicate a unique key (added since): 23505, the key in the DETAIL');
SELECT is(h.rows('SELECT id, email, n FROM uq'), '(1,x@e.example,1) (2,z@e.example,2) (3,y@e.example,30)',
	'the failed restore changed nothing (row 3 keeps n = 30)');
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('uq', h.t('i1'), true)$$), 'ERROR 23505',
	'the dry run of that restore fails the same way');
RESET ROLE;
SELECT h.mark('i2');
SET ROLE hi_a;
DELETE FROM uq WHERE id = 1;
INSERT INTO uq (id, email, n) VALUES (4, 'x@e.example', 4);
SELECT is((SELECT format('%s %s', e.state, e.detail ~ 'x@e\.example|"id": ?1\M')
			 FROM h.e($$SELECT * FROM tenant_iso.undelete('uq', h.t('i2'), '{"id": 1, "tenant_id": "ha"}')$$) e),
	'23505 t', 'undelete() of a row whose unique value was taken since: 23505, the key in the DETAIL');
SELECT is(h.rows('SELECT id, email FROM uq'), '(2,z@e.example) (3,y@e.example) (4,x@e.example)',
	'the failed undelete changed nothing');
RESET ROLE;
SELECT is(h.nhist('uq'), (:nh_i + 2)::bigint, 'the failed restores left no history (only the delete and the insert are new)');

-- Rewinding to a state that was valid is no violation, even when unique
-- values were swapped since (a row-by-row UPDATE would collide on the way).
CREATE TABLE sw (tenant_id text NOT NULL, id int NOT NULL, email text, PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, email));
SELECT tenant_iso.protect('sw') \g /dev/null
SELECT tenant_iso.track('sw') \g /dev/null
SELECT tenant_iso.enable_history('sw') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON sw TO hi_a;
SET ROLE hi_a;
INSERT INTO sw (id, email) VALUES (1, 'x@e.example'), (2, 'y@e.example');
RESET ROLE;
SELECT h.mark('i3');
SET ROLE hi_a;
UPDATE sw SET email = 'tmp@e.example' WHERE id = 1;
UPDATE sw SET email = 'x@e.example' WHERE id = 2;
UPDATE sw SET email = 'y@e.example' WHERE id = 1;
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('sw', h.t('i3'))$$), '(sw,0,2,0)',
	'restore_rows() to a time before two rows swapped their unique values: 2 updated');
SELECT is(h.rows('SELECT id, email FROM sw'), '(1,x@e.example) (2,y@e.example)', 'the rows are as at i3');
RESET ROLE;
SELECT is(h.v('sw'), 'ha:2:ok', 'verify() is clean after the rewind of the swap');

-- =====================================================================
-- 10. Schema changes: ADD, DROP, RENAME COLUMN, a type change
-- =====================================================================
CREATE TABLE sc (tenant_id text NOT NULL, id int NOT NULL, v text, gone text, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('sc') \g /dev/null
SELECT tenant_iso.enable_history('sc') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON sc TO hi_a;
SET ROLE hi_a;
INSERT INTO sc (id, v, gone) VALUES (1, 'one', 'g1'), (2, 'two', 'g2');
RESET ROLE;
SELECT h.mark('j1');
SET ROLE hi_a;
DELETE FROM sc WHERE id = 1;
UPDATE sc SET v = 'TWO', gone = 'G2' WHERE id = 2;
RESET ROLE;
ALTER TABLE sc ADD COLUMN extra int DEFAULT 42;
ALTER TABLE sc DROP COLUMN gone;
ALTER TABLE sc RENAME COLUMN v TO val;
SET ROLE hi_a;
UPDATE sc SET extra = 7 WHERE id = 2;
INSERT INTO sc (id, val, extra) VALUES (3, 'three', 3);
RESET ROLE;
SELECT is((SELECT string_agg(attname::text, ', ' ORDER BY attnum) FROM pg_attribute
			WHERE attrelid = h.hist('sc') AND attnum > 0 AND NOT attisdropped AND attname NOT IN ('valid_from', 'valid_to', 'op', 'xid')
			  AND attname::text NOT LIKE 'gone@dropped%'),
	'tenant_id, id, val, extra', 'history table after ADD / DROP / RENAME COLUMN: val renamed, extra added');
SELECT is((SELECT count(*)::int FROM pg_attribute WHERE attrelid = h.hist('sc') AND NOT attisdropped
			AND attname::text ~ '^gone@dropped[0-9]+$'), 1,
	'the dropped column stays in history as "gone@dropped<attnum>"');
SET ROLE hi_a;
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('sc', h.t('j1'))$$), '(sc,1,1,1)',
	'restore_rows(j1) across the schema changes: 1 inserted, 1 updated, 1 deleted');
SELECT is(h.rows('SELECT id, val, extra FROM sc'), '(1,one,42) (2,two,42)',
	'old images restore into the renamed column, with the added column''s default, the dropped values ignored');
RESET ROLE;

CREATE TABLE ty (tenant_id text NOT NULL, id int NOT NULL, n text, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('ty') \g /dev/null
SELECT tenant_iso.enable_history('ty') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON ty TO hi_a;
SET ROLE hi_a;
INSERT INTO ty (id, n) VALUES (1, '12'), (2, 'abc'), (3, '7');
RESET ROLE;
SELECT h.mark('k1');
SET ROLE hi_a;
DELETE FROM ty WHERE id = 2;
RESET ROLE;
SELECT h.mark('k2');
SET ROLE hi_a;
UPDATE ty SET n = '13' WHERE id = 1;
DELETE FROM ty WHERE id = 3;
RESET ROLE;
ALTER TABLE ty ALTER COLUMN n TYPE int USING n::int;
SELECT is((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attname)
			FROM pg_attribute WHERE attrelid = h.hist('ty') AND attname IN ('n', 'n@old') AND NOT attisdropped),
	'n integer, n@old text',
	'ALTER COLUMN TYPE: the history column takes the new type, the values recorded so far are kept as text in "n@old"');
SET ROLE hi_a;
SELECT is(h.rt($$SELECT * FROM tenant_iso.restore_rows('ty', h.t('k1'))$$), 'ERROR 22P02',
	'restore_rows() of an old value that does not convert to the new type fails (22P02)');
SELECT is(h.rows('SELECT id, n FROM ty'), '(1,13)', 'the failed restore changed nothing');
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('ty', h.t('k2'))$$), '(ty,1,1,0)',
	'restore_rows(k2): the old text values are cast to int');
SELECT is(h.rows('SELECT id, n, pg_typeof(n) FROM ty'), '(1,12,integer) (3,7,integer)', 'the rows are as at k2');
RESET ROLE;

-- =====================================================================
-- 11. Identity and generated columns; an administrator's TRUNCATE
-- =====================================================================
CREATE TABLE gen (tenant_id text NOT NULL, id int GENERATED ALWAYS AS IDENTITY, n int, g int GENERATED ALWAYS AS (n * 2) STORED,
				  PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('gen') \g /dev/null
SELECT tenant_iso.enable_history('gen') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON gen TO hi_a;
SET ROLE hi_a;
INSERT INTO gen (n) VALUES (1), (2), (3);
RESET ROLE;
SELECT h.mark('l1');
SET ROLE hi_a;
SELECT h.rows('SELECT id, n, g FROM gen') AS l1 \gset
DELETE FROM gen WHERE n = 1;
UPDATE gen SET n = 20 WHERE n = 2;
INSERT INTO gen (n) VALUES (4);
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('gen', h.t('l1'))$$), '(gen,1,1,1)',
	'restore_rows() on a table with an identity (ALWAYS) and a generated column');
SELECT is(h.rows('SELECT id, n, g FROM gen'), :'l1', 'the identity values are the old ones, the generated column recomputed');
RESET ROLE;

CREATE TABLE tr (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('tr') \g /dev/null
SELECT tenant_iso.enable_history('tr') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON tr TO hi_a, hi_b;
INSERT INTO tr VALUES ('ha', 1, 't1'), ('ha', 2, 't2'), ('hb', 1, 'u1');
SELECT h.mark('m1');
TRUNCATE tr;
SELECT is(h.rows($$SELECT x.op, x.key->>'id', x.image->>'v' FROM tenant_iso.history('tr', h.t('m1'), 'ha') x$$),
	'(T,1,t1) (T,2,t2)', 'an administrator''s TRUNCATE is recorded as T images, per tenant');
SET ROLE hi_a;
SELECT is((SELECT count(*)::int FROM tenant_iso.deleted_rows('tr', h.t('m1'))), 2,
	'the truncated rows are in ha''s recycle bin');
SELECT is(h.rows($$SELECT * FROM tenant_iso.undelete('tr', h.t('m1'))$$), '(tr,2,0,0)', 'undelete() brings them back');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id, v FROM tr'), '(ha,1,t1) (ha,2,t2)', 'ha''s rows are back, hb''s are still gone');

-- An integer tenant column
SELECT tenant_iso.create_tenant('42') \g /dev/null
SELECT tenant_iso.create_tenant('042') \g /dev/null
CREATE TABLE ti (org int NOT NULL, id int NOT NULL, v text, PRIMARY KEY (org, id));
SELECT tenant_iso.protect('ti', 'org') \g /dev/null
SELECT tenant_iso.enable_history('ti') \g /dev/null
INSERT INTO ti VALUES (42, 1, 'x1'), (42, 2, 'x2');
SELECT h.mark('m2');
UPDATE ti SET v = 'changed' WHERE id = 1;
DELETE FROM ti WHERE id = 2;
INSERT INTO ti VALUES (42, 3, 'x3');
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('ti', h.t('m2'), tenant => '42')$$), '(ti,1,1,1)',
	'restore_rows() of a table with an integer tenant column (tenant => ''42'')');
SELECT is(h.rows('SELECT org, id, v FROM ti'), '(42,1,x1) (42,2,x2)', 'its rows are as at m2');
SELECT is((SELECT e.state FROM h.e($$SELECT * FROM tenant_iso.history('ti', h.t('m2'), '042')$$) e), '42501',
	'history() for an existing tenant ''042'', which the integer column would read as 42: 42501');

-- =====================================================================
-- 12. Retention and purge_history(), per tenant
-- =====================================================================
-- pa: the default retention (30 days); pb: enable_history(..., '3 seconds').
-- hd: override 3 seconds; he: none; hf: override 1 hour.
CREATE TABLE pa (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
CREATE TABLE pb (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('pa') \g /dev/null
SELECT tenant_iso.protect('pb') \g /dev/null
SELECT tenant_iso.enable_history('pa') \g /dev/null
SELECT tenant_iso.enable_history('pb', '3 seconds') \g /dev/null
SELECT tenant_iso.set_history_retention('hd', '3 seconds') \g /dev/null
SELECT tenant_iso.set_history_retention('hf', '1 hour') \g /dev/null
SELECT is((SELECT string_agg(tenant_id || '=' || retention, ' ' ORDER BY tenant_id) FROM tenant_iso.history_retention),
	'hd=00:00:03 hf=01:00:00', 'set_history_retention() stored the two overrides');
SELECT is((SELECT retention::text FROM tenant_iso.history_tables WHERE rel = 'pb'::regclass), '00:00:03',
	'enable_history(pb, ''3 seconds'') stored the table''s retention');
INSERT INTO pa SELECT t, i, 'old' FROM unnest(ARRAY['hd', 'he', 'hf']) t, generate_series(1, 2) i;
INSERT INTO pb SELECT t, i, 'old' FROM unnest(ARRAY['hd', 'he', 'hf']) t, generate_series(1, 2) i;
UPDATE pa SET v = 'old2' WHERE id = 1;
UPDATE pb SET v = 'old2' WHERE id = 1;
SELECT h.mark('n1');
SELECT pg_sleep(4);
INSERT INTO pa SELECT t, 3, 'new' FROM unnest(ARRAY['hd', 'he', 'hf']) t;
INSERT INTO pb SELECT t, 3, 'new' FROM unnest(ARRAY['hd', 'he', 'hf']) t;
SELECT is(format('%s %s %s / %s %s %s', h.nhist('pa', 'hd'), h.nhist('pa', 'he'), h.nhist('pa', 'hf'),
				 h.nhist('pb', 'hd'), h.nhist('pb', 'he'), h.nhist('pb', 'hf')),
	'4 4 4 / 4 4 4', 'fixture: 3 old events (2 I, 1 U) and 1 new per tenant and table');
SELECT throws_ok($$SELECT * FROM tenant_iso.restore_rows('pa', h.t('n1'), tenant => 'hd')$$, '22023', NULL,
	'restore_rows() further back than the tenant''s retention (hd: 3 seconds): 22023');
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('pa', h.t('n1'), true, 'he')$$), '(pa,0,0,1)',
	'the same point in time is within he''s retention (30 days): a dry run works');
SET ROLE hi_a;
SELECT throws_ok($$SELECT tenant_iso.purge_history()$$, '42501', NULL, 'purge_history() by a tenant member: 42501');
RESET ROLE;
SELECT is(tenant_iso.purge_history(), 9::bigint,
	'purge_history(): 9 events older than their retention (pa: hd''s 3; pb: hd''s 3 and he''s 3)');
SELECT is(format('%s %s %s / %s %s %s', h.nhist('pa', 'hd'), h.nhist('pa', 'he'), h.nhist('pa', 'hf'),
				 h.nhist('pb', 'hd'), h.nhist('pb', 'he'), h.nhist('pb', 'hf')),
	'1 4 4 / 1 1 4',
	'tenant override > table retention > setting: hd loses old events everywhere, he on pb only, hf nowhere');
SELECT is(tenant_iso.purge_history(), 0::bigint, 'purge_history() again removes nothing');
SELECT tenant_iso.set_history_retention('hd', NULL) \g /dev/null
SELECT is((SELECT string_agg(tenant_id, ' ') FROM tenant_iso.history_retention), 'hf',
	'set_history_retention(tenant, NULL) removes the override');
SELECT throws_ok($$SELECT * FROM tenant_iso.restore_rows('pa', h.t('n1'), true, 'hd')$$, '22023', NULL,
	'a rewind behind what purge removed stays refused after the retention was raised again (hd back to 30 days)');
SELECT pg_sleep(1.1);
BEGIN;
SELECT sum(h.nhist_older(ht.hist, '1 second')) AS n_older FROM tenant_iso.history_tables ht \gset
SELECT is(tenant_iso.purge_history('1 second'), :n_older::bigint,
	'purge_history(older_than => 1 second) removes exactly the events older than that, of every tenant and table');
COMMIT;
SELECT is((SELECT sum(h.nhist_older(ht.hist, '1 second'))::int FROM tenant_iso.history_tables ht), 0,
	'no event older than 1 second is left');

-- =====================================================================
-- 13. shred_tenant() erases that tenant's history, and only that
-- =====================================================================
UPDATE pa SET v = 'fresh' WHERE id = 3;
UPDATE pb SET v = 'fresh' WHERE id = 3;
UPDATE acct SET n = n + 1;
SELECT h.nhist('pa', 'hf') + h.nhist('pb', 'hf') + h.nhist('acct') AS nh_keep \gset
SELECT ok(h.nhist('pa', 'he') + h.nhist('pb', 'he') > 0, 'fixture: he has history before shred_tenant()');
SELECT tenant_iso.shred_tenant('he') \g /dev/null
SELECT is(h.nhist('pa', 'he') + h.nhist('pb', 'he'), 0::bigint, 'shred_tenant(he): none of he''s history is left');
SELECT is(h.nhist('pa', 'hf') + h.nhist('pb', 'hf') + h.nhist('acct'), :nh_keep::bigint,
	'shred_tenant(he): the other tenants'' history is untouched');
SELECT is((SELECT count(*)::int FROM tenant_iso.history('pa', h.t('n1'), 'he')), 0,
	'history(pa, tenant => he) is empty after the shred');

-- =====================================================================
-- 14. disable_history(); a renamed table keeps its history table
-- =====================================================================
ALTER TABLE uq RENAME TO uq2;
SELECT is(h.hist('uq2')::text, 'tenant_iso_history."public.uq"', 'a renamed table keeps its history table''s name');
SELECT h.nhist('uq2') AS nh_uq \gset
UPDATE uq2 SET n = n + 1 WHERE tenant_id = 'ha';
SELECT is(h.nhist('uq2'), (:nh_uq + 3)::bigint, 'writes to the renamed table are still recorded');
SELECT tenant_iso.disable_history('tr') \g /dev/null
SELECT is(format('%s %s', to_regclass('tenant_iso_history."public.tr"') IS NULL,
				 (SELECT count(*) FROM tenant_iso.history_tables WHERE rel = 'tr'::regclass)),
	't 0', 'disable_history(): the history table is dropped and unregistered');
SELECT lives_ok($$INSERT INTO tr VALUES ('ha', 9, 'after')$$, 'writes after disable_history() still work');
UPDATE gen SET n = n + 1 WHERE tenant_id = 'ha';
SELECT h.nhist('gen') AS nh_gen \gset
SELECT tenant_iso.disable_history('gen', keep => true) \g /dev/null
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
			WHERE s.nspname = 'tenant_iso_history' AND c.relname LIKE 'public.gen@%' AND c.relkind = 'r'), 1,
	'disable_history(keep => true) leaves the history as "public.gen@<timestamp>"');
SELECT c.oid::regclass::text AS kept FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE s.nspname = 'tenant_iso_history' AND c.relname LIKE 'public.gen@%' \gset
SELECT is(format('%s %s', (SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a
							WHERE c.oid = :'kept'::regclass AND a.grantee <> c.relowner),
				 h.cnt(:'kept') = :nh_gen),
	'0 t', 'the kept table has no grants and all the rows');
INSERT INTO gen (tenant_id, n) VALUES ('ha', 9);
SELECT is(h.cnt(:'kept'), :nh_gen::bigint, 'no trigger writes to the kept table any more');
SELECT is((SELECT count(*)::int FROM tenant_iso.history_tables WHERE rel = 'gen'::regclass), 0,
	'disable_history(keep => true) unregisters the table');
SELECT throws_ok($$SELECT tenant_iso.disable_history('gen')$$, '42704', NULL, 'disable_history() twice: 42704');
DROP TABLE pa;
SELECT is(format('%s %s', to_regclass('tenant_iso_history."public.pa"') IS NULL,
				 (SELECT count(*) FROM tenant_iso.history_tables WHERE hist::text LIKE '%public.pa%')),
	't 0', 'DROP TABLE of a history-enabled table drops its history table and registry row');

SELECT * FROM finish();

-- ---------------------------------------------------------------------
-- Cleanup: roles are cluster-wide
-- ---------------------------------------------------------------------
RESET ROLE;
SET client_min_messages = error;
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['hi_a', 'hi_b', 'hi_c'] LOOP
		PERFORM tenant_iso.remove_member(r::regrole);
	END LOOP;
	FOREACH r IN ARRAY ARRAY['hi_pool', 'hi_own'] LOOP
		PERFORM tenant_iso.revoke_switch(r::regrole);
	END LOOP;
	FOREACH r IN ARRAY ARRAY['hi_a', 'hi_b', 'hi_c', 'hi_pool', 'hi_plain', 'hi_own'] LOOP
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
