-- test/pgtap/attack_planner.sql
--
-- The planner and the lock manager are not oracles (issue 10, part 4).
-- ap_a is a member of tenant "apa" and attacks tenant "apb"; ap_pool is a
-- switcher.  One psql session as the superuser: SET ROLE acts as the
-- attacker, RESET ROLE verifies.  Every policy-dependent assertion carries
-- a positive control.  Roles are cluster-wide: prefix ap_, dropped at the
-- start and the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['ap_a', 'ap_b', 'ap_u', 'ap_c', 'ap_pool'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;

\ir include/h.sql

-- The planner's row estimate of a query (top plan node).
CREATE FUNCTION h.est(q text) RETURNS numeric
LANGUAGE plpgsql AS $f$
DECLARE
	j json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO j;
	RETURN (j -> 0 -> 'Plan' ->> 'Plan Rows')::numeric;
END
$f$;

-- The MERGE oracle: a volatile function that counts its calls in a
-- sequence (not undone by a rollback).
CREATE SEQUENCE h.calls;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE h.calls TO PUBLIC;
CREATE FUNCTION h.bump() RETURNS boolean
LANGUAGE sql VOLATILE AS $f$ SELECT nextval('h.calls') > 0 $f$;
-- The same counter with a condition that is never true, so no action runs
-- and no USING check of an action can stop the count.
CREATE FUNCTION h.bump_false() RETURNS boolean
LANGUAGE sql VOLATILE AS $f$ SELECT nextval('h.calls') < 0 $f$;
CREATE FUNCTION h.calls_now() RETURNS bigint
LANGUAGE sql AS $f$ SELECT last_value FROM h.calls $f$;

-- ---------------------------------------------------------------------
-- Fixtures
-- ---------------------------------------------------------------------
CREATE ROLE ap_a;
CREATE ROLE ap_b;
CREATE ROLE ap_pool;
-- ap_u: a member with UPDATE, DELETE and INSERT but no SELECT;
-- ap_c: a member with SELECT on one column only.
CREATE ROLE ap_u;
CREATE ROLE ap_c;
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('apa');
	PERFORM tenant_iso.create_tenant('apb');
	PERFORM tenant_iso.add_member('ap_a', 'apa');
	PERFORM tenant_iso.add_member('ap_b', 'apb');
	PERFORM tenant_iso.add_member('ap_u', 'apa');
	PERFORM tenant_iso.add_member('ap_c', 'apa');
	PERFORM tenant_iso.grant_switch('ap_pool');
END
$$;

CREATE TABLE ap_m (tenant_id text, id int, amount int, PRIMARY KEY (tenant_id, id));
INSERT INTO ap_m VALUES ('apa', 1, 10), ('apa', 2, 20),
	('apb', 1, 100), ('apb', 2, 200), ('apb', 3, 300), ('apb', 4, 400), ('apb', 5, 500);
DO $$ BEGIN PERFORM tenant_iso.protect('ap_m'); END $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON ap_m TO ap_a, ap_pool;
GRANT INSERT, UPDATE, DELETE ON ap_m TO ap_u;
GRANT SELECT (id), UPDATE (amount) ON ap_m TO ap_c;

-- ap_s: B has 5000 rows of the very common value 'secret' with ids 1..5000;
-- A has 5000 distinct values with ids 10001..15000.
CREATE TABLE ap_s (tenant_id text, id int, val text);
INSERT INTO ap_s SELECT 'apb', i, 'secret' FROM generate_series(1, 5000) i;
INSERT INTO ap_s SELECT 'apa', 10000 + i, 'a' || i FROM generate_series(1, 5000) i;
CREATE STATISTICS ap_s_mcv (mcv) ON tenant_id, val FROM ap_s;
DO $$ BEGIN PERFORM tenant_iso.protect('ap_s'); END $$;
ANALYZE ap_s;
GRANT SELECT, INSERT, UPDATE, DELETE ON ap_s TO ap_a, ap_pool;

SELECT plan(52);

-- ---------------------------------------------------------------------
-- MERGE: the WHEN condition sees only the attacker's rows
--
-- Why the defence (planner.c adds ACL_SELECT to the MERGE target) is
-- needed on PG 15: get_row_security_policies (rewrite/rowsecurity.c) adds
-- no USING qual of the MERGE target as a security qual, except the SELECT
-- policy when requiredPerms has ACL_SELECT.  The UPDATE and DELETE USING
-- quals become WITH CHECK options (WCO_RLS_MERGE_UPDATE_CHECK/_DELETE_CHECK),
-- and ExecMergeMatched (executor/nodeModifyTable.c) tests them only after
-- the WHEN condition was true and only for an UPDATE or DELETE action.  So
-- when nothing reads a target column (ON true, a condition and SET list
-- without target columns), the scan of the target is unfiltered: the ON
-- and WHEN conditions run over every tenant's rows.  Without the defence:
-- the counters below show 7 (every tenant's rows) instead of 2, the
-- true-condition UPDATE fails 42501 on the first row of the other tenant
-- (an existence oracle), and a member without SELECT may run the probe.
-- A MERGE with a DO NOTHING action is not such a probe on 15.20: core
-- then requires SELECT on the target already (observed: a role with
-- UPDATE, DELETE and INSERT but no SELECT gets 42501 for any MERGE with a
-- DO NOTHING action), so the SELECT policy applies, and the first probe
-- below passes with or without the defence.
-- ---------------------------------------------------------------------
SET ROLE ap_a;
DO $$ BEGIN PERFORM nextval('h.calls'); END $$;
-- Neither the condition nor the action reads a target column.
SELECT is(h.run($$MERGE INTO ap_m t USING (SELECT 1) s ON true
	WHEN MATCHED AND h.bump() THEN DO NOTHING$$), 'ok 0',
	'merge: a counting WHEN MATCHED ... DO NOTHING runs');
SELECT is(h.calls_now() - 1, 2::bigint,
	'merge: the counter equals the attacker''s own row count (2), not every tenant''s (7)');
SELECT is(h.run($$MERGE INTO ap_m t USING (VALUES (1, 11), (9, 99)) s(id, amount) ON t.id = s.id
	WHEN MATCHED THEN UPDATE SET amount = s.amount
	WHEN NOT MATCHED THEN INSERT VALUES ('apa', s.id, s.amount)$$), 'ok 2',
	'merge: a member''s MERGE updates and inserts its own rows');
SELECT is(h.run($$MERGE INTO ap_m t USING (VALUES (2)) s(id) ON t.id = s.id
	WHEN MATCHED THEN DELETE$$), 'ok 1',
	'merge: a member''s MERGE deletes its own row');
SELECT is(h.run($$MERGE INTO ap_m t USING (VALUES (3, 7)) s(id, amount) ON t.id = s.id
	WHEN MATCHED THEN UPDATE SET amount = s.amount$$), 'ok 0',
	'merge: another tenant''s row cannot be matched');
RESET ROLE;
SELECT is((SELECT string_agg(format('%s/%s/%s', tenant_id, id, amount), ' ' ORDER BY tenant_id, id) FROM ap_m),
	'apa/1/11 apa/9/99 apb/1/100 apb/2/200 apb/3/300 apb/4/400 apb/5/500',
	'merge: the member changed only its own rows; the other tenant''s rows are intact');

-- The probes that leak without the defence: an UPDATE or DELETE action
-- that reads no target column, behind a counting condition that is never
-- true (so no USING check of the action can stop the count).
SET ROLE ap_a;
SELECT h.calls_now() AS c0 \gset
SELECT is(h.run($$MERGE INTO ap_m t USING (SELECT 1) s ON true
	WHEN MATCHED AND h.bump_false() THEN UPDATE SET amount = 0$$), 'ok 0',
	'merge: a counting WHEN MATCHED ... UPDATE with a constant SET runs');
SELECT is(h.calls_now() - :c0, 2::bigint,
	'merge: the UPDATE probe counts the attacker''s own rows (2), not every tenant''s (7)');
SELECT h.calls_now() AS c0 \gset
SELECT is(h.run($$MERGE INTO ap_m t USING (SELECT 1) s ON true
	WHEN MATCHED AND h.bump_false() THEN DELETE$$), 'ok 0',
	'merge: a counting WHEN MATCHED ... DELETE runs');
SELECT is(h.calls_now() - :c0, 2::bigint,
	'merge: the DELETE probe counts the attacker''s own rows (2), not every tenant''s (7)');
-- The join condition is evaluated over the target's rows too, even when
-- the only action is WHEN NOT MATCHED THEN INSERT.
SELECT h.calls_now() AS c0 \gset
SELECT is(h.try($$MERGE INTO ap_m t USING (VALUES (50)) s(id) ON h.bump_false()
	WHEN NOT MATCHED THEN INSERT VALUES ('apa', s.id, 0)$$), 'ok 1',
	'merge: a counting ON condition with an INSERT action runs');
SELECT is(h.calls_now() - :c0, 2::bigint,
	'merge: the ON probe counts the attacker''s own rows (2), not every tenant''s (7)');
-- Existence oracle: a true condition with an UPDATE action would fail the
-- UPDATE USING check on the first row of another tenant.
SELECT is(h.try($$MERGE INTO ap_m t USING (SELECT 1) s ON true
	WHEN MATCHED AND h.bump() THEN UPDATE SET amount = 0$$), 'ok 2',
	'merge: an unconditional-looking UPDATE reaches only the attacker''s rows (no 42501 from another tenant''s row)');
RESET ROLE;
-- A member with UPDATE, DELETE and INSERT but no SELECT: MERGE on a
-- protected table needs SELECT, so the probe is refused before it runs.
SET ROLE ap_u;
SELECT is(h.try('UPDATE ap_m SET amount = 0'), 'ok 2',
	'merge/no-select: control: the member updates its own rows without SELECT');
SELECT h.calls_now() AS c0 \gset
SELECT is(h.run($$MERGE INTO ap_m t USING (SELECT 1) s ON true
	WHEN MATCHED AND h.bump_false() THEN DELETE$$), 'ERROR 42501',
	'merge/no-select: a MERGE on a protected table needs SELECT on it');
SELECT is(h.calls_now() - :c0, 0::bigint,
	'merge/no-select: the refused probe counted nothing');
RESET ROLE;
-- SELECT on one column is enough (the defence asks for SELECT on the
-- table as a whole, which any column's SELECT grant satisfies).
SET ROLE ap_c;
SELECT is(h.try($$MERGE INTO ap_m t USING (VALUES (1, 5)) s(id, amount) ON t.id = s.id
	WHEN MATCHED THEN UPDATE SET amount = s.amount$$), 'ok 1',
	'merge/column-select: a member with SELECT (id) and UPDATE (amount) merges its own row');
RESET ROLE;
SELECT is((SELECT string_agg(format('%s/%s/%s', tenant_id, id, amount), ' ' ORDER BY tenant_id, id) FROM ap_m),
	'apa/1/11 apa/9/99 apb/1/100 apb/2/200 apb/3/300 apb/4/400 apb/5/500',
	'merge: the probes changed no row');
-- A MERGE prepared while the table was not protected yet: protect()
-- invalidates the cached plan, parse analysis runs again and the defence
-- applies to the re-analysed query.
CREATE TABLE ap_late (tenant_id text, id int);
INSERT INTO ap_late VALUES ('apa', 1), ('apb', 1), ('apb', 2), ('apb', 3);
GRANT SELECT, INSERT, UPDATE, DELETE ON ap_late TO ap_a;
SET ROLE ap_a;
PREPARE ap_late_probe AS MERGE INTO ap_late t USING (SELECT 1) s ON true
	WHEN MATCHED AND h.bump_false() THEN DELETE;
RESET ROLE;
DO $$ BEGIN PERFORM tenant_iso.protect('ap_late'); END $$;
SET ROLE ap_a;
SELECT h.calls_now() AS c0 \gset
SELECT is(h.run('EXECUTE ap_late_probe'), 'ok 0',
	'merge/prepared: a MERGE prepared before protect() runs after it');
SELECT is(h.calls_now() - :c0, 1::bigint,
	'merge/prepared: it counts the attacker''s own row (1), not every tenant''s (4)');
DEALLOCATE ap_late_probe;
RESET ROLE;

-- ---------------------------------------------------------------------
-- Statistics
-- ---------------------------------------------------------------------
SET ROLE ap_a;
SELECT is(h.est($$SELECT * FROM ap_s WHERE tenant_id = 'apb' AND val = 'secret'$$),
	h.est($$SELECT * FROM ap_s WHERE tenant_id = 'apb' AND val = 'never'$$),
	'stats: another tenant''s common value estimates like a value never stored');
SELECT is(h.est($$SELECT * FROM ap_s WHERE val = 'secret'$$),
	h.est($$SELECT * FROM ap_s WHERE val = 'never'$$),
	'stats: MCV of the column withheld');
SELECT is(h.est($$SELECT * FROM ap_s WHERE id < 5001$$),
	h.est($$SELECT * FROM ap_s WHERE id > 20000$$),
	'stats: a range probe over another tenant''s ids estimates like an empty range');
SELECT is((SELECT count(*) FROM pg_stats WHERE tablename = 'ap_s'), 0::bigint,
	'stats: pg_stats shows nothing of a protected table to the tenant');
SELECT is((SELECT count(*) FROM pg_stats_ext WHERE tablename = 'ap_s'), 0::bigint,
	'stats: pg_stats_ext shows nothing of a protected table to the tenant');
SELECT cmp_ok(h.est($$SELECT * FROM ap_s WHERE id > 10000$$), '>', 0::numeric,
	'stats: positive control: the planner still estimates rows');
RESET ROLE;
-- control: with the setting off, the same probes do tell
SET tenant_iso.hide_statistics = off;
SET ROLE ap_a;
SELECT isnt(h.est($$SELECT * FROM ap_s WHERE tenant_id = 'apb' AND val = 'secret'$$),
	h.est($$SELECT * FROM ap_s WHERE tenant_id = 'apb' AND val = 'never'$$),
	'stats control: with hide_statistics off the common value is visible in estimates');
SELECT isnt(h.est($$SELECT * FROM ap_s WHERE val = 'secret'$$),
	h.est($$SELECT * FROM ap_s WHERE val = 'never'$$),
	'stats control: with hide_statistics off the column MCV shows');
SELECT isnt(h.est($$SELECT * FROM ap_s WHERE id < 5001$$),
	h.est($$SELECT * FROM ap_s WHERE id > 20000$$),
	'stats control: with hide_statistics off the histogram answers range probes');
RESET ROLE;
RESET tenant_iso.hide_statistics;
SET ROLE ap_a;
SELECT is(h.run('SET tenant_iso.hide_statistics = off'), 'ERROR 42501',
	'stats: a tenant cannot turn hide_statistics off');
RESET ROLE;
-- extended statistics: the per-column statistics are withheld either way,
-- so this probe isolates the multi-column MCV list
SET ROLE ap_a;
SELECT is(h.est($$SELECT * FROM ap_s WHERE tenant_id = 'apb' AND val = 'secret'$$),
	h.est($$SELECT * FROM ap_s WHERE tenant_id = 'apb' AND val = 'nev' || 'er'$$),
	'stats: extended MCV statistics withheld');
RESET ROLE;

-- ---------------------------------------------------------------------
-- LOCK TABLE
-- ---------------------------------------------------------------------
SET ROLE ap_a;
SELECT is(h.try('LOCK TABLE ap_s IN ACCESS SHARE MODE'), 'ok 0', 'lock/member: ACCESS SHARE allowed');
SELECT is(h.try('LOCK TABLE ap_s IN ROW SHARE MODE'), 'ok 0', 'lock/member: ROW SHARE allowed');
SELECT is(h.try('LOCK TABLE ap_s IN ROW EXCLUSIVE MODE'), 'ok 0', 'lock/member: ROW EXCLUSIVE allowed');
SELECT is(h.try('LOCK TABLE ap_s IN SHARE UPDATE EXCLUSIVE MODE'), 'ERROR 42501', 'lock/member: SHARE UPDATE EXCLUSIVE refused');
SELECT is(h.try('LOCK TABLE ap_s IN SHARE MODE'), 'ERROR 42501', 'lock/member: SHARE refused');
SELECT is(h.try('LOCK TABLE ap_s IN SHARE ROW EXCLUSIVE MODE'), 'ERROR 42501', 'lock/member: SHARE ROW EXCLUSIVE refused');
SELECT is(h.try('LOCK TABLE ap_s IN EXCLUSIVE MODE'), 'ERROR 42501', 'lock/member: EXCLUSIVE refused');
SELECT is(h.try('LOCK TABLE ap_s'), 'ERROR 42501', 'lock/member: ACCESS EXCLUSIVE refused');
RESET ROLE;
SET ROLE ap_pool;
DO $$ BEGIN PERFORM tenant_iso.set_tenant('apa'); END $$;
SELECT is(h.try('LOCK TABLE ap_s IN ROW EXCLUSIVE MODE'), 'ok 0', 'lock/switcher: ROW EXCLUSIVE allowed');
SELECT is(h.try('LOCK TABLE ap_s IN SHARE MODE'), 'ERROR 42501', 'lock/switcher: SHARE refused');
SELECT is(h.try('LOCK TABLE ap_m, ap_s IN ACCESS EXCLUSIVE MODE'), 'ERROR 42501', 'lock/switcher: ACCESS EXCLUSIVE refused');

-- ---------------------------------------------------------------------
-- ALTER ROLE / DATABASE ... SET
-- ---------------------------------------------------------------------
SELECT is(h.try('ALTER ROLE ap_pool SET default_transaction_read_only = on'), 'ERROR 42501',
	'settings/switcher: ALTER ROLE ... SET refused in a tenant context');
SELECT is(h.try('ALTER ROLE ap_pool RESET ALL'), 'ERROR 42501',
	'settings/switcher: ALTER ROLE ... RESET refused in a tenant context');
SELECT is(h.try(format('ALTER ROLE ap_pool IN DATABASE %I SET work_mem = ''8MB''', current_database())), 'ERROR 42501',
	'settings/switcher: ALTER ROLE ... IN DATABASE ... SET refused in a tenant context');
DO $$ BEGIN PERFORM tenant_iso.reset_tenant(); END $$;
RESET ROLE;
SET ROLE ap_a;
SELECT is(h.try('ALTER ROLE ap_a SET work_mem = ''8MB'''), 'ERROR 42501',
	'settings/member: ALTER ROLE ... SET on itself refused');
SELECT is(h.try(format('ALTER DATABASE %I SET work_mem = ''8MB''', current_database())), 'ERROR 42501',
	'settings/member: ALTER DATABASE ... SET refused');
SELECT is(h.try(format('ALTER DATABASE %I RESET ALL', current_database())), 'ERROR 42501',
	'settings/member: ALTER DATABASE ... RESET refused');
RESET ROLE;
SELECT is(h.try('ALTER ROLE ap_pool SET work_mem = ''8MB'''), 'ok 0',
	'settings/admin: ALTER ROLE ... SET allowed outside a tenant context');
SELECT is(h.try(format('ALTER DATABASE %I SET work_mem = ''8MB''', current_database())), 'ok 0',
	'settings/admin: ALTER DATABASE ... SET allowed outside a tenant context');
SELECT is(h.try('LOCK TABLE ap_s'), 'ok 0',
	'lock/admin: ACCESS EXCLUSIVE allowed outside a tenant context');
SELECT is((SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname LIKE 'ap\_%'), 0::bigint,
	'settings: no role setting was left behind');

SELECT * FROM finish();

RESET ROLE;
SET client_min_messages = error;
DO $$
DECLARE
	r text;
BEGIN
	PERFORM tenant_iso.revoke_switch('ap_pool');
	FOREACH r IN ARRAY ARRAY['ap_a', 'ap_b', 'ap_u', 'ap_c'] LOOP
		PERFORM tenant_iso.remove_member(r::regrole);
	END LOOP;
	FOREACH r IN ARRAY ARRAY['ap_a', 'ap_b', 'ap_u', 'ap_c', 'ap_pool'] LOOP
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
