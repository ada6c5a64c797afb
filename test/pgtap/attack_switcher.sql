-- test/pgtap/attack_switcher.sql
--
-- Attack suite, attacker T2: SQL injection through a shared pool role.
-- as_pool is a SWITCHER; the application put it in tenant "acme" with
-- set_tenant('acme') and the injected SQL attacks tenant "globex" from
-- there (THREATS.md classes 1, 2, 4, 5, 6 and 7), plus what is special to a
-- switcher: cursors and cached plans across a switch, and no context at all
-- after reset_tenant().
--
-- A switcher may legitimately switch, so these tests check that whatever
-- context is set is the one enforced, and that nothing crosses a switch.
--
-- With RLS enabled and no policy at all PostgreSQL denies everything, so
-- every policy-dependent assertion also checks acme's own rows in the same
-- string (a positive control).
--
-- One psql session as the superuser postgres; SET ROLE as_pool acts as the
-- pool.  The tenant context is a session setting: it survives SET ROLE and
-- RESET ROLE (the superuser still bypasses row security when it verifies).
-- Roles start with as_ and are dropped at the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'as_pool') THEN
		DROP OWNED BY as_pool CASCADE;
		DROP ROLE as_pool;
	END IF;
END
$$;

-- ---------------------------------------------------------------------
-- Helpers (superuser-owned, SECURITY INVOKER: they run as the pool)
-- ---------------------------------------------------------------------
\ir include/h.sql

-- Rows of a query (a SELECT, or DML with RETURNING) as sorted row literals
-- ('none' when there is none), or 'ERROR <sqlstate>'.  Undone unless keep.
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

-- FETCH 1 from a cursor with SQL FETCH (through SPI): the row, 'none',
-- or 'ERROR <sqlstate>'.
CREATE FUNCTION h.fetch1(cur text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	r record;
	n bigint;
BEGIN
	EXECUTE format('FETCH 1 FROM %I', cur) INTO r;
	GET DIAGNOSTICS n = ROW_COUNT;	-- EXECUTE does not set FOUND
	IF n = 0 THEN
		RETURN 'none';
	END IF;
	RETURN r::text;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

-- FETCH 1 from an existing cursor through a plpgsql refcursor variable.
CREATE FUNCTION h.plpgsql_fetch(cur text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	c refcursor := cur;
	r record;
BEGIN
	FETCH c INTO r;
	IF NOT FOUND THEN
		RETURN 'none';
	END IF;
	RETURN r::text;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

-- Open a plpgsql cursor over orders under the given name.
CREATE FUNCTION h.open_cur(cur text) RETURNS refcursor
LANGUAGE plpgsql AS $f$
DECLARE
	c refcursor := cur;
BEGIN
	OPEN c FOR SELECT tenant_id, id FROM public.orders ORDER BY tenant_id, id;
	RETURN c;
END
$f$;

-- A plpgsql cursor opened under acme, one row fetched, then set_tenant('globex')
-- and FETCH again; the context is acme again on return.
CREATE FUNCTION h.cursor_switch() RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	c CURSOR FOR SELECT tenant_id, id FROM public.orders ORDER BY tenant_id, id;
	r record;
	res text;
BEGIN
	PERFORM tenant_iso.set_tenant('acme');
	OPEN c;
	FETCH c INTO r;
	res := CASE WHEN FOUND THEN r::text ELSE 'none' END;
	PERFORM tenant_iso.set_tenant('globex');
	BEGIN
		FETCH c INTO r;
		res := res || ' then ' || CASE WHEN FOUND THEN r::text ELSE 'none' END;
	EXCEPTION WHEN OTHERS THEN
		res := res || ' then ERROR ' || SQLSTATE;
	END;
	CLOSE c;
	PERFORM tenant_iso.set_tenant('acme');
	RETURN res;
END
$f$;

-- True when evaluated in a parallel worker (not in the leader).
CREATE FUNCTION h.in_worker() RETURNS boolean
LANGUAGE plpgsql PARALLEL SAFE AS $f$
BEGIN
	RETURN pg_backend_pid() <> current_setting('h.leader_pid')::int;
END
$f$;

CREATE FUNCTION h.set(t text) RETURNS void
LANGUAGE plpgsql AS $f$
BEGIN
	PERFORM tenant_iso.set_tenant(t);
END
$f$;

-- ---------------------------------------------------------------------
-- Fixtures (superuser, no tenant context yet)
-- ---------------------------------------------------------------------
CREATE ROLE as_pool;
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('acme');
	PERFORM tenant_iso.create_tenant('globex');
	PERFORM tenant_iso.grant_switch('as_pool');
END
$$;
GRANT CREATE ON SCHEMA public TO as_pool;

CREATE TABLE orders (tenant_id text, id int, amount int, PRIMARY KEY (tenant_id, id));
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
DO $$ BEGIN PERFORM h.reset_orders(); PERFORM tenant_iso.protect('orders'); END $$;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON orders TO as_pool;

-- a protected table the pool OWNS, with a user policy narrowing what it sees
CREATE TABLE owned_by_pool (tenant_id text, id int, amount int, PRIMARY KEY (tenant_id, id));
INSERT INTO owned_by_pool VALUES ('acme', 1, 10), ('acme', 2, 20), ('globex', 1, 100), ('globex', 5, 500);
DO $$ BEGIN PERFORM tenant_iso.protect('owned_by_pool'); END $$;
ALTER TABLE owned_by_pool OWNER TO as_pool;
CREATE POLICY obp_small ON owned_by_pool AS RESTRICTIVE USING (amount < 15);

-- partitions and inheritance children created after protect()
CREATE TABLE events (tenant_id text, id int, note text) PARTITION BY LIST (tenant_id);
CREATE TABLE events_acme PARTITION OF events FOR VALUES IN ('acme');
DO $$ BEGIN PERFORM tenant_iso.protect('events'); END $$;
CREATE TABLE events_globex PARTITION OF events FOR VALUES IN ('globex');
INSERT INTO events VALUES ('acme', 1, 'a1'), ('acme', 2, 'a2'), ('globex', 1, 'g1');
GRANT SELECT ON events, events_acme, events_globex TO as_pool;
CREATE TABLE notes (tenant_id text, id int, body text);
DO $$ BEGIN PERFORM tenant_iso.protect('notes'); END $$;
CREATE TABLE notes_child () INHERITS (notes);
INSERT INTO notes_child VALUES ('acme', 1, 'a'), ('globex', 1, 'g');
GRANT SELECT ON notes, notes_child TO as_pool;

DO $$ BEGIN PERFORM set_config('h.leader_pid', pg_backend_pid()::text, false); END $$;

SELECT plan(73);

-- The application's connection: the pool role in tenant acme.
SET ROLE as_pool;
DO $$ BEGIN PERFORM h.set('acme'); END $$;

-- =====================================================================
-- Class 1: direct access
-- =====================================================================
SELECT is(h.rows('SELECT tenant_id, id, amount FROM orders'),
	'(acme,1,10) (acme,2,20) (acme,3,30)',
	'switcher/class1: SELECT returns exactly the acme rows, never globex rows');

SELECT is(h.rows($$SELECT tenant_id, id FROM orders WHERE tenant_id IN ('acme', 'globex') AND id IN (1, 4, 7)$$),
	'(acme,1)',
	'switcher/class1: SELECT naming globex keys finds only the acme row');

SELECT is(h.try($$INSERT INTO orders VALUES ('globex', 50, 1)$$)
		|| ' / ' || h.try($$INSERT INTO orders VALUES ('acme', 50, 1)$$),
	'ERROR 42501 / ok 1',
	'switcher/class1: INSERT of a globex row is refused (42501) while an acme row is accepted');

SELECT is(h.rows('UPDATE orders SET amount = amount + 1000 WHERE id IN (1, 2, 4, 7) RETURNING tenant_id, id', true),
	'(acme,1) (acme,2)',
	'switcher/class1: UPDATE cannot touch globex rows (only acme ids 1 and 2 are updated)');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id, amount FROM orders'),
	'(acme,1,1010) (acme,2,1020) (acme,3,30) (globex,1,100) (globex,2,200) (globex,4,400) (globex,7,777)',
	'switcher/class1: after the UPDATE attack globex rows are unchanged (superuser check)');
DO $$ BEGIN PERFORM h.reset_orders(); END $$;

SET ROLE as_pool;
SELECT is(h.rows('DELETE FROM orders WHERE id IN (1, 2, 4, 7) RETURNING tenant_id, id', true),
	'(acme,1) (acme,2)',
	'switcher/class1: DELETE cannot touch globex rows (only acme ids 1 and 2 are deleted)');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id FROM orders'),
	'(acme,3) (globex,1) (globex,2) (globex,4) (globex,7)',
	'switcher/class1: after the DELETE attack every globex row is still there (superuser check)');
DO $$ BEGIN PERFORM h.reset_orders(); END $$;

SET ROLE as_pool;
SELECT is(h.run($$MERGE INTO orders o
		USING (VALUES ('globex', 1), ('globex', 7), ('acme', 1)) v(t, i)
		ON o.tenant_id = v.t AND o.id = v.i
		WHEN MATCHED THEN UPDATE SET amount = o.amount + 1000$$),
	'ok 1',
	'switcher/class1: MERGE WHEN MATCHED UPDATE matches no globex key (only the acme key)');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id, amount FROM orders WHERE id IN (1, 7)'),
	'(acme,1,1010) (globex,1,100) (globex,7,777)',
	'switcher/class1: after the MERGE UPDATE attack globex rows are unchanged (superuser check)');
DO $$ BEGIN PERFORM h.reset_orders(); END $$;

SET ROLE as_pool;
SELECT is(h.try($$MERGE INTO orders o USING (VALUES ('globex', 1, 5)) v(t, i, a)
			ON o.tenant_id = v.t AND o.id = v.i WHEN NOT MATCHED THEN INSERT VALUES (v.t, v.i, v.a)$$)
		|| ' / ' || h.try($$MERGE INTO orders o USING (VALUES ('globex', 50, 5)) v(t, i, a)
			ON o.tenant_id = v.t AND o.id = v.i WHEN NOT MATCHED THEN INSERT VALUES (v.t, v.i, v.a)$$)
		|| ' / ' || h.try($$MERGE INTO orders o USING (VALUES ('acme', 50, 5)) v(t, i, a)
			ON o.tenant_id = v.t AND o.id = v.i WHEN NOT MATCHED THEN INSERT VALUES (v.t, v.i, v.a)$$),
	'ERROR 42501 / ERROR 42501 / ok 1',
	'switcher/class1: MERGE INSERT of a globex row is refused (42501), for an existing and a new globex key; an acme row is accepted');

SELECT is(h.run($$INSERT INTO orders VALUES ('globex', 1, 5) ON CONFLICT (tenant_id, id) DO UPDATE SET amount = 999$$)
		|| ' / ' || h.run($$INSERT INTO orders VALUES ('acme', 1, 5) ON CONFLICT (tenant_id, id) DO UPDATE SET amount = 999$$),
	'ERROR 42501 / ok 1',
	'switcher/class1: INSERT .. ON CONFLICT DO UPDATE onto a globex key is refused (42501); onto an acme key it updates');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id, amount FROM orders WHERE id = 1'),
	'(acme,1,999) (globex,1,100)',
	'switcher/class1: the globex row targeted by ON CONFLICT DO UPDATE is unchanged (superuser check)');
DO $$ BEGIN PERFORM h.reset_orders(); END $$;

SET ROLE as_pool;
SELECT is(h.try($$UPDATE orders SET tenant_id = 'globex' WHERE id = 3$$)
		|| ' / ' || h.try($$UPDATE orders SET tenant_id = 'globex' WHERE id = 1$$)
		|| ' / ' || h.try($$UPDATE orders SET amount = 31 WHERE id = 3$$),
	'ERROR 42501 / ERROR 42501 / ok 1',
	'switcher/class1: UPDATE that moves an acme row to globex is refused (42501), also onto an existing globex key');

SELECT is(h.rows($$UPDATE orders SET amount = amount WHERE id IN (1, 4)
		RETURNING tenant_id, id, (SELECT string_agg(DISTINCT o2.tenant_id, ',') FROM orders o2)$$),
	'(acme,1,acme)',
	'switcher/class1: RETURNING (including a subquery in it) returns only acme rows');

-- =====================================================================
-- Class 2: indirect access
-- =====================================================================
CREATE TABLE as_keys (t text, i int);
INSERT INTO as_keys VALUES ('globex', 1), ('globex', 7), ('acme', 1), ('acme', 3);

SELECT is(h.rows('SELECT k.t, k.i, o.amount FROM as_keys k LEFT JOIN orders o ON o.tenant_id = k.t AND o.id = k.i'),
	'(acme,1,10) (acme,3,30) (globex,1,) (globex,7,)',
	'switcher/class2: a join with injected globex keys finds only acme rows');

SELECT is(h.rows($$SELECT (SELECT count(*) FROM orders),
		EXISTS (SELECT 1 FROM orders WHERE tenant_id = 'globex'),
		EXISTS (SELECT 1 FROM orders WHERE tenant_id = 'acme'),
		(SELECT count(*) FROM as_keys WHERE (t, i) IN (SELECT tenant_id, id FROM orders))$$),
	'(3,f,t,2)',
	'switcher/class2: scalar, EXISTS and IN subqueries see only acme rows');

SELECT is(h.rows('WITH c AS MATERIALIZED (SELECT * FROM orders) SELECT tenant_id, count(*), sum(amount) FROM c GROUP BY tenant_id'),
	'(acme,3,60)',
	'switcher/class2: a materialized CTE sees only acme rows');

CREATE VIEW as_v AS SELECT tenant_id, id FROM orders;
CREATE VIEW as_v_inv WITH (security_invoker = true) AS SELECT tenant_id, id FROM orders;
SELECT is(h.rows('SELECT * FROM as_v') || ' | ' || h.rows('SELECT * FROM as_v_inv'),
	'(acme,1) (acme,2) (acme,3) | (acme,1) (acme,2) (acme,3)',
	'switcher/class2: views created by the pool (owner rights, and security_invoker) show only acme rows');

SELECT is(h.run('CREATE MATERIALIZED VIEW as_mv AS SELECT tenant_id, id FROM orders'),
	'ok 3',
	'switcher/class2: a materialized view created by the pool under acme takes 3 rows');
RESET ROLE;
SELECT is(h.rows('SELECT * FROM as_mv'),
	'(acme,1) (acme,2) (acme,3)',
	'switcher/class2: the materialized view holds only acme rows (superuser reads it)');
SET ROLE as_pool;

CREATE FUNCTION as_srf() RETURNS SETOF orders LANGUAGE sql AS 'SELECT * FROM public.orders';
SELECT is(h.rows('SELECT tenant_id, id FROM as_srf()'),
	'(acme,1) (acme,2) (acme,3)',
	'switcher/class2: a set-returning function returns only acme rows');

CREATE FUNCTION as_sd() RETURNS TABLE (t text, i int, a int) LANGUAGE sql SECURITY DEFINER
	AS 'SELECT tenant_id, id, amount FROM public.orders';
SELECT is(h.rows('SELECT * FROM as_sd()'),
	'(acme,1,10) (acme,2,20) (acme,3,30)',
	'switcher/class2: a SECURITY DEFINER function owned by the pool returns only acme rows');

-- Cursors across a context switch ------------------------------------
-- a SQL cursor in a transaction
BEGIN;
DO $$ BEGIN PERFORM h.set('acme'); END $$;
DECLARE as_c CURSOR FOR SELECT tenant_id, id FROM orders ORDER BY tenant_id, id;
SELECT is(h.fetch1('as_c'), '(acme,1)',
	'switcher/class2: a SQL cursor opened under acme FETCHes acme rows');
DO $$ BEGIN PERFORM h.set('globex'); END $$;
SELECT throws_ok('FETCH 1 FROM as_c', '55000', 'cursor was opened under a different tenant context',
	'switcher/class2: FETCH from a SQL cursor opened under acme fails 55000 after set_tenant(''globex'')');
SELECT is(h.fetch1('as_c') || ' ' || h.plpgsql_fetch('as_c'), 'ERROR 55000 ERROR 55000',
	'switcher/class2: FETCH through SPI and through a plpgsql refcursor from the SQL cursor after the switch fail 55000 too');
COMMIT;
DO $$ BEGIN PERFORM h.set('acme'); END $$;

-- a WITH HOLD cursor (materialized at commit, outlives the transaction)
DECLARE as_hold CURSOR WITH HOLD FOR SELECT tenant_id, id FROM orders ORDER BY tenant_id, id;
SELECT is(h.fetch1('as_hold'), '(acme,1)',
	'switcher/class2: a WITH HOLD cursor opened under acme FETCHes acme rows after its transaction ended');
DO $$ BEGIN PERFORM h.set('globex'); END $$;
SELECT throws_ok('FETCH 1 FROM as_hold', '55000', NULL,
	'switcher/class2: FETCH from a WITH HOLD cursor opened under acme fails 55000 after set_tenant(''globex'')');
SELECT throws_ok('MOVE 1 IN as_hold', '55000', NULL,
	'switcher/class2: MOVE in a WITH HOLD cursor opened under acme fails 55000 after set_tenant(''globex'')');
SELECT is(h.plpgsql_fetch('as_hold'), 'ERROR 55000',
	'switcher/class2: a WITH HOLD cursor opened under acme cannot be read through a plpgsql refcursor after set_tenant(''globex'') (55000)');
DO $$ BEGIN PERFORM h.set('acme'); END $$;
CLOSE as_hold;

-- a plpgsql cursor, switched in the middle of the function
SELECT is(h.cursor_switch(), '(acme,1) then ERROR 55000',
	'switcher/class2: a plpgsql cursor opened under acme fails 55000 on FETCH after set_tenant(''globex'')');

-- a cursor opened in plpgsql, FETCHed with SQL after the switch
BEGIN;
DO $$ BEGIN PERFORM h.open_cur('as_rc'); END $$;
SELECT is(h.fetch1('as_rc'), '(acme,1)',
	'switcher/class2: a cursor opened in plpgsql under acme FETCHes acme rows');
DO $$ BEGIN PERFORM h.set('globex'); END $$;
SELECT throws_ok('FETCH 1 FROM as_rc', '55000', 'cursor was opened under a different tenant context',
	'switcher/class2: SQL FETCH from a plpgsql cursor opened under acme fails 55000 after set_tenant(''globex'')');
COMMIT;
DO $$ BEGIN PERFORM h.set('acme'); END $$;

-- =====================================================================
-- Class 4: planner and executor channels
-- =====================================================================
SET plan_cache_mode = force_generic_plan;
PREPARE as_p(int) AS SELECT tenant_id, id FROM orders WHERE amount > $1;
PREPARE as_p_idx(int) AS SELECT tenant_id, id, amount FROM orders WHERE id = $1;
SELECT is(h.run('CREATE TEMP TABLE as_pa AS EXECUTE as_p(0)')
		|| ' ' || h.rows('SELECT * FROM as_pa')
		|| ' ' || h.run('CREATE TEMP TABLE as_pa_idx AS EXECUTE as_p_idx(1)')
		|| ' ' || h.rows('SELECT * FROM as_pa_idx'),
	'ok 3 (acme,1) (acme,2) (acme,3) ok 1 (acme,1,10)',
	'switcher/class4: generic-plan prepared statements (seq and index) under acme return only acme rows');
DO $$ BEGIN PERFORM h.set('globex'); END $$;
SELECT is(h.run('CREATE TEMP TABLE as_pg AS EXECUTE as_p(0)')
		|| ' ' || h.rows('SELECT * FROM as_pg')
		|| ' ' || h.run('CREATE TEMP TABLE as_pg_idx AS EXECUTE as_p_idx(1)')
		|| ' ' || h.rows('SELECT * FROM as_pg_idx')
		|| ' generic=' || (SELECT bool_and(generic_plans >= 2 AND custom_plans = 0) FROM pg_prepared_statements WHERE name IN ('as_p', 'as_p_idx')),
	'ok 4 (globex,1) (globex,2) (globex,4) (globex,7) ok 1 (globex,1,100) generic=true',
	'switcher/class4: the same cached generic plans after set_tenant(''globex'') return only globex rows');
DO $$ BEGIN PERFORM h.set('acme'); END $$;
RESET plan_cache_mode;

\ir include/parallel_guc.sql
SET :"parallel_guc" = on;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SELECT is(h.par('SELECT tenant_id, count(*), bool_and(h.in_worker()) FROM orders GROUP BY tenant_id'),
	'(acme,3,t)',
	'switcher/class4: a scan run by parallel workers under acme returns only acme rows (and ran in a worker)');
DO $$ BEGIN PERFORM h.set('globex'); END $$;
SELECT is(h.par('SELECT tenant_id, count(*), bool_and(h.in_worker()) FROM orders GROUP BY tenant_id'),
	'(globex,4,t)',
	'switcher/class4: after set_tenant(''globex'') parallel workers get the new context: only globex rows');
DO $$ BEGIN PERFORM h.set('acme'); END $$;
RESET :"parallel_guc";
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

CREATE TABLE as_leak_log (t text, a int);
CREATE FUNCTION as_leak(a int, t text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS $$
BEGIN
	INSERT INTO public.as_leak_log VALUES (t, a);
	RETURN true;
END
$$;
SELECT is(h.rows('SELECT count(*) FROM orders WHERE as_leak(amount, tenant_id)', true)
		|| ' ' || h.rows('SELECT t, count(*) FROM as_leak_log GROUP BY t'),
	'(3) (acme,3)',
	'switcher/class4: a leaky (cheap, non-LEAKPROOF) function in WHERE only ever sees acme rows');

SELECT is(h.rows('SELECT count(*) FROM orders WHERE 1 / (amount - 777) <= 0'),
	'(3)',
	'switcher/class4: a division by zero only a globex row (amount 777) could raise does not fire');

SELECT is(h.rows($$SELECT count(*) FROM orders WHERE (CASE WHEN tenant_id = 'acme' THEN '1' ELSE tenant_id END)::int > 0$$),
	'(3)',
	'switcher/class4: a cast error only globex rows could raise (tenant_id::int) does not fire');

SELECT throws_ok('EXPLAIN ANALYZE SELECT * FROM orders', '42501',
	'EXPLAIN ANALYZE is not allowed in a tenant context',
	'switcher/class4: EXPLAIN ANALYZE is refused (42501)');

-- =====================================================================
-- Class 5: whole-table operations (owned_by_pool is owned by the pool)
-- =====================================================================
SELECT throws_ok('TRUNCATE owned_by_pool', '42501',
	'TRUNCATE of a protected table is not allowed in a tenant context',
	'switcher/class5: TRUNCATE of a protected table the pool owns is refused (42501)');

SELECT throws_ok('TRUNCATE orders', '42501',
	'TRUNCATE of a protected table is not allowed in a tenant context',
	'switcher/class5: TRUNCATE of orders with the TRUNCATE privilege is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_pool DISABLE ROW LEVEL SECURITY', '42501',
	'ALTER TABLE ... DISABLE ROW LEVEL SECURITY is not allowed in a tenant context',
	'switcher/class5: ALTER TABLE .. DISABLE ROW LEVEL SECURITY by the owner is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_pool NO FORCE ROW LEVEL SECURITY', '42501',
	'ALTER TABLE ... NO FORCE ROW LEVEL SECURITY is not allowed in a tenant context',
	'switcher/class5: ALTER TABLE .. NO FORCE ROW LEVEL SECURITY by the owner is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_pool DROP COLUMN tenant_id', '42501',
	'dropping the tenant column is not allowed in a tenant context',
	'switcher/class5: DROP COLUMN tenant_id by the owner is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_pool RENAME COLUMN tenant_id TO tenant', '42501',
	'renaming the tenant column is not allowed in a tenant context',
	'switcher/class5: RENAME COLUMN tenant_id by the owner is refused (42501)');

SELECT throws_ok('ALTER TABLE owned_by_pool ALTER COLUMN tenant_id TYPE varchar(40)', '42501',
	'changing the type of the tenant column is not allowed in a tenant context',
	'switcher/class5: ALTER COLUMN tenant_id TYPE by the owner is refused (42501)');

SELECT throws_ok('DROP TABLE owned_by_pool', '42501',
	'DROP TABLE of a protected table is not allowed in a tenant context',
	'switcher/class5: DROP TABLE of a protected table by the owner is refused (42501)');

CREATE FUNCTION as_trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
SELECT throws_ok('CREATE TRIGGER as_t BEFORE INSERT ON owned_by_pool FOR EACH ROW EXECUTE FUNCTION as_trig()', '42501',
	'creating a trigger on a protected table is not allowed in a tenant context',
	'switcher/class5: CREATE TRIGGER on a protected table the pool owns is refused (42501)');

SELECT throws_ok('CREATE RULE as_r AS ON UPDATE TO owned_by_pool DO ALSO NOTIFY as_channel', '42501',
	'creating a rule on a protected table is not allowed in a tenant context',
	'switcher/class5: CREATE RULE on a protected table the pool owns is refused (42501)');

SELECT is(h.rows('SELECT tenant_id, id FROM owned_by_pool')
		|| ' | ' || h.run('DROP POLICY obp_small ON owned_by_pool')
		|| ' | ' || h.rows('SELECT tenant_id, id FROM owned_by_pool'),
	'(acme,1) | ok 0 | (acme,1) (acme,2)',
	'switcher/class5: DROP POLICY of a user policy only widens back to the acme rows, never to globex');

SELECT is(h.run('CREATE POLICY as_all ON owned_by_pool USING (true) WITH CHECK (true)')
		|| ' | ' || h.rows('SELECT tenant_id, id FROM owned_by_pool')
		|| ' | ' || h.try($$INSERT INTO owned_by_pool VALUES ('globex', 9, 9)$$),
	'ok 0 | (acme,1) (acme,2) | ERROR 42501',
	'switcher/class5: CREATE POLICY .. USING (true) by the owner does not widen reads or writes');

RESET ROLE;
SELECT is(h.rows($$SELECT c.relrowsecurity, c.relforcerowsecurity,
		(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
		  WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped),
		(SELECT p.tenant_column FROM tenant_iso.protected_tables p WHERE p.rel = c.oid::regclass),
		(SELECT count(*) FROM owned_by_pool),
		(SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid),
		(SELECT count(*) FROM pg_rewrite r WHERE r.ev_class = c.oid)
	   FROM pg_class c WHERE c.oid = 'owned_by_pool'::regclass$$),
	'(t,t,text,tenant_id,4,0,0)',
	'switcher/class5: owned_by_pool is intact after the refused attacks (superuser check)');

SET ROLE as_pool;
\copy orders TO '/dev/null'
SELECT is(:ROW_COUNT, 3, 'switcher/class5: COPY orders TO exports only the 3 acme rows');

RESET ROLE;
GRANT pg_execute_server_program TO as_pool;
SET ROLE as_pool;
SELECT is(h.run($$COPY orders FROM PROGRAM 'printf ''acme\t70\t1\nglobex\t71\t1\n'''$$)
		|| ' / ' || h.try($$COPY orders FROM PROGRAM 'printf ''acme\t70\t1\nacme\t71\t1\n'''$$),
	'ERROR 42501 / ok 2',
	'switcher/class5: COPY FROM with a globex row is refused (42501) while an all-acme COPY loads');
RESET ROLE;
REVOKE pg_execute_server_program FROM as_pool;

SET ROLE as_pool;
\set ON_ERROR_STOP 0
SELECT WHERE false;
COPY orders (id, amount) FROM STDIN;
72	5
73	5
\.
\set ON_ERROR_STOP 1
SELECT is(:ROW_COUNT, 2, 'switcher/class5: COPY FROM STDIN without the tenant column loads its 2 rows');
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id FROM orders WHERE id >= 70') || ' ' || h.rows('SELECT count(*) FROM orders'),
	'(acme,72) (acme,73) (9)',
	'switcher/class5: the refused COPY loaded nothing; the column-less COPY loaded acme rows (superuser check)');
DO $$ BEGIN PERFORM h.reset_orders(); END $$;

-- owner DDL that evaluates injected code on every row
SET ROLE as_pool;
CREATE TABLE as_ddl_log (t text, a int);
CREATE FUNCTION as_ddl_leak(a int, t text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.as_ddl_log VALUES (t, a);
	RETURN true;
END
$$;
DO $do$ BEGIN PERFORM h.run('ALTER TABLE owned_by_pool ADD CONSTRAINT as_chk CHECK (as_ddl_leak(amount, tenant_id))'); END $do$;
SELECT is(h.rows($$SELECT DISTINCT t FROM as_ddl_log WHERE t <> 'acme'$$),
	'none',
	'switcher/class5: validating a CHECK constraint added by the owner does not feed globex rows to a leaky function');
DO $do$ BEGIN PERFORM h.run('ALTER TABLE owned_by_pool DROP CONSTRAINT IF EXISTS as_chk'); END $do$;

-- =====================================================================
-- Class 6: covert channels
-- =====================================================================
SELECT is(h.try($$INSERT INTO orders VALUES ('acme', 7, 1)$$)
		|| ' / ' || h.try($$INSERT INTO orders VALUES ('acme', 1, 1)$$),
	'ok 1 / ERROR 23505',
	'switcher/class6: an acme row with an id only globex uses inserts fine (no unique-violation probe); a real acme duplicate is 23505');

SELECT is(h.try($$INSERT INTO orders VALUES ('globex', 7, 1)$$)
		|| ' ' || h.try($$INSERT INTO orders VALUES ('globex', 8, 1)$$)
		|| ' ' || h.try($$INSERT INTO orders VALUES ('globex', 7, 1) ON CONFLICT DO NOTHING$$)
		|| ' ' || h.try($$INSERT INTO orders VALUES ('globex', 8, 1) ON CONFLICT DO NOTHING$$)
		|| ' / ' || h.try($$INSERT INTO orders VALUES ('acme', 8, 1) ON CONFLICT DO NOTHING$$),
	'ERROR 42501 ERROR 42501 ERROR 42501 ERROR 42501 / ok 1',
	'switcher/class6: existing and missing globex keys are refused identically (42501), with or without ON CONFLICT DO NOTHING');

SELECT throws_ok('CREATE TABLE as_probe (tenant_id text, oid int, FOREIGN KEY (tenant_id, oid) REFERENCES orders)', '42501',
	'creating a foreign key that references a protected table is not allowed in a tenant context',
	'switcher/class6: CREATE TABLE with a foreign key to orders (FK probe) is refused (42501)');

CREATE TABLE as_probe2 (tenant_id text, oid int);
SELECT throws_ok('ALTER TABLE as_probe2 ADD FOREIGN KEY (tenant_id, oid) REFERENCES orders', '42501',
	'creating a foreign key that references a protected table is not allowed in a tenant context',
	'switcher/class6: ALTER TABLE .. ADD FOREIGN KEY to orders (FK probe) is refused (42501)');

RESET ROLE;
ANALYZE orders;
SELECT count(*) > 0 AS as_su_stats FROM pg_stats WHERE schemaname = 'public' AND tablename = 'orders' \gset
SET ROLE as_pool;
SELECT is(:'as_su_stats' || ' ' || h.rows($$SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = 'orders'$$),
	't (0)',
	'switcher/class6: pg_stats shows the pool nothing for orders (the superuser does see statistics)');

-- =====================================================================
-- Class 7: structure
-- =====================================================================
SELECT is(h.rows('SELECT tenant_id, id FROM events_globex') || ' | ' || h.rows('SELECT tenant_id, id FROM events_acme'),
	'none | (acme,1) (acme,2)',
	'switcher/class7: under acme the globex partition created after protect(), queried directly, returns nothing');
DO $$ BEGIN PERFORM h.set('globex'); END $$;
SELECT is(h.rows('SELECT tenant_id, id FROM events_globex') || ' | ' || h.rows('SELECT tenant_id, id FROM events_acme'),
	'(globex,1) | none',
	'switcher/class7: under globex the acme partition, queried directly, returns nothing');
DO $$ BEGIN PERFORM h.set('acme'); END $$;
SELECT is(h.rows('SELECT tenant_id, id FROM notes_child') || ' | ' || h.rows('SELECT tenant_id, id FROM notes'),
	'(acme,1) | (acme,1)',
	'switcher/class7: an inheritance child created after protect(), queried directly, shows only acme rows');

-- =====================================================================
-- No tenant context: fail closed
-- =====================================================================
DO $$ BEGIN PERFORM tenant_iso.reset_tenant(); END $$;
SELECT is(tenant_iso.current_tenant(), NULL,
	'switcher: after reset_tenant() there is no tenant context');
SELECT throws_ok('SELECT * FROM orders', '42501', 'no tenant context',
	'switcher: with no context a SELECT on orders fails 42501 no tenant context');
SELECT throws_ok('SELECT * FROM orders WHERE id = 1', '42501', 'no tenant context',
	'switcher: with no context an index lookup on orders fails 42501 no tenant context');
SELECT throws_ok($$INSERT INTO orders VALUES ('acme', 80, 1)$$, '42501', 'no tenant context',
	'switcher: with no context an INSERT fails 42501 no tenant context');
SELECT throws_ok('UPDATE orders SET amount = 0', '42501', 'no tenant context',
	'switcher: with no context an UPDATE fails 42501 no tenant context');
SELECT throws_ok('DELETE FROM orders', '42501', 'no tenant context',
	'switcher: with no context a DELETE fails 42501 no tenant context');
-- back in acme, the same UPDATE changes exactly acme's rows
DO $$ BEGIN PERFORM h.set('acme'); END $$;
DO $do$ BEGIN PERFORM h.run('UPDATE orders SET amount = amount + 1'); END $do$;
DO $$ BEGIN PERFORM tenant_iso.reset_tenant(); END $$;
RESET ROLE;
SELECT is(h.rows('SELECT tenant_id, id, amount FROM orders'),
	'(acme,1,11) (acme,2,21) (acme,3,31) (globex,1,100) (globex,2,200) (globex,4,400) (globex,7,777)',
	'switcher: the statements refused with no context changed nothing; back in acme the same UPDATE changed only acme rows (superuser check)');

SELECT * FROM finish();

-- ---------------------------------------------------------------------
-- Cleanup: roles are cluster-wide
-- ---------------------------------------------------------------------
RESET ROLE;
SET client_min_messages = error;
DO $$
BEGIN
	PERFORM tenant_iso.reset_tenant();
	PERFORM tenant_iso.revoke_switch('as_pool');
END
$$;
DROP OWNED BY as_pool CASCADE;
DROP ROLE as_pool;
