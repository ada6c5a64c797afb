-- test/pgtap/attack_residue.sql
--
-- Nothing one pooled request leaves behind acts for the next request of
-- another tenant (issue 10, part 3): temporary objects and prepared
-- transactions.  rs_pool is the switcher role of a pool that serves tenants
-- "rsa" (the attacker) and "rsb" (the victim); rs_b is a member of rsb.
-- One psql session as the superuser: SET ROLE rs_pool acts as the pool.
-- The application's table is app.rs_orders and the pool's search_path is
-- "app", so an unqualified rs_orders is what a temp object can shadow.
-- Roles are cluster-wide: prefix rs_, dropped at the start and the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['rs_b', 'rs_pool'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;

\ir include/h.sql

CREATE ROLE rs_b;
CREATE ROLE rs_pool;
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('rsa');
	PERFORM tenant_iso.create_tenant('rsb');
	PERFORM tenant_iso.add_member('rs_b', 'rsb');
	PERFORM tenant_iso.grant_switch('rs_pool');
END
$$;

CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO PUBLIC;
CREATE TABLE app.rs_orders (tenant_id text, id int, v text, PRIMARY KEY (tenant_id, id));
INSERT INTO app.rs_orders VALUES ('rsa', 1, 'a-1'),
	('rsb', 1, 'b-secret-1'), ('rsb', 2, 'b-secret-2'), ('rsb', 3, 'b-secret-3');
DO $$ BEGIN PERFORM tenant_iso.protect('app.rs_orders'); END $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.rs_orders TO rs_pool, rs_b;
CREATE SEQUENCE app.rs_ids;
GRANT USAGE ON SEQUENCE app.rs_ids TO PUBLIC;
ALTER ROLE rs_pool SET search_path = app, public;
ALTER ROLE rs_b SET search_path = app, public;

-- An honest application function of the pool, unqualified names.
CREATE FUNCTION app.order_count() RETURNS bigint
LANGUAGE plpgsql AS $f$ BEGIN RETURN (SELECT count(*) FROM rs_orders); END $f$;
GRANT EXECUTE ON FUNCTION app.order_count() TO PUBLIC;

SELECT plan(46);

-- ---------------------------------------------------------------------
-- A request of tenant rsa leaves temp objects behind
-- ---------------------------------------------------------------------
SET ROLE rs_pool;
SET search_path = app, public;
SELECT tenant_iso.set_tenant('rsa');
CREATE TEMP TABLE loot (tenant_id text, id int, v text);
GRANT ALL ON loot TO PUBLIC;
CREATE FUNCTION pg_temp.cap(t text, i int, v text) RETURNS boolean
LANGUAGE sql AS $f$ INSERT INTO loot VALUES (t, i, v) RETURNING true $f$;
-- the shadow: rsb's unqualified rs_orders now means this view
CREATE TEMP VIEW rs_orders AS
	SELECT o.* FROM app.rs_orders o WHERE pg_temp.cap(o.tenant_id, o.id, o.v);
GRANT ALL ON rs_orders TO PUBLIC;
CREATE TEMP TABLE rs_items (tenant_id text, id int, v text);
GRANT ALL ON rs_items TO PUBLIC;
CREATE DOMAIN pg_temp.rs_code AS text CHECK (pg_temp.cap('domain', 0, VALUE));
CREATE TEMP SEQUENCE rs_ids START 1000;
GRANT USAGE ON rs_ids TO PUBLIC;
-- a statement prepared by rsa's request that resolves the shadow
PREPARE rs_stale AS SELECT count(*) FROM rs_orders;
SELECT is(h.val('SELECT count(*) FROM rs_orders'), '1',
	'rsa: its own request sees its own temp view (its one row)');
SELECT is(h.val('SELECT count(*) FROM loot'), '1',
	'rsa: ... and the view captured that row into its temp table');
DELETE FROM loot;

-- ---------------------------------------------------------------------
-- The next request, tenant rsb, on the same backend
-- ---------------------------------------------------------------------
SELECT tenant_iso.set_tenant('rsb');
SELECT is(h.run('SELECT * FROM rs_orders'), 'ERROR 55000',
	'rsb: SELECT from the unqualified name that rsa''s temp view shadows -> 55000');
SELECT is(h.run('SELECT count(*) FROM rs_orders WHERE id > 0'), 'ERROR 55000',
	'rsb: ... also with a WHERE clause');
SELECT is(h.run('SELECT * FROM app.rs_orders o WHERE o.id IN (SELECT id FROM rs_orders)'), 'ERROR 55000',
	'rsb: ... also from a subquery');
SELECT is(h.run('WITH c AS (SELECT * FROM rs_orders) SELECT * FROM c'), 'ERROR 55000',
	'rsb: ... also from a CTE');
SELECT is(h.run('INSERT INTO rs_items VALUES (''rsb'', 9, ''b-new'')'), 'ERROR 55000',
	'rsb: INSERT into the name that rsa''s temp table shadows -> 55000');
SELECT is(h.run('UPDATE rs_items SET v = v'), 'ERROR 55000',
	'rsb: UPDATE of rsa''s temp table -> 55000');
SELECT is(h.run('DELETE FROM rs_items'), 'ERROR 55000',
	'rsb: DELETE from rsa''s temp table -> 55000');
SELECT is(h.val('SELECT app.order_count()'), 'ERROR 55000',
	'rsb: the application''s own plpgsql function resolving the shadow -> 55000');
SELECT is(h.run('EXECUTE rs_stale'), 'ERROR 55000',
	'rsb: a statement rsa prepared on the connection -> 55000');
SELECT is(h.run('CREATE TEMP TABLE rs_copy AS SELECT * FROM rs_orders'), 'ERROR 55000',
	'rsb: CREATE TABLE AS over rsa''s temp view -> 55000');
SELECT is(h.run('EXPLAIN SELECT * FROM rs_orders'), 'ERROR 55000',
	'rsb: EXPLAIN of rsa''s temp view -> 55000');
SELECT is(h.run('DECLARE c CURSOR WITH HOLD FOR SELECT * FROM rs_orders'), 'ERROR 55000',
	'rsb: a cursor over rsa''s temp view -> 55000');
SELECT is(h.val('SELECT ''x''::rs_code'), 'ERROR 55000',
	'rsb: a cast to rsa''s temp domain (whose check captures the value) -> 55000');
SELECT is(h.val($$SELECT nextval('rs_ids')$$), 'ERROR 55000',
	'rsb: nextval() of the name rsa''s temp sequence shadows -> 55000');
SELECT is(h.run('SELECT * FROM pg_temp.rs_orders'), 'ERROR 55000',
	'rsb: naming pg_temp explicitly does not help -> 55000');
SELECT ok(h.msg('SELECT * FROM rs_orders') LIKE '%DISCARD TEMP%',
	'rsb: the error hints at DISCARD TEMP');
SELECT ok(h.msg('SELECT * FROM rs_orders') !~ 'rsa|rsb|secret',
	'rsb: the error names no tenant and no value');
SELECT is(h.val('SELECT count(*) FROM app.rs_orders'), '3',
	'rsb: the qualified application table still works (3 rows of rsb)');
SELECT is(h.val('SELECT count(*) FROM pg_class WHERE relname = ''rs_orders'''), '2',
	'rsb: statements that meet no temp object are not affected');
RESET ROLE;
SET ROLE rs_b;
SET search_path = app, public;
SELECT is(h.run('SELECT * FROM rs_orders'), 'ERROR 55000',
	'SET ROLE to rsb''s member on the same backend: the shadow -> 55000');
RESET ROLE;
SET ROLE rs_pool;
SET search_path = app, public;

-- no context at all is another context, too
SELECT tenant_iso.reset_tenant();
SELECT is(h.run('SELECT * FROM rs_orders'), 'ERROR 55000',
	'no context: rsa''s temp view -> 55000');

-- back in rsa: nothing of rsb was captured, and rsa's objects work again
SELECT tenant_iso.set_tenant('rsa');
SELECT is(h.val('SELECT count(*) FROM loot'), '0',
	'rsa: its loot table captured nothing of rsb''s request');
SELECT is(h.val('SELECT count(*) FROM rs_items'), '0',
	'rsa: rsb''s INSERT did not land in rsa''s temp table');
SELECT is(h.val('SELECT count(*) FROM rs_orders'), '1',
	'rsa: the temp objects still work for the request that made them');
DELETE FROM loot;

-- a LOCAL switch meets the residue as well
BEGIN;
SELECT tenant_iso.set_tenant('rsb', true);
SELECT is(h.run('SELECT * FROM rs_orders'), 'ERROR 55000',
	'rsb (LOCAL switch inside a transaction): rsa''s temp view -> 55000');
COMMIT;

-- rsa's request cleans up; then the honest request works
SELECT tenant_iso.set_tenant('rsa');
DROP VIEW rs_orders;
DROP TABLE rs_items;
DROP DOMAIN rs_code;
DROP SEQUENCE rs_ids;
SELECT tenant_iso.set_tenant('rsb');
SELECT is(h.val('SELECT count(*) FROM rs_orders'), '3',
	'after rsa dropped its objects: rsb''s unqualified rs_orders is the application''s table (3 rows)');
SELECT is(h.val('SELECT app.order_count()'), '3',
	'after rsa dropped its objects: the application function works too');
SELECT is(h.run('EXECUTE rs_stale'), 'ok 1',
	'after rsa dropped its objects: the prepared statement is replanned against the application''s table');
SELECT is(h.val($$SELECT nextval('rs_ids')$$), '1',
	'after rsa dropped its objects: nextval() uses the application''s sequence');

-- rsb's own temp objects work for rsb; a drop is forgotten correctly
CREATE TEMP TABLE rs_scratch (x int);
INSERT INTO rs_scratch VALUES (1);
SELECT is(h.val('SELECT count(*) FROM rs_scratch'), '1',
	'rsb: its own temp table works');
DROP TABLE rs_scratch;
SELECT tenant_iso.set_tenant('rsa');
CREATE TEMP TABLE rs_scratch (x int);
SELECT is(h.val('SELECT count(*) FROM rs_scratch'), '0',
	'rsa: a new temp table of the same name, after rsb dropped its own, works for rsa');
-- a rolled-back drop does not make the object usable elsewhere
BEGIN;
DROP TABLE rs_scratch;
ROLLBACK;
SELECT tenant_iso.set_tenant('rsb');
SELECT is(h.run('SELECT * FROM rs_scratch'), 'ERROR 55000',
	'rsb: rsa''s temp table whose drop was rolled back -> 55000');
SELECT tenant_iso.set_tenant('rsa');
DROP TABLE rs_scratch;

-- objects the pool makes outside any context are not trusted either
SELECT tenant_iso.reset_tenant();
CREATE TEMP TABLE rs_nocontext (x int);
SELECT tenant_iso.set_tenant('rsb');
SELECT is(h.run('SELECT * FROM rs_nocontext'), 'ERROR 55000',
	'rsb: a temp table the pool role made with no context -> 55000');
DROP TABLE rs_nocontext;
SELECT tenant_iso.reset_tenant();
DROP TABLE loot;
RESET ROLE;

-- a superuser outside any context is trusted (pgTAP itself relies on it)
CREATE TEMP TABLE rs_admin (x int);
INSERT INTO rs_admin VALUES (7);
SELECT tenant_iso.set_tenant('rsb');
SELECT is(h.val('SELECT x FROM rs_admin'), '7',
	'a temp table a superuser made with no context works in a tenant context');
SELECT tenant_iso.reset_tenant();
DROP TABLE rs_admin;

-- ---------------------------------------------------------------------
-- DISCARD TEMP and tenant_iso.discard_temp_on_switch, on a second
-- connection (they would drop pgTAP's own temp tables here)
-- ---------------------------------------------------------------------
RESET search_path;
CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public;
CREATE FUNCTION h.remote(q text) RETURNS text
LANGUAGE sql AS $f$ SELECT v FROM public.dblink('p', q) AS t(v text) $f$;
CREATE PROCEDURE h.rexec(q text)
LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.dblink_exec('p', q); END $f$;
DO $$ BEGIN PERFORM public.dblink_connect('p', format('host=127.0.0.1 port=%s dbname=%s user=postgres',
	current_setting('port'), current_database())); END $$;
CALL h.rexec('SET ROLE rs_pool');
CALL h.rexec('SET search_path = app, public');
CALL h.rexec($q$DO $x$BEGIN PERFORM tenant_iso.set_tenant('rsa'); END$x$$q$);
CALL h.rexec('CREATE TEMP VIEW rs_orders AS SELECT * FROM app.rs_orders');
CALL h.rexec($q$DO $x$BEGIN PERFORM tenant_iso.set_tenant('rsb'); END$x$$q$);
SELECT is(h.remote($$SELECT h.val('SELECT count(*) FROM rs_orders')$$), 'ERROR 55000',
	'second connection: rsb meets rsa''s temp view -> 55000');
CALL h.rexec('DISCARD TEMP');
SELECT is(h.remote($$SELECT h.val('SELECT count(*) FROM rs_orders')$$), '3',
	'second connection: after DISCARD TEMP rsb reads the application''s table');
CALL h.rexec('RESET ROLE');
SELECT is(h.remote($$SELECT h.run('SET tenant_iso.discard_temp_on_switch = on')$$), 'ok 0',
	'discard_temp_on_switch: a superuser can set it');
CALL h.rexec('SET ROLE rs_pool');
CALL h.rexec('SET search_path = app, public');
SELECT is(h.remote($$SELECT h.run('SET tenant_iso.discard_temp_on_switch = off')$$), 'ERROR 42501',
	'discard_temp_on_switch: the pool role cannot turn it off');
CALL h.rexec($q$DO $x$BEGIN PERFORM tenant_iso.set_tenant('rsa'); END$x$$q$);
CALL h.rexec('CREATE TEMP VIEW rs_orders AS SELECT * FROM app.rs_orders');
CALL h.rexec($q$DO $x$BEGIN PERFORM tenant_iso.set_tenant('rsb'); END$x$$q$);
SELECT is(h.remote($$SELECT count(*)::text FROM pg_class WHERE relname = 'rs_orders' AND relpersistence = 't'$$), '0',
	'discard_temp_on_switch: the switch dropped rsa''s temp view');
SELECT is(h.remote($$SELECT h.val('SELECT count(*) FROM rs_orders')$$), '3',
	'discard_temp_on_switch: rsb''s request reads the application''s table');
DO $$ BEGIN PERFORM public.dblink_disconnect('p'); END $$;

-- ---------------------------------------------------------------------
-- Prepared transactions
-- ---------------------------------------------------------------------
\set ON_ERROR_STOP 0
BEGIN;
SELECT tenant_iso.set_tenant('rsb');
PREPARE TRANSACTION 'rs_p1';
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '0A000',
	'PREPARE TRANSACTION after a session-level set_tenant() -> 0A000');
SELECT is((SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'rs_p1'), 0::bigint,
	'... and nothing was prepared');
SELECT is(tenant_iso.current_tenant(), NULL::text,
	'... and the context change did not survive (the transaction rolled back)');
BEGIN;
SELECT tenant_iso.set_tenant('rsb', true);
PREPARE TRANSACTION 'rs_p2';
ROLLBACK PREPARED 'rs_p2';
SELECT is(tenant_iso.current_tenant(), NULL::text,
	'a LOCAL switch may be prepared; after ROLLBACK PREPARED there is no context');

SELECT * FROM finish();

RESET ROLE;
SET client_min_messages = error;
DISCARD TEMP;
DO $$
DECLARE
	r text;
BEGIN
	PERFORM tenant_iso.revoke_switch('rs_pool');
	PERFORM tenant_iso.remove_member('rs_b'::regrole);
	FOREACH r IN ARRAY ARRAY['rs_b', 'rs_pool'] LOOP
		EXECUTE format('ALTER ROLE %I RESET ALL', r);
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
