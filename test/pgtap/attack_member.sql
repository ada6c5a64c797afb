-- test/pgtap/attack_member.sql
--
-- Attack suite, attacker T1: a hostile tenant MEMBER role.  am_acme is a
-- member of tenant "acme" and attacks tenant "globex" (THREATS.md classes 1,
-- 2, 4, 5, 6 and 7).  Everything runs in one psql session as the superuser
-- postgres; SET ROLE am_acme acts as the attacker, RESET ROLE returns to the
-- (trusted) superuser, which verifies the real state of the data.
--
-- With RLS enabled and no policy at all, PostgreSQL denies everything.  So an
-- assertion that only says "no globex row" would also pass if the tenant
-- policies vanished.  Every policy-dependent assertion therefore also
-- checks the attacker's own rows in the same string (a positive control).
--
-- Roles are cluster-wide: all of them start with am_ and are dropped at the
-- end (and at the start, should an earlier run have died half-way).
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['am_acme', 'am_globex'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;

-- ---------------------------------------------------------------------
-- Helpers (owned by the superuser, SECURITY INVOKER: they run as the
-- current role, i.e. as the attacker after SET ROLE)
-- ---------------------------------------------------------------------
\ir include/h.sql

-- Rows of a query (a SELECT, or DML with RETURNING) as sorted row literals
-- separated by a space ('none' when there is none), or 'ERROR <sqlstate>'.
-- The statement's effects are undone unless keep.
CREATE FUNCTION h.rows(q text, keep boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE format($x$WITH x AS (%s) SELECT coalesce(string_agg(x::text, ' ' ORDER BY x::text COLLATE "C"), 'none') FROM x$x$, q)
		INTO r;
	IF NOT keep THEN
		RAISE EXCEPTION USING ERRCODE = 'TIUND', MESSAGE = r;
	END IF;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	IF SQLSTATE = 'TIUND' THEN
		RETURN SQLERRM;
	END IF;
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

-- Same for a plain SELECT, as a subquery in FROM (so it can run in parallel).
CREATE FUNCTION h.par(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE format($x$SELECT coalesce(string_agg(s::text, ' ' ORDER BY s::text COLLATE "C"), 'none') FROM (%s) s$x$, q)
		INTO r;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

-- True when evaluated in a parallel worker (not in the leader).
CREATE FUNCTION h.in_worker() RETURNS boolean
LANGUAGE plpgsql PARALLEL SAFE AS $f$
BEGIN
	RETURN pg_backend_pid() <> current_setting('h.leader_pid')::int;
END
$f$;

-- Superuser only: put orders back to its initial rows.
CREATE FUNCTION h.reset_orders() RETURNS void
LANGUAGE plpgsql AS $f$
BEGIN
	DELETE FROM public.orders;
	INSERT INTO public.orders VALUES
		('acme', 1, 10), ('acme', 2, 20), ('acme', 3, 30),
		('globex', 1, 100), ('globex', 2, 200), ('globex', 4, 400), ('globex', 7, 777);
END
$f$;
REVOKE ALL ON FUNCTION h.reset_orders() FROM PUBLIC;

-- ---------------------------------------------------------------------
-- Fixtures (superuser)
-- ---------------------------------------------------------------------
CREATE ROLE am_acme;
CREATE ROLE am_globex;
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('acme');
	PERFORM tenant_iso.create_tenant('globex');
	PERFORM tenant_iso.add_member('am_acme', 'acme');
	PERFORM tenant_iso.add_member('am_globex', 'globex');
END
$$;
GRANT CREATE ON SCHEMA public TO am_acme;

-- orders: the shared protected table.  The attacker also holds TRUNCATE,
-- REFERENCES and TRIGGER, so that native permission checks pass and only
-- tenant_iso can stop those operations.
CREATE TABLE orders (tenant_id text, id int, amount int, PRIMARY KEY (tenant_id, id));
DO $$ BEGIN PERFORM h.reset_orders(); PERFORM tenant_iso.protect('orders'); END $$;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON orders TO am_acme;
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO am_globex;

-- owned_by_attacker: a protected table the attacker OWNS (rows of both tenants
-- inserted by the superuser), plus a user policy that narrows what acme sees.
CREATE TABLE owned_by_attacker (tenant_id text, id int, amount int, PRIMARY KEY (tenant_id, id));
INSERT INTO owned_by_attacker VALUES ('acme', 1, 10), ('acme', 2, 20), ('globex', 1, 100), ('globex', 5, 500);
DO $$ BEGIN PERFORM tenant_iso.protect('owned_by_attacker'); END $$;
ALTER TABLE owned_by_attacker OWNER TO am_acme;
CREATE POLICY oba_small ON owned_by_attacker AS RESTRICTIVE USING (amount < 15);

-- events: LIST-partitioned; the acme partition exists before protect(), the
-- globex partition (itself partitioned) and the DEFAULT partition come after.
CREATE TABLE events (tenant_id text, id int, note text) PARTITION BY LIST (tenant_id);
CREATE TABLE events_acme PARTITION OF events FOR VALUES IN ('acme');
DO $$ BEGIN PERFORM tenant_iso.protect('events'); END $$;
CREATE TABLE events_globex PARTITION OF events FOR VALUES IN ('globex') PARTITION BY RANGE (id);
CREATE TABLE events_globex_lo PARTITION OF events_globex FOR VALUES FROM (0) TO (1000);
CREATE TABLE events_misc (tenant_id text, id int, note text);
ALTER TABLE events ATTACH PARTITION events_misc DEFAULT;
INSERT INTO events VALUES ('acme', 1, 'a1'), ('acme', 2, 'a2'), ('globex', 1, 'g1'), ('globex', 50, 'g50'), ('initech', 1, 'i1');
GRANT SELECT ON events, events_acme, events_globex, events_globex_lo, events_misc TO am_acme;

-- notes: inheritance; notes_child is created after protect(), notes_adopted
-- joins with ALTER TABLE .. INHERIT after protect().
CREATE TABLE notes (tenant_id text, id int, body text);
DO $$ BEGIN PERFORM tenant_iso.protect('notes'); END $$;
CREATE TABLE notes_child () INHERITS (notes);
CREATE TABLE notes_adopted (tenant_id text, id int, body text);
INSERT INTO notes_child VALUES ('acme', 1, 'a'), ('globex', 1, 'g');
INSERT INTO notes_adopted VALUES ('acme', 2, 'a'), ('globex', 2, 'g');
ALTER TABLE notes_adopted INHERIT notes;
GRANT SELECT ON notes, notes_child, notes_adopted TO am_acme;

-- am_tree / am_inh: protected trees the attacker owns (for DETACH / NO INHERIT).
CREATE TABLE am_tree (tenant_id text, id int) PARTITION BY LIST (tenant_id);
CREATE TABLE am_tree_acme PARTITION OF am_tree FOR VALUES IN ('acme');
CREATE TABLE am_tree_globex PARTITION OF am_tree FOR VALUES IN ('globex');
CREATE TABLE am_inh (tenant_id text, id int);
CREATE TABLE am_inh_child () INHERITS (am_inh);
DO $$ BEGIN PERFORM tenant_iso.protect('am_tree'); PERFORM tenant_iso.protect('am_inh'); END $$;
ALTER TABLE am_tree OWNER TO am_acme;
ALTER TABLE am_tree_acme OWNER TO am_acme;
ALTER TABLE am_tree_globex OWNER TO am_acme;
ALTER TABLE am_inh OWNER TO am_acme;
ALTER TABLE am_inh_child OWNER TO am_acme;

SELECT plan(70);

-- =====================================================================
-- Class 1: direct access
-- =====================================================================
SET ROLE am_acme;

SELECT is(h.rows('SELECT tenant_id, id, amount FROM orders'),
	'(acme,1,10) (acme,2,20) (acme,3,30)',
	'class1: SELECT returns exactly the acme rows, never globex rows');

SELECT is(h.rows($$SELECT tenant_id, id FROM orders WHERE tenant_id IN ('acme', 'globex') AND id IN (1, 4, 7)$$),
	'(acme,1)',
	'class1: SELECT naming globex keys finds only the acme row');

SELECT is(h.try($$INSERT INTO orders VALUES ('globex', 50, 1)$$)
		|| ' / ' || h.try($$INSERT INTO orders VALUES ('acme', 50, 1)$$),
	'ERROR 42501 / ok 1',
	'class1: INSERT of a globex row is refused (42501) while an acme row is accepted');

SELECT is(h.rows('UPDATE orders SET amount = amount + 1000 WHERE id IN (1, 2, 4, 7) RETURNING tenant_id, id', true),
	'(acme,1) (acme,2)',
	'class1: UPDATE cannot touch globex rows (only acme ids 1 and 2 are updated)');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id, amount FROM orders'),
	'(acme,1,1010) (acme,2,1020) (acme,3,30) (globex,1,100) (globex,2,200) (globex,4,400) (globex,7,777)',
	'class1: after the UPDATE attack globex rows are unchanged (superuser check)');
DO $$ BEGIN PERFORM h.reset_orders(); END $$;

SET ROLE am_acme;
SELECT is(h.rows('DELETE FROM orders WHERE id IN (1, 2, 4, 7) RETURNING tenant_id, id', true),
	'(acme,1) (acme,2)',
	'class1: DELETE cannot touch globex rows (only acme ids 1 and 2 are deleted)');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id FROM orders'),
	'(acme,3) (globex,1) (globex,2) (globex,4) (globex,7)',
	'class1: after the DELETE attack every globex row is still there (superuser check)');
DO $$ BEGIN PERFORM h.reset_orders(); END $$;

SET ROLE am_acme;
SELECT is(h.run($$MERGE INTO orders o
		USING (VALUES ('globex', 1), ('globex', 7), ('acme', 1)) v(t, i)
		ON o.tenant_id = v.t AND o.id = v.i
		WHEN MATCHED THEN UPDATE SET amount = o.amount + 1000$$),
	'ok 1',
	'class1: MERGE WHEN MATCHED UPDATE matches no globex key (only the acme key)');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id, amount FROM orders WHERE id IN (1, 7)'),
	'(acme,1,1010) (globex,1,100) (globex,7,777)',
	'class1: after the MERGE UPDATE attack globex rows are unchanged (superuser check)');
DO $$ BEGIN PERFORM h.reset_orders(); END $$;

SET ROLE am_acme;
SELECT is(h.try($$MERGE INTO orders o USING (VALUES ('globex', 1, 5)) v(t, i, a)
			ON o.tenant_id = v.t AND o.id = v.i WHEN NOT MATCHED THEN INSERT VALUES (v.t, v.i, v.a)$$)
		|| ' / ' || h.try($$MERGE INTO orders o USING (VALUES ('globex', 50, 5)) v(t, i, a)
			ON o.tenant_id = v.t AND o.id = v.i WHEN NOT MATCHED THEN INSERT VALUES (v.t, v.i, v.a)$$)
		|| ' / ' || h.try($$MERGE INTO orders o USING (VALUES ('acme', 50, 5)) v(t, i, a)
			ON o.tenant_id = v.t AND o.id = v.i WHEN NOT MATCHED THEN INSERT VALUES (v.t, v.i, v.a)$$),
	'ERROR 42501 / ERROR 42501 / ok 1',
	'class1: MERGE INSERT of a globex row is refused (42501), for an existing and a new globex key; an acme row is accepted');

SELECT is(h.run($$INSERT INTO orders VALUES ('globex', 1, 5) ON CONFLICT (tenant_id, id) DO UPDATE SET amount = 999$$)
		|| ' / ' || h.run($$INSERT INTO orders VALUES ('acme', 1, 5) ON CONFLICT (tenant_id, id) DO UPDATE SET amount = 999$$),
	'ERROR 42501 / ok 1',
	'class1: INSERT .. ON CONFLICT DO UPDATE onto a globex key is refused (42501); onto an acme key it updates');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id, amount FROM orders WHERE id = 1'),
	'(acme,1,999) (globex,1,100)',
	'class1: the globex row targeted by ON CONFLICT DO UPDATE is unchanged (superuser check)');
DO $$ BEGIN PERFORM h.reset_orders(); END $$;

SET ROLE am_acme;
SELECT is(h.try($$UPDATE orders SET tenant_id = 'globex' WHERE id = 3$$)
		|| ' / ' || h.try($$UPDATE orders SET tenant_id = 'globex' WHERE id = 1$$)
		|| ' / ' || h.try($$UPDATE orders SET amount = 31 WHERE id = 3$$),
	'ERROR 42501 / ERROR 42501 / ok 1',
	'class1: UPDATE that moves an acme row to globex is refused (42501), also onto an existing globex key');

SELECT is(h.rows($$UPDATE orders SET amount = amount WHERE id IN (1, 4)
		RETURNING tenant_id, id, (SELECT string_agg(DISTINCT o2.tenant_id, ',') FROM orders o2)$$),
	'(acme,1,acme)',
	'class1: RETURNING (including a subquery in it) returns only acme rows');

-- =====================================================================
-- Class 2: indirect access
-- =====================================================================
CREATE TABLE am_keys (t text, i int);
INSERT INTO am_keys VALUES ('globex', 1), ('globex', 7), ('acme', 1), ('acme', 3);

SELECT is(h.rows('SELECT k.t, k.i, o.amount FROM am_keys k LEFT JOIN orders o ON o.tenant_id = k.t AND o.id = k.i'),
	'(acme,1,10) (acme,3,30) (globex,1,) (globex,7,)',
	'class2: a join with attacker-supplied globex keys finds only acme rows');

SELECT is(h.rows('SELECT a.tenant_id, b.tenant_id, count(*) FROM orders a JOIN orders b ON a.id = b.id GROUP BY 1, 2'),
	'(acme,acme,3)',
	'class2: a self-join on id pairs acme rows only');

SELECT is(h.rows($$SELECT (SELECT count(*) FROM orders),
		EXISTS (SELECT 1 FROM orders WHERE tenant_id = 'globex'),
		EXISTS (SELECT 1 FROM orders WHERE tenant_id = 'acme'),
		(SELECT count(*) FROM am_keys WHERE (t, i) IN (SELECT tenant_id, id FROM orders))$$),
	'(3,f,t,2)',
	'class2: scalar, EXISTS and IN subqueries see only acme rows');

SELECT is(h.rows($$WITH c AS MATERIALIZED (SELECT * FROM orders),
		r AS (WITH RECURSIVE w(n) AS (SELECT min(id) FROM orders UNION ALL SELECT n + 1 FROM w WHERE n < (SELECT max(id) FROM orders)) SELECT max(n) AS m FROM w)
		SELECT tenant_id, count(*), sum(amount), (SELECT m FROM r) FROM c GROUP BY tenant_id$$),
	'(acme,3,60,3)',
	'class2: CTEs (materialized and recursive) see only acme rows');

CREATE VIEW am_v AS SELECT tenant_id, id FROM orders;
CREATE VIEW am_v_inv WITH (security_invoker = true) AS SELECT tenant_id, id FROM orders;
SELECT is(h.rows('SELECT * FROM am_v') || ' | ' || h.rows('SELECT * FROM am_v_inv'),
	'(acme,1) (acme,2) (acme,3) | (acme,1) (acme,2) (acme,3)',
	'class2: views created by the attacker (owner rights, and security_invoker) show only acme rows');

SELECT is(h.run('CREATE MATERIALIZED VIEW am_mv AS SELECT tenant_id, id FROM orders')
		|| ' / ' || h.run('REFRESH MATERIALIZED VIEW am_mv'),
	'ok 3 / ok 0',
	'class2: the attacker can create and refresh a materialized view over orders');
SELECT is(h.run('CREATE TABLE am_ctas AS SELECT tenant_id, id FROM orders'),
	'ok 3',
	'class2: CREATE TABLE AS over orders copies 3 rows');
RESET ROLE;
SELECT is(h.rows('SELECT * FROM am_mv') || ' | ' || h.rows('SELECT * FROM am_ctas'),
	'(acme,1) (acme,2) (acme,3) | (acme,1) (acme,2) (acme,3)',
	'class2: the materialized view and the CREATE TABLE AS copy hold only acme rows (superuser reads them)');
SET ROLE am_acme;

CREATE FUNCTION am_srf_sql() RETURNS SETOF orders LANGUAGE sql AS 'SELECT * FROM public.orders';
CREATE FUNCTION am_srf_plpgsql() RETURNS TABLE (t text, i int) LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY SELECT o.tenant_id, o.id FROM public.orders o;
END
$$;
SELECT is(h.rows('SELECT tenant_id, id FROM am_srf_sql()') || ' | ' || h.rows('SELECT * FROM am_srf_plpgsql()'),
	'(acme,1) (acme,2) (acme,3) | (acme,1) (acme,2) (acme,3)',
	'class2: set-returning functions (SQL and plpgsql RETURN QUERY) return only acme rows');

CREATE FUNCTION am_sd() RETURNS TABLE (t text, i int, a int) LANGUAGE sql SECURITY DEFINER
	AS 'SELECT tenant_id, id, amount FROM public.orders';
SELECT is(h.rows('SELECT * FROM am_sd()'),
	'(acme,1,10) (acme,2,20) (acme,3,30)',
	'class2: a SECURITY DEFINER function owned by the attacker returns only acme rows');

-- =====================================================================
-- Class 4: planner and executor channels
-- =====================================================================
SET plan_cache_mode = force_generic_plan;
PREPARE am_p(int) AS SELECT tenant_id, id FROM orders WHERE id <= $1;
PREPARE am_p_idx(int) AS SELECT tenant_id, id, amount FROM orders WHERE id = $1;
SELECT is(h.run('CREATE TEMP TABLE am_pres AS EXECUTE am_p(10)')
		|| ' ' || h.rows('SELECT * FROM am_pres')
		|| ' ' || h.run('CREATE TEMP TABLE am_pres_idx AS EXECUTE am_p_idx(1)')
		|| ' ' || h.rows('SELECT * FROM am_pres_idx')
		|| ' generic=' || (SELECT bool_and(generic_plans > 0 AND custom_plans = 0) FROM pg_prepared_statements WHERE name IN ('am_p', 'am_p_idx')),
	'ok 3 (acme,1) (acme,2) (acme,3) ok 1 (acme,1,10) generic=true',
	'class4: prepared statements on a generic plan (seq and index) return only acme rows');
RESET plan_cache_mode;

RESET ROLE;
DO $$ BEGIN PERFORM set_config('h.leader_pid', pg_backend_pid()::text, false); END $$;
SET ROLE am_acme;
\ir include/parallel_guc.sql
SET :"parallel_guc" = on;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SELECT is(h.par('SELECT tenant_id, count(*), bool_and(h.in_worker()) FROM orders GROUP BY tenant_id'),
	'(acme,3,t)',
	'class4: a scan run by parallel workers returns only acme rows (and really ran in a worker)');
RESET :"parallel_guc";
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

CREATE TABLE am_leak_log (t text, a int);
CREATE FUNCTION am_leak(a int, t text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS $$
BEGIN
	INSERT INTO public.am_leak_log VALUES (t, a);
	RAISE NOTICE 'leak % %', t, a;
	RETURN true;
END
$$;
SELECT is(h.rows('SELECT count(*) FROM orders WHERE am_leak(amount, tenant_id)', true)
		|| ' ' || h.rows('SELECT t, count(*) FROM am_leak_log GROUP BY t'),
	'(3) (acme,3)',
	'class4: a leaky (cheap, non-LEAKPROOF) function in WHERE only ever sees acme rows');

DELETE FROM am_leak_log;
CREATE OPERATOR <<~>> (LEFTARG = int, RIGHTARG = text, FUNCTION = am_leak);
SELECT is(h.rows('SELECT count(*) FROM orders WHERE amount <<~>> tenant_id', true)
		|| ' ' || h.rows('SELECT t, count(*) FROM am_leak_log GROUP BY t'),
	'(3) (acme,3)',
	'class4: a leaky operator in WHERE only ever sees acme rows');

SELECT is(h.rows('SELECT count(*) FROM orders WHERE 1 / (amount - 777) <= 0'),
	'(3)',
	'class4: a division by zero only a globex row (amount 777) could raise does not fire');

SELECT is(h.rows($$SELECT count(*) FROM orders WHERE (CASE WHEN tenant_id = 'acme' THEN '1' ELSE tenant_id END)::int > 0$$),
	'(3)',
	'class4: a cast error only globex rows could raise (tenant_id::int) does not fire');

SELECT throws_ok('EXPLAIN ANALYZE SELECT * FROM orders', '42501',
	'EXPLAIN ANALYZE is not allowed in a tenant context',
	'class4: EXPLAIN ANALYZE is refused (42501)');

-- =====================================================================
-- Class 5: whole-table operations
-- =====================================================================
SELECT throws_ok('TRUNCATE owned_by_attacker', '42501',
	'TRUNCATE of a protected table is not allowed in a tenant context',
	'class5: TRUNCATE of a protected table the attacker owns is refused (42501)');

SELECT throws_ok('TRUNCATE orders', '42501',
	'TRUNCATE of a protected table is not allowed in a tenant context',
	'class5: TRUNCATE of orders with the TRUNCATE privilege is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_attacker DISABLE ROW LEVEL SECURITY', '42501',
	'ALTER TABLE ... DISABLE ROW LEVEL SECURITY is not allowed in a tenant context',
	'class5: ALTER TABLE .. DISABLE ROW LEVEL SECURITY by the owner is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_attacker NO FORCE ROW LEVEL SECURITY', '42501',
	'ALTER TABLE ... NO FORCE ROW LEVEL SECURITY is not allowed in a tenant context',
	'class5: ALTER TABLE .. NO FORCE ROW LEVEL SECURITY by the owner is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_attacker DROP COLUMN tenant_id', '42501',
	'dropping the tenant column is not allowed in a tenant context',
	'class5: DROP COLUMN tenant_id by the owner is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_attacker RENAME COLUMN tenant_id TO tenant', '42501',
	'renaming the tenant column is not allowed in a tenant context',
	'class5: RENAME COLUMN tenant_id by the owner is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_attacker ALTER COLUMN tenant_id TYPE varchar(40)', '42501',
	'changing the type of the tenant column is not allowed in a tenant context',
	'class5: ALTER COLUMN tenant_id TYPE by the owner is refused (42501)');

SELECT throws_ok('DROP TABLE owned_by_attacker', '42501',
	'DROP TABLE of a protected table is not allowed in a tenant context',
	'class5: DROP TABLE of a protected table by the owner is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_attacker DISABLE TRIGGER ALL', '42501',
	'disabling triggers on a protected table is not allowed in a tenant context',
	'class5: ALTER TABLE .. DISABLE TRIGGER by the owner is refused (42501)');

CREATE FUNCTION am_trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
SELECT throws_ok('CREATE TRIGGER am_t BEFORE INSERT ON owned_by_attacker FOR EACH ROW EXECUTE FUNCTION am_trig()', '42501',
	'creating a trigger on a protected table is not allowed in a tenant context',
	'class5: CREATE TRIGGER on a protected table the attacker owns is refused (42501)');

SELECT throws_ok('CREATE TRIGGER am_t2 AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION am_trig()', '42501',
	'creating a trigger on a protected table is not allowed in a tenant context',
	'class5: CREATE TRIGGER on orders with the TRIGGER privilege is refused (42501)');

SELECT throws_ok('CREATE RULE am_r AS ON UPDATE TO owned_by_attacker DO ALSO NOTIFY am_channel', '42501',
	'creating a rule on a protected table is not allowed in a tenant context',
	'class5: CREATE RULE on a protected table the attacker owns is refused (42501)');

SELECT is(h.rows('SELECT tenant_id, id FROM owned_by_attacker')
		|| ' | ' || h.run('DROP POLICY oba_small ON owned_by_attacker')
		|| ' | ' || h.rows('SELECT tenant_id, id FROM owned_by_attacker'),
	'(acme,1) | ok 0 | (acme,1) (acme,2)',
	'class5: DROP POLICY of a user policy only widens back to the acme rows, never to globex');

SELECT throws_ok('DROP POLICY tenant_iso_restrictive ON owned_by_attacker', '42704', NULL,
	'class5: the tenant policies are not catalog policies and cannot be dropped');

SELECT is(h.run('CREATE POLICY am_all ON owned_by_attacker USING (true) WITH CHECK (true)')
		|| ' | ' || h.rows('SELECT tenant_id, id FROM owned_by_attacker')
		|| ' | ' || h.try($$INSERT INTO owned_by_attacker VALUES ('globex', 9, 9)$$),
	'ok 0 | (acme,1) (acme,2) | ERROR 42501',
	'class5: CREATE POLICY .. USING (true) by the owner does not widen reads or writes');

RESET ROLE;
SELECT is(h.rows($$SELECT c.relrowsecurity, c.relforcerowsecurity,
		(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
		  WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped),
		(SELECT p.tenant_column FROM tenant_iso.protected_tables p WHERE p.rel = c.oid::regclass),
		(SELECT count(*) FROM owned_by_attacker),
		(SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid),
		(SELECT count(*) FROM pg_rewrite r WHERE r.ev_class = c.oid)
	   FROM pg_class c WHERE c.oid = 'owned_by_attacker'::regclass$$),
	'(t,t,text,tenant_id,4,0,0)',
	'class5: owned_by_attacker is intact after the refused attacks: RLS on+forced, tenant column, registry, 4 rows, no trigger or rule (superuser check)');

-- COPY TO: the row count psql reports for the export
SET ROLE am_acme;
\copy orders TO '/dev/null'
SELECT is(:ROW_COUNT, 3, 'class5: COPY orders TO exports only the 3 acme rows');

-- COPY FROM with a globex row (data from a program, so that the error can be
-- trapped; the hook treats STDIN and PROGRAM alike)
RESET ROLE;
GRANT pg_execute_server_program TO am_acme;
SET ROLE am_acme;
SELECT is(h.run($$COPY orders FROM PROGRAM 'printf ''acme\t70\t1\nglobex\t71\t1\n'''$$)
		|| ' / ' || h.try($$COPY orders FROM PROGRAM 'printf ''acme\t70\t1\nacme\t71\t1\n'''$$),
	'ERROR 42501 / ok 2',
	'class5: COPY FROM with a globex row is refused (42501) while an all-acme COPY loads');
RESET ROLE;
REVOKE pg_execute_server_program FROM am_acme;

-- COPY FROM STDIN without the tenant column: the rows get acme
SET ROLE am_acme;
\set ON_ERROR_STOP 0
SELECT WHERE false;
COPY orders (id, amount) FROM STDIN;
72	5
73	5
\.
\set ON_ERROR_STOP 1
SELECT is(:ROW_COUNT, 2, 'class5: COPY FROM STDIN without the tenant column loads its 2 rows');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id FROM orders WHERE id >= 70') || ' ' || h.rows('SELECT count(*) FROM orders'),
	'(acme,72) (acme,73) (9)',
	'class5: the refused COPY loaded nothing; the column-less COPY loaded acme rows (superuser check)');
DO $$ BEGIN PERFORM h.reset_orders(); END $$;

-- =====================================================================
-- Class 6: covert channels
-- =====================================================================
SET ROLE am_acme;
SELECT is(h.try($$INSERT INTO orders VALUES ('acme', 7, 1)$$)
		|| ' / ' || h.try($$INSERT INTO orders VALUES ('acme', 1, 1)$$),
	'ok 1 / ERROR 23505',
	'class6: an acme row with an id only globex uses inserts fine (no unique-violation probe); a real acme duplicate is 23505');

SELECT is(h.try($$INSERT INTO orders VALUES ('globex', 7, 1)$$)
		|| ' ' || h.try($$INSERT INTO orders VALUES ('globex', 8, 1)$$)
		|| ' ' || h.try($$INSERT INTO orders VALUES ('globex', 7, 1) ON CONFLICT DO NOTHING$$)
		|| ' ' || h.try($$INSERT INTO orders VALUES ('globex', 8, 1) ON CONFLICT DO NOTHING$$)
		|| ' / ' || h.try($$INSERT INTO orders VALUES ('acme', 8, 1) ON CONFLICT DO NOTHING$$),
	'ERROR 42501 ERROR 42501 ERROR 42501 ERROR 42501 / ok 1',
	'class6: existing and missing globex keys are refused identically (42501), with or without ON CONFLICT DO NOTHING');

SELECT throws_ok('CREATE TABLE am_probe (tenant_id text, oid int, FOREIGN KEY (tenant_id, oid) REFERENCES orders)', '42501',
	'creating a foreign key that references a protected table is not allowed in a tenant context',
	'class6: CREATE TABLE with a foreign key to orders (FK probe) is refused (42501)');

SELECT throws_ok('CREATE TABLE am_probe_col (tenant_id text, oid int REFERENCES orders)', '42501',
	'creating a foreign key that references a protected table is not allowed in a tenant context',
	'class6: a column-level REFERENCES orders is refused (42501)');

CREATE TABLE am_probe2 (tenant_id text, oid int);
SELECT throws_ok('ALTER TABLE am_probe2 ADD FOREIGN KEY (tenant_id, oid) REFERENCES orders', '42501',
	'creating a foreign key that references a protected table is not allowed in a tenant context',
	'class6: ALTER TABLE .. ADD FOREIGN KEY to orders (FK probe) is refused (42501)');

RESET ROLE;
ANALYZE orders;
SELECT count(*) > 0 AS am_su_stats FROM pg_stats WHERE schemaname = 'public' AND tablename = 'orders' \gset
SET ROLE am_acme;
SELECT is(:'am_su_stats' || ' ' || h.rows($$SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = 'orders'$$),
	't (0)',
	'class6: pg_stats shows the member nothing for orders (the superuser does see statistics)');

-- =====================================================================
-- Class 7: structure
-- =====================================================================
SELECT is(h.rows('SELECT tenant_id, id FROM events_globex_lo')
		|| ' | ' || h.rows('SELECT tenant_id, id FROM events_globex')
		|| ' | ' || h.rows('SELECT tenant_id, id FROM events_acme'),
	'none | none | (acme,1) (acme,2)',
	'class7: the globex partitions created after protect(), queried directly, return nothing (acme partition readable)');

SELECT is(h.rows('SELECT tenant_id, id FROM events_misc') || ' | ' || h.rows('SELECT tenant_id, id FROM events'),
	'none | (acme,1) (acme,2)',
	'class7: the DEFAULT partition attached after protect(), queried directly, returns nothing; the parent shows acme rows');

SELECT is(h.rows('SELECT tenant_id, id FROM notes_child')
		|| ' | ' || h.rows('SELECT tenant_id, id FROM notes_adopted')
		|| ' | ' || h.rows('SELECT tenant_id, id FROM notes'),
	'(acme,1) | (acme,2) | (acme,1) (acme,2)',
	'class7: inheritance children created or adopted after protect(), queried directly, show only acme rows');

SELECT throws_ok('ALTER TABLE am_tree DETACH PARTITION am_tree_globex', '42501',
	'detaching a partition of a protected table is not allowed in a tenant context',
	'class7: DETACH PARTITION of a protected tree the attacker owns is refused (42501)');

SELECT throws_ok('ALTER TABLE am_inh_child NO INHERIT am_inh', '42501',
	'removing a table from a protected parent is not allowed in a tenant context',
	'class7: NO INHERIT from a protected parent the attacker owns is refused (42501)');

-- injecting rows under globex's id through an unprotected table the attacker fills
CREATE TABLE am_evil (tenant_id text, id int);
INSERT INTO am_evil VALUES ('globex', 666);
SELECT throws_ok('ALTER TABLE am_tree ATTACH PARTITION am_evil DEFAULT', '42501',
	'attaching a partition to a protected table is not allowed in a tenant context',
	'class7: ATTACH PARTITION of an attacker-filled table to a protected tree is refused (42501)');

SELECT throws_ok('ALTER TABLE am_evil INHERIT am_inh', '42501',
	'adding a table to a protected parent is not allowed in a tenant context',
	'class7: ALTER TABLE .. INHERIT an attacker-filled table into a protected parent is refused (42501)');

RESET ROLE;
SELECT is(h.rows($$SELECT p.rel::text, p.tenant_column, c.relrowsecurity, c.relforcerowsecurity
		FROM tenant_iso.protected_tables p JOIN pg_class c ON c.oid = p.rel
		WHERE p.rel::text ~ '^(events|notes)'$$),
	'(events,tenant_id,t,t) (events_acme,tenant_id,t,t) (events_globex,tenant_id,t,t) (events_globex_lo,tenant_id,t,t) (events_misc,tenant_id,t,t) (notes,tenant_id,t,t) (notes_adopted,tenant_id,t,t) (notes_child,tenant_id,t,t)',
	'class7: protected_tables lists every partition and child created or attached after protect(), each with RLS on and forced');

-- =====================================================================
-- Whole-table DDL by the owner that evaluates attacker code on every row
-- (classes 4 and 5).  The guards above stop the listed operations; these
-- check that other owner DDL does not reach globex rows either.
-- =====================================================================
SET ROLE am_acme;
CREATE TABLE am_ddl_log (t text, a int);
CREATE FUNCTION am_ddl_leak(a int, t text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.am_ddl_log VALUES (t, a);
	RETURN true;
END
$$;
DO $do$ BEGIN PERFORM h.run('ALTER TABLE owned_by_attacker ADD CONSTRAINT am_chk CHECK (am_ddl_leak(amount, tenant_id))'); END $do$;
SELECT is(h.rows($$SELECT DISTINCT t FROM am_ddl_log WHERE t <> 'acme'$$),
	'none',
	'class5: validating a CHECK constraint added by the owner does not feed globex rows to a leaky function');
DO $do$ BEGIN PERFORM h.run('ALTER TABLE owned_by_attacker DROP CONSTRAINT IF EXISTS am_chk'); END $do$;

-- sequences are not transactional: a side channel that survives a rollback
CREATE SEQUENCE am_leak_seq;
CREATE FUNCTION am_imm_leak(a int, t text) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF t <> 'acme' THEN
		PERFORM setval('public.am_leak_seq', a);
	END IF;
	RETURN a;
END
$$;
DO $do$ BEGIN PERFORM h.try('CREATE INDEX am_leak_idx ON owned_by_attacker (am_imm_leak(amount, tenant_id))'); END $do$;
SELECT is(h.rows('SELECT is_called FROM am_leak_seq'),
	'(f)',
	'class4: an expression index built by the owner does not feed globex rows to a leaky IMMUTABLE function');

DO $do$ BEGIN PERFORM h.run('ALTER TABLE owned_by_attacker ALTER COLUMN amount TYPE bigint USING 0'); END $do$;
RESET ROLE;
SELECT is(h.rows($$SELECT id, amount FROM owned_by_attacker WHERE tenant_id = 'globex'$$),
	'(1,100) (5,500)',
	'class5: ALTER COLUMN amount TYPE .. USING 0 by the owner leaves globex amounts unchanged (superuser check)');

SET ROLE am_acme;
SET client_min_messages = error;	-- DROP OWNED BY warns about every grant it cannot revoke
SELECT throws_ok('DROP OWNED BY am_acme', '42501', 'DROP OWNED is not allowed in a tenant context',
	'class5: DROP OWNED BY the owner is refused with 42501');

RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_class WHERE oid = 'public.owned_by_attacker'::regclass AND relrowsecurity),
	1, 'class5: and the protected table holding globex rows is still there, with row security on');
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
	FOREACH r IN ARRAY ARRAY['am_acme', 'am_globex'] LOOP
		PERFORM tenant_iso.remove_member(r::regrole);
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
