-- test/pgtap/attack_history.sql
--
-- Attacks on self-service restore (issue 13).  Tenant "tb" (members ah_b,
-- ah_bro, ah_evil; the pool ah_pool in tb's context) goes after the history
-- of tenant "ta" (member ah_a):
--   - through every function (history, deleted_rows, as_of, undelete,
--     restore_rows, restore_tenant), naming ta in tenant => and without it;
--   - through direct SELECT / INSERT / UPDATE / DELETE / TRUNCATE (and DDL)
--     on tenant_iso_history.*, as a member, a pool in and out of a tenant
--     context, a plain role and the table's (non-superuser) owner;
--   - through the management functions (disable_history, retention, purge,
--     shred);
--   - through as_of() with a forged tenant;
--   - as a member without the privileges a restore needs;
--   - after shred_tenant('ta'), as ta itself and as an administrator;
--   - with shadows of the operators and functions the history code uses,
--     in a schema first in search_path and in public (no shadow may run,
--     whoever calls);
--   - reading error messages and NOTICEs for ta's values (a second psql
--     session whose stderr is captured).
-- Each refusal comes with a positive control: the same call for the
-- caller's own tenant works and sees only its own rows.
--
-- One psql session as the superuser postgres, no enclosing transaction;
-- SET ROLE acts as the attacker, RESET ROLE returns to the superuser, who
-- checks the real state.  Roles are cluster-wide: prefix ah_, dropped at
-- the start and the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['ah_a', 'ah_b', 'ah_bro', 'ah_evil', 'ah_pool', 'ah_plain', 'ah_owner'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
	EXECUTE format('ALTER DATABASE %I RESET search_path', current_database());
END
$$;

\ir include/h.sql

-- h.mark(k) / h.t(k): a point in time by name
CREATE TABLE h.ts (k text PRIMARY KEY, t timestamptz NOT NULL);
GRANT SELECT, INSERT, UPDATE ON h.ts TO PUBLIC;
CREATE FUNCTION h.mark(k text) RETURNS void LANGUAGE sql AS $f$
	INSERT INTO h.ts VALUES ($1, clock_timestamp()) ON CONFLICT ON CONSTRAINT ts_pkey DO UPDATE SET t = excluded.t
$f$;
CREATE FUNCTION h.t(k text) RETURNS timestamptz LANGUAGE sql STABLE AS $f$
	SELECT ts.t FROM h.ts WHERE ts.k = $1
$f$;

-- rows of a query as sorted row literals ('none'), or 'ERROR <sqlstate>'; effects kept
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

-- superuser: ta's / tb's rows and history, and the digests of a tenant
-- (their tables come below)
SET check_function_bodies = off;
CREATE FUNCTION h.snap(tenant text) RETURNS text LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(o.id || '=' || o.v, ' ' ORDER BY o.id), 'none') FROM app.orders o WHERE o.tenant_id = $1
$f$;
CREATE FUNCTION h.nhist(tenant text) RETURNS bigint LANGUAGE sql AS $f$
	SELECT count(*) FROM tenant_iso_history."app.orders" x WHERE x.tenant_id = $1
$f$;
CREATE FUNCTION h.hsnap(tenant text) RETURNS text LANGUAGE sql AS $f$
	SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text COLLATE "C"), ''))
	  FROM tenant_iso_history."app.orders" x WHERE x.tenant_id = $1
$f$;
CREATE FUNCTION h.dig(tenant text) RETURNS text LANGUAGE sql AS $f$
	SELECT md5(coalesce(string_agg(d::text, ',' ORDER BY d::text COLLATE "C"), ''))
	  FROM tenant_iso.digests d WHERE d.relname = 'app.orders' AND d.tenant_id = $1
$f$;
REVOKE ALL ON FUNCTION h.snap(text), h.nhist(text), h.hsnap(text), h.dig(text) FROM PUBLIC;
RESET check_function_bodies;

-- ---------------------------------------------------------------------
-- Fixtures
-- ---------------------------------------------------------------------
CREATE ROLE ah_a;		-- member of ta (the victim)
CREATE ROLE ah_b;		-- member of tb (the attacker)
CREATE ROLE ah_bro;		-- member of tb with SELECT only
CREATE ROLE ah_evil;	-- member of tb with CREATE on a schema of its own and on public
CREATE ROLE ah_pool;	-- switcher
CREATE ROLE ah_plain;	-- no tenant, but privileges on the table
CREATE ROLE ah_owner;	-- owns the table; neither member nor switcher
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant(t) FROM unnest(ARRAY['ta', 'tb', 'ah_s']) t;
	PERFORM tenant_iso.add_member('ah_a', 'ta');
	PERFORM tenant_iso.add_member('ah_b', 'tb');
	PERFORM tenant_iso.add_member('ah_bro', 'tb');
	PERFORM tenant_iso.add_member('ah_evil', 'tb');
	PERFORM tenant_iso.grant_switch('ah_pool');
END
$$;

CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO PUBLIC;
CREATE TABLE app.orders (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
INSERT INTO app.orders SELECT 'ta', i, 'A-secret-' || i FROM generate_series(1001, 1005) i;
INSERT INTO app.orders SELECT 'tb', i, 'b-' || i FROM generate_series(2001, 2003) i;
SELECT tenant_iso.protect('app.orders') \g /dev/null
SELECT tenant_iso.track('app.orders') \g /dev/null
SELECT tenant_iso.enable_history('app.orders') \g /dev/null
ALTER TABLE app.orders OWNER TO ah_owner;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON app.orders TO ah_a, ah_b, ah_evil, ah_pool, ah_plain;
GRANT SELECT ON app.orders TO ah_bro;

SELECT h.mark('t0');
SET ROLE ah_a;
UPDATE app.orders SET v = 'A-secret-changed' WHERE id = 1001;
DELETE FROM app.orders WHERE id = 1002;
INSERT INTO app.orders (id, v) VALUES (1006, 'A-secret-1006');
SET ROLE ah_b;
UPDATE app.orders SET v = 'b-changed' WHERE id = 2001;
DELETE FROM app.orders WHERE id = 2002;
INSERT INTO app.orders (id, v) VALUES (2004, 'b-2004');
RESET ROLE;
SELECT h.mark('t1');
SELECT h.snap('ta') AS a_rows, h.hsnap('ta') AS a_hist, h.nhist('ta') AS a_nhist, h.dig('ta') AS a_dig \gset

SELECT plan(73);

SELECT is(:'a_rows'::text, '1001=A-secret-changed 1003=A-secret-1003 1004=A-secret-1004 1005=A-secret-1005 1006=A-secret-1006',
	'fixture: ta''s rows');
SELECT is(:a_nhist::int, 3, 'fixture: ta has 3 history events (U 1001, D 1002, I 1006)');

-- =====================================================================
-- 1. Every function, from tb's context, naming ta
-- =====================================================================
SET ROLE ah_b;
SELECT throws_ok($$SELECT * FROM tenant_iso.history('app.orders', h.t('t0'), 'ta')$$, '42501', NULL,
	'tb member: history(..., tenant => ''ta'') -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.deleted_rows('app.orders', h.t('t0'), 'ta')$$, '42501', NULL,
	'tb member: deleted_rows(..., tenant => ''ta'') -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.as_of('app.orders', h.t('t0'), 'ta') AS t(tenant_id text, id int, v text)$$, '42501', NULL,
	'tb member: as_of(..., tenant => ''ta'') -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.undelete('app.orders', h.t('t0'), NULL, 'ta')$$, '42501', NULL,
	'tb member: undelete(..., tenant => ''ta'') -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.undelete('app.orders', h.t('t0'), '{"id": 1002, "tenant_id": "ta"}', 'ta')$$, '42501', NULL,
	'tb member: undelete(ta''s key, tenant => ''ta'') -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.restore_rows('app.orders', h.t('t0'), true, 'ta')$$, '42501', NULL,
	'tb member: restore_rows(dry_run, tenant => ''ta'') -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.restore_rows('app.orders', h.t('t0'), false, 'ta')$$, '42501', NULL,
	'tb member: restore_rows(tenant => ''ta'') -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.restore_tenant(h.t('t0'), true, 'ta')$$, '42501', NULL,
	'tb member: restore_tenant(dry_run, tenant => ''ta'') -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.restore_tenant(h.t('t0'), false, 'ta')$$, '42501', NULL,
	'tb member: restore_tenant(tenant => ''ta'') -> 42501');
-- ... and without naming it: its own history only
SELECT is(h.rows($$SELECT x.op, x.key->>'tenant_id', x.key->>'id' FROM tenant_iso.history('app.orders', h.t('t0')) x$$),
	'(D,tb,2002) (I,tb,2004) (U,tb,2001)', 'tb member: history() lists tb''s 3 events and none of ta''s');
SELECT is(h.rows($$SELECT x.key->>'tenant_id', x.key->>'id' FROM tenant_iso.deleted_rows('app.orders', h.t('t0')) x$$),
	'(tb,2002)', 'tb member: deleted_rows() holds tb''s deleted row only');
SELECT is(h.rows($$SELECT t.tenant_id, t.id, t.v FROM tenant_iso.as_of('app.orders', h.t('t0')) AS t(tenant_id text, id int, v text)$$),
	'(tb,2001,b-2001) (tb,2002,b-2002) (tb,2003,b-2003)', 'tb member: as_of(t0) gives tb''s rows of t0 only');
SELECT is(h.rows($$SELECT * FROM tenant_iso.undelete('app.orders', h.t('t0'), '{"id": 1002, "tenant_id": "ta"}')$$),
	'(app.orders,0,0,0)', 'tb member: undelete() of ta''s deleted key inserts nothing');
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_rows('app.orders', h.t('t0'), true)$$),
	'(app.orders,1,1,1)', 'tb member: restore_rows(dry_run) counts tb''s changes only (ta has 3 as well)');
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_tenant(h.t('t0'), true)$$),
	'(app.orders,1,1,1)', 'tb member: restore_tenant(dry_run) counts tb''s changes only');
RESET ROLE;
SELECT is(format('%s %s %s', h.snap('ta') = :'a_rows', h.hsnap('ta') = :'a_hist', h.dig('ta') = :'a_dig'),
	't t t', 'ta''s rows, history and digests are untouched');

-- =====================================================================
-- 2. A member without the privileges of a restore (SELECT only)
-- =====================================================================
SELECT h.snap('tb') AS b_rows \gset
SET ROLE ah_bro;
SELECT is((SELECT count(*)::int FROM tenant_iso.history('app.orders', h.t('t0'))), 3,
	'SELECT-only member: history() works (positive control)');
SELECT throws_ok($$SELECT * FROM tenant_iso.restore_rows('app.orders', h.t('t0'))$$, '42501', NULL,
	'SELECT-only member: restore_rows() -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.restore_tenant(h.t('t0'))$$, '42501', NULL,
	'SELECT-only member: restore_tenant() -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.undelete('app.orders', h.t('t0'))$$, '42501', NULL,
	'SELECT-only member: undelete() -> 42501');
RESET ROLE;
GRANT INSERT ON app.orders TO ah_bro;
SET ROLE ah_bro;
SELECT is(ARRAY[h.try($$SELECT * FROM tenant_iso.undelete('app.orders', h.t('t0')) WHERE inserted = 1$$),
				h.try($$SELECT * FROM tenant_iso.restore_rows('app.orders', h.t('t0'))$$)],
	ARRAY['ok 1', 'ERROR 42501'],
	'member with SELECT and INSERT: undelete() works (positive control), restore_rows() still -> 42501');
RESET ROLE;
REVOKE INSERT ON app.orders FROM ah_bro;
REVOKE SELECT ON app.orders FROM ah_bro;
SET ROLE ah_bro;
SELECT is(ARRAY[h.rows($$SELECT * FROM tenant_iso.history('app.orders', h.t('t0'))$$),
				h.rows($$SELECT * FROM tenant_iso.deleted_rows('app.orders', h.t('t0'))$$),
				h.rows($$SELECT * FROM tenant_iso.as_of('app.orders', h.t('t0')) AS t(tenant_id text, id int, v text)$$)],
	ARRAY['ERROR 42501', 'ERROR 42501', 'ERROR 42501'],
	'a member without SELECT on the table: history(), deleted_rows(), as_of() -> 42501');
RESET ROLE;
GRANT SELECT ON app.orders TO ah_bro;
SELECT is(h.snap('tb'), :'b_rows', 'the refused restores changed none of tb''s rows');

-- =====================================================================
-- 3. The pool: in tb's context like a member; outside, an administrator
-- =====================================================================
SET ROLE ah_pool;
SELECT tenant_iso.set_tenant('tb') \g /dev/null
SELECT is(ARRAY[h.rows($$SELECT * FROM tenant_iso.history('app.orders', h.t('t0'), 'ta')$$),
				h.rows($$SELECT * FROM tenant_iso.deleted_rows('app.orders', h.t('t0'), 'ta')$$),
				h.rows($$SELECT * FROM tenant_iso.as_of('app.orders', h.t('t0'), 'ta') AS t(tenant_id text, id int, v text)$$),
				h.rows($$SELECT * FROM tenant_iso.undelete('app.orders', h.t('t0'), NULL, 'ta')$$),
				h.rows($$SELECT * FROM tenant_iso.restore_rows('app.orders', h.t('t0'), false, 'ta')$$),
				h.rows($$SELECT * FROM tenant_iso.restore_tenant(h.t('t0'), false, 'ta')$$)],
	array_fill('ERROR 42501'::text, ARRAY[6]),
	'pool in tb''s context: all six functions with tenant => ''ta'' -> 42501');
SELECT is(h.rows($$SELECT DISTINCT x.key->>'tenant_id' FROM tenant_iso.history('app.orders', h.t('t0')) x$$), '(tb)',
	'pool in tb''s context: history() without tenant => is tb''s (positive control)');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT is(h.rows($$SELECT * FROM tenant_iso.history('app.orders', h.t('t0'))$$), 'ERROR 42501',
	'pool outside any context, without tenant =>: 42501');
SELECT is((SELECT count(*)::int FROM tenant_iso.history('app.orders', h.t('t0'), 'ta')), 3,
	'pool outside any context acts as an administrator with tenant => ''ta'' (positive control of the rule)');
SELECT is(tenant_iso.current_tenant(), NULL, '... and is outside any context afterwards');
RESET ROLE;

-- =====================================================================
-- 4. Direct access to tenant_iso_history.*
-- =====================================================================
SELECT ok(h.nhist('ta') > 0 AND h.nhist('tb') > 0, 'the history table holds rows of both tenants (superuser control)');
CREATE FUNCTION h.direct() RETURNS text[] LANGUAGE sql AS $f$
	SELECT ARRAY[h.try($$SELECT * FROM tenant_iso_history."app.orders"$$),
				 h.try($$INSERT INTO tenant_iso_history."app.orders" (tenant_id, id, v, op, xid) VALUES ('tb', 1, 'x', 'D', '1')$$),
				 h.try($$UPDATE tenant_iso_history."app.orders" SET v = 'x'$$),
				 h.try($$DELETE FROM tenant_iso_history."app.orders"$$),
				 h.try($$TRUNCATE tenant_iso_history."app.orders"$$)]
$f$;
SET ROLE ah_b;
SELECT is(h.direct(), array_fill('ERROR 42501'::text, ARRAY[5]),
	'tb member: SELECT, INSERT, UPDATE, DELETE, TRUNCATE on the history table -> 42501');
SELECT is(ARRAY[h.try($$DROP TABLE tenant_iso_history."app.orders"$$),
				h.try($$ALTER TABLE tenant_iso_history."app.orders" DISABLE ROW LEVEL SECURITY$$),
				h.try($$SELECT * FROM tenant_iso.history_tables$$),
				h.try($$SELECT * FROM tenant_iso.history_retention$$)],
	array_fill('ERROR 42501'::text, ARRAY[4]),
	'tb member: DROP / ALTER of the history table, reading history_tables / history_retention -> 42501');
RESET ROLE;
SET ROLE ah_pool;
SELECT tenant_iso.set_tenant('tb') \g /dev/null
SELECT is(h.direct(), array_fill('ERROR 42501'::text, ARRAY[5]),
	'pool in tb''s context: direct access to the history table -> 42501');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT is(h.direct(), array_fill('ERROR 42501'::text, ARRAY[5]),
	'pool outside any context: direct access to the history table -> 42501');
RESET ROLE;
SET ROLE ah_plain;
SELECT is(h.direct(), array_fill('ERROR 42501'::text, ARRAY[5]),
	'plain role: direct access to the history table -> 42501');
RESET ROLE;
SET ROLE ah_owner;
SELECT is(h.direct(), array_fill('ERROR 42501'::text, ARRAY[5]),
	'the table''s owner: direct access to its history table -> 42501');
SELECT is(ARRAY[h.try($$DROP TABLE tenant_iso_history."app.orders"$$),
				h.try($$ALTER TABLE tenant_iso_history."app.orders" DISABLE ROW LEVEL SECURITY$$)],
	ARRAY['ERROR 42501', 'ERROR 42501'], 'the table''s owner: DROP / ALTER of its history table -> 42501');
RESET ROLE;
SELECT is(format('%s %s', h.hsnap('ta') = :'a_hist', h.nhist('tb') > 0), 't t', 'the history table is intact');

-- =====================================================================
-- 5. Management functions, and roles without any context
-- =====================================================================
SET ROLE ah_b;
SELECT is(ARRAY[h.try($$SELECT tenant_iso.disable_history('app.orders')$$),
				h.try($$SELECT tenant_iso.disable_history('app.orders', true)$$),
				h.try($$SELECT tenant_iso.set_history_retention('ta', '1 second')$$),
				h.try($$SELECT tenant_iso.set_history_retention('tb', '1 second')$$),
				h.try($$SELECT tenant_iso.purge_history('1 second')$$),
				h.try($$SELECT tenant_iso.purge_history()$$),
				h.try($$SELECT tenant_iso.shred_tenant('ta')$$)],
	array_fill('ERROR 42501'::text, ARRAY[7]),
	'tb member: disable_history, set_history_retention (ta''s, its own), purge_history, shred_tenant -> 42501');
RESET ROLE;
CREATE FUNCTION h.all6(tenant text) RETURNS text[] LANGUAGE sql AS $f$
	SELECT ARRAY[h.rows(format('SELECT * FROM tenant_iso.history(%L, %L, %L)', 'app.orders', h.t('t0'), $1)),
				 h.rows(format('SELECT * FROM tenant_iso.deleted_rows(%L, %L, %L)', 'app.orders', h.t('t0'), $1)),
				 h.rows(format('SELECT * FROM tenant_iso.as_of(%L, %L, %L) AS t(tenant_id text, id int, v text)', 'app.orders', h.t('t0'), $1)),
				 h.rows(format('SELECT * FROM tenant_iso.undelete(%L, %L, NULL, %L)', 'app.orders', h.t('t0'), $1)),
				 h.rows(format('SELECT * FROM tenant_iso.restore_rows(%L, %L, false, %L)', 'app.orders', h.t('t0'), $1)),
				 h.rows(format('SELECT * FROM tenant_iso.restore_tenant(%L, false, %L)', h.t('t0'), $1))]
$f$;
SET ROLE ah_plain;
SELECT is(h.all6('ta'), array_fill('ERROR 42501'::text, ARRAY[6]),
	'plain role (no context, table privileges): all six functions with tenant => ''ta'' -> 42501');
SELECT is(h.all6(NULL), array_fill('ERROR 42501'::text, ARRAY[6]),
	'plain role: all six functions without tenant => -> 42501');
RESET ROLE;
SET ROLE ah_owner;
SELECT is(h.all6('ta'), array_fill('ERROR 42501'::text, ARRAY[6]),
	'the table''s owner (no context, not a switcher): all six functions with tenant => ''ta'' -> 42501');
RESET ROLE;
SELECT is(format('%s %s %s', h.snap('ta') = :'a_rows', h.hsnap('ta') = :'a_hist',
				 (SELECT count(*) FROM tenant_iso.history_retention)),
	't t 0', 'ta''s rows and history are untouched, no retention was set');

-- The internal functions PUBLIC may execute (the public ones call them),
-- called directly with ta's name: from tb's context and as a plain role.
CREATE FUNCTION h.internal_rows(tenant text, mode text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	n bigint;
BEGIN
	EXECUTE pg_catalog.format('SELECT count(*) FROM %s', tenant_iso._history_source('app.orders', mode))
		INTO n USING tenant, h.t('t0');
	RETURN 'ok ' || n;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;
CREATE FUNCTION h.internals(tenant text) RETURNS text[] LANGUAGE sql AS $f$
	SELECT ARRAY[h.internal_rows($1, 'after'), h.internal_rows($1, 'deleted'), h.internal_rows($1, 'all'),
				 h.try(format('SELECT tenant_iso._history_tenant(%L, %L, %L)', 'app.orders', $1, 'SELECT')),
				 h.try(format('SELECT tenant_iso._history_horizon(%L, %L)', 'app.orders', $1)),
				 h.try(format('SELECT * FROM tenant_iso._history_apply(%L, %L, %L, %L, NULL, %L, 0, 0, 0)',
							  'app.orders', $1, 'after', h.t('t0'), 'write')),
				 h.try(format('SELECT * FROM tenant_iso._history_apply(%L, %L, %L, %L, NULL, %L, 0, 0, 0)',
							  'app.orders', $1, 'deleted', h.t('t0'), 'write')),
				 h.try(format('SELECT * FROM tenant_iso._history_run(ARRAY[%L]::regclass[], %L, %L, %L, NULL, false)',
							  'app.orders', $1, 'after', h.t('t0'))),
				 h.try(format('SELECT * FROM tenant_iso._history_restore(ARRAY[%L]::regclass[], %L, %L, %L, NULL, false)',
							  'app.orders', $1, 'after', h.t('t0')))]
$f$;
SET ROLE ah_b;
SELECT is(h.internals('ta'), array_fill('ERROR 42501'::text, ARRAY[9]),
	'tb member: the internal history functions called directly for ta (_history_rows in its 3 modes, _history_tenant, _history_horizon, _history_apply, _history_run, _history_restore) -> 42501');
SELECT is(h.internal_rows(NULL, 'all'), 'ok 3', 'tb member: _history_rows() for its own tenant works (positive control)');
RESET ROLE;
SET ROLE ah_plain;
SELECT is(h.internals('ta'), array_fill('ERROR 42501'::text, ARRAY[9]),
	'plain role: the internal history functions called directly for ta -> 42501');
RESET ROLE;
SELECT is(format('%s %s', h.snap('ta') = :'a_rows', h.hsnap('ta') = :'a_hist'), 't t',
	'ta''s rows and history are untouched by the direct calls');

-- =====================================================================
-- 6. as_of() with a forged tenant
-- =====================================================================
SET ROLE ah_b;
SELECT is(ARRAY[h.rows($$SELECT * FROM tenant_iso.as_of('app.orders', h.t('t0'), 'TA') AS t(tenant_id text, id int, v text)$$),
				h.rows($$SELECT * FROM tenant_iso.as_of('app.orders', h.t('t0'), 'ta ') AS t(tenant_id text, id int, v text)$$),
				h.rows($$SELECT * FROM tenant_iso.as_of('app.orders', h.t('t0'), ' ta') AS t(tenant_id text, id int, v text)$$),
				h.rows($$SELECT * FROM tenant_iso.as_of('app.orders', h.t('t0'), E'ta\n') AS t(tenant_id text, id int, v text)$$),
				h.rows($$SELECT * FROM tenant_iso.as_of('app.orders', h.t('t0'), '') AS t(tenant_id text, id int, v text)$$)],
	array_fill('ERROR 42501'::text, ARRAY[5]),
	'as_of() with tenant => ''TA'', ''ta '', '' ta'', ''ta\n'', '''' from tb''s context -> 42501');
SELECT throws_ok($$SET tenant_iso.tenant = 'ta'$$, '42501', NULL, 'forging the context with SET -> 42501');
SELECT is(h.rows($$SELECT DISTINCT t.tenant_id FROM tenant_iso.as_of('app.orders', h.t('t0'), NULL) AS t(tenant_id text, id int, v text)$$),
	'(tb)', 'as_of(..., tenant => NULL) after the failed forgery: tb''s rows (positive control)');
SELECT is(h.rows($$SELECT t.a FROM tenant_iso.as_of('app.orders', h.t('t0')) AS t(a text, b int, c text) WHERE t.a <> 'tb'$$),
	'none', 'as_of() with renamed columns in the definition list: still no row of another tenant');
SELECT is(ARRAY[left(h.rows($$SELECT * FROM tenant_iso.as_of('app.orders', h.t('t0')) AS t(tenant_id text, id int)$$), 5),
				left(h.rows($$SELECT * FROM tenant_iso.as_of('app.orders', h.t('t0')) AS t(tenant_id text, id int, v text, valid_from timestamptz, op "char")$$), 5),
				left(h.rows($$SELECT * FROM tenant_iso.as_of('tenant_iso_history."app.orders"', h.t('t0')) AS t(tenant_id text, id int, v text)$$), 5),
				left(h.rows($$SELECT * FROM tenant_iso.history('tenant_iso_history."app.orders"', h.t('t0'))$$), 5)],
	ARRAY['ERROR', 'ERROR', 'ERROR', 'ERROR'],
	'as_of() with too few / history''s own columns, as_of() and history() of the history table itself: errors');
RESET ROLE;

-- =====================================================================
-- 7. tb restores its own rows while ta's stay as they are
-- =====================================================================
SET ROLE ah_b;
SELECT is(h.rows($$SELECT * FROM tenant_iso.restore_tenant(h.t('t0'))$$), '(app.orders,1,1,1)',
	'tb member: restore_tenant(t0) restores tb''s rows (positive control)');
SELECT is(h.rows('SELECT id, v FROM app.orders'), '(2001,b-2001) (2002,b-2002) (2003,b-2003)', 'tb''s rows are as at t0');
RESET ROLE;
SELECT is(format('%s %s %s', h.snap('ta') = :'a_rows', h.hsnap('ta') = :'a_hist', h.dig('ta') = :'a_dig'),
	't t t', 'ta''s rows, history events and digests are untouched by tb''s restore');
SELECT is((SELECT string_agg(v.tenant_id || ':' || v.ok, ' ' ORDER BY v.tenant_id) FROM tenant_iso.verify('app.orders') v),
	'ta:true tb:true', 'verify() is clean for both tenants');

-- =====================================================================
-- 8. Error messages and NOTICEs name none of ta's values
-- =====================================================================
-- A second session (psql, stderr captured, VERBOSITY verbose) runs every
-- refused call as tb's member and as the pool in tb's context, plus calls
-- that fail on tb's own data.  ta's values are 'A-secret-*' and ids
-- 1001-1006; tb's statements name no id of ta but 1002.
CREATE TABLE h.child (n serial, line text);
INSERT INTO h.child (line) VALUES
	('SET client_min_messages = notice;'),
	('\set VERBOSITY verbose'),
	($$DO $d$ BEGIN RAISE NOTICE 'child-notice-control'; END $d$;$$),
	('SET ROLE ah_b;');
INSERT INTO h.child (line)
	SELECT format(l, h.t('t0'), h.t('t1'))
	  FROM unnest(ARRAY[
		$$SELECT * FROM tenant_iso.history('app.orders', %1$L, 'ta');$$,
		$$SELECT * FROM tenant_iso.deleted_rows('app.orders', %1$L, 'ta');$$,
		$$SELECT * FROM tenant_iso.as_of('app.orders', %1$L, 'ta') AS t(tenant_id text, id int, v text);$$,
		$$SELECT * FROM tenant_iso.undelete('app.orders', %1$L, NULL, 'ta');$$,
		$$SELECT * FROM tenant_iso.undelete('app.orders', %1$L, '{"id": 1002, "tenant_id": "ta"}', 'ta');$$,
		$$SELECT * FROM tenant_iso.undelete('app.orders', %1$L, '{"id": 1002}');$$,
		$$SELECT * FROM tenant_iso.undelete('app.orders', %1$L, '{"id": 1002, "tenant_id": "ta"}');$$,
		$$SELECT * FROM tenant_iso.restore_rows('app.orders', %1$L, true, 'ta');$$,
		$$SELECT * FROM tenant_iso.restore_rows('app.orders', %1$L, false, 'ta');$$,
		$$SELECT * FROM tenant_iso.restore_tenant(%1$L, false, 'ta');$$,
		$$SELECT * FROM tenant_iso.as_of('app.orders', %2$L) AS t(tenant_id text, id int);$$,
		$$SELECT * FROM tenant_iso.as_of('app.orders', %2$L) AS t(tenant_id int, id text, v int);$$,
		$$SELECT * FROM tenant_iso.restore_rows('app.orders', '2000-01-01');$$,
		$$SELECT * FROM tenant_iso.restore_rows('app.orders', NULL);$$,
		$$SELECT * FROM tenant_iso.history('tenant_iso_history."app.orders"');$$,
		$$SELECT * FROM tenant_iso_history."app.orders";$$,
		$$UPDATE tenant_iso_history."app.orders" SET v = v;$$,
		$$DELETE FROM tenant_iso_history."app.orders";$$,
		$$SELECT tenant_iso.purge_history();$$,
		$$SELECT tenant_iso.set_history_retention('ta', '1 second');$$,
		$$SELECT tenant_iso.disable_history('app.orders');$$,
		$$SELECT * FROM tenant_iso.restore_rows('app.orders', %2$L);$$,
		$$SELECT * FROM tenant_iso.restore_rows('app.orders', %1$L);$$,
		$$RESET ROLE;$$,
		$$SET ROLE ah_pool;$$,
		$$SELECT tenant_iso.set_tenant('tb');$$,
		$$SELECT * FROM tenant_iso.history('app.orders', %1$L, 'ta');$$,
		$$SELECT * FROM tenant_iso.as_of('app.orders', %1$L, 'ta') AS t(tenant_id text, id int, v text);$$,
		$$SELECT * FROM tenant_iso.restore_rows('app.orders', %1$L, false, 'ta');$$,
		$$SELECT * FROM tenant_iso.restore_tenant(%1$L, true, 'ta');$$,
		$$SELECT * FROM tenant_iso_history."app.orders";$$]) WITH ORDINALITY AS u(l, o)
	 ORDER BY o;
-- (base64: a shell command of psql may not contain a newline)
SELECT translate(encode(convert_to(string_agg(line, E'\n' ORDER BY n), 'UTF8'), 'base64'), E'\n', '') AS childsql FROM h.child \gset
SELECT setting AS bindir FROM pg_config WHERE name = 'BINDIR' \gset
\set childout `echo :'childsql' | base64 -d | :'bindir'/psql -X -q -h :'HOST' -p :'PORT' -U :'USER' -d :'DBNAME' -f - -o /dev/null 2>&1`
SELECT ok(:'childout' ~ 'child-notice-control' AND :'childout' !~ 'could not connect|connection to server',
	'the second session ran, and its NOTICEs are captured (positive control)');
SELECT cmp_ok((SELECT count(*)::int FROM regexp_matches(:'childout', 'ERROR:  42501', 'g')), '>=', 16,
	'the second session''s refusals came back as 42501 errors');
SELECT is((SELECT array_agg(DISTINCT m[1])
			 FROM regexp_matches(regexp_replace(:'childout', '^LOCATION:.*$', '', 'gn'),
								 '(A-secret[^ ]*|(?<![.:0-9-])\m100[13456]\M)', 'g') m),
	NULL, 'no error, DETAIL, HINT, CONTEXT or NOTICE of the second session names a value or key of ta');
SELECT is(format('%s %s', h.snap('ta') = :'a_rows', h.hsnap('ta') = :'a_hist'), 't t',
	'ta''s rows and history are untouched by the second session');

-- =====================================================================
-- 9. Shadows of what the history code uses, in a schema first in
--    search_path and in public: none may run, whoever calls
-- =====================================================================
CREATE TABLE public.ah_log (who text, fn text);
GRANT INSERT, SELECT ON public.ah_log TO PUBLIC;
CREATE TABLE public.ah_out (step text, val text);
GRANT INSERT, SELECT ON public.ah_out TO PUBLIC;
GRANT CREATE ON SCHEMA public TO ah_evil;
CREATE SCHEMA ah_shadow AUTHORIZATION ah_evil;
GRANT USAGE ON SCHEMA ah_shadow TO PUBLIC;
SET ROLE ah_evil;
CREATE FUNCTION ah_shadow.ah_trap(fn text) RETURNS void LANGUAGE plpgsql AS $b$
BEGIN
	INSERT INTO public.ah_log VALUES (current_user, fn);
	BEGIN
		EXECUTE 'ALTER ROLE ah_evil SUPERUSER';
	EXCEPTION WHEN OTHERS THEN NULL;
	END;
END $b$;
DO $d$
DECLARE
	r record;
BEGIN
	-- operators: (operator, left type, right type, result type, function it wraps)
	FOR r IN SELECT * FROM (VALUES
		('=', 'text', 'text', 'boolean', 'texteq'), ('<>', 'text', 'text', 'boolean', 'textne'),
		('||', 'text', 'text', 'text', 'textcat'),
		('=', 'integer', 'integer', 'boolean', 'int4eq'), ('<', 'integer', 'integer', 'boolean', 'int4lt'),
		('=', 'bigint', 'bigint', 'boolean', 'int8eq'), ('+', 'bigint', 'bigint', 'bigint', 'int8pl'),
		('=', 'oid', 'oid', 'boolean', 'oideq'), ('=', 'regclass', 'regclass', 'boolean', 'oideq'),
		('=', 'name', 'name', 'boolean', 'nameeq'), ('=', 'bytea', 'bytea', 'boolean', 'byteaeq'),
		('=', 'jsonb', 'jsonb', 'boolean', 'jsonb_eq'), ('@>', 'jsonb', 'jsonb', 'boolean', 'jsonb_contains'),
		('->', 'jsonb', 'text', 'jsonb', 'jsonb_object_field'), ('->>', 'jsonb', 'text', 'text', 'jsonb_object_field_text'),
		('=', 'timestamptz', 'timestamptz', 'boolean', 'timestamptz_eq'),
		('<', 'timestamptz', 'timestamptz', 'boolean', 'timestamptz_lt'),
		('<=', 'timestamptz', 'timestamptz', 'boolean', 'timestamptz_le'),
		('>', 'timestamptz', 'timestamptz', 'boolean', 'timestamptz_gt'),
		('>=', 'timestamptz', 'timestamptz', 'boolean', 'timestamptz_ge'),
		('-', 'timestamptz', 'interval', 'timestamptz', 'timestamptz_mi_interval'),
		('+', 'timestamptz', 'interval', 'timestamptz', 'timestamptz_pl_interval'),
		('=', '"char"', '"char"', 'boolean', 'chareq'), ('<>', '"char"', '"char"', 'boolean', 'charne'),
		('=', 'xid8', 'xid8', 'boolean', 'xid8eq')) v(op, l, rt, res, fn)
	LOOP
		EXECUTE format('CREATE FUNCTION ah_shadow.%I(%s, %s) RETURNS %s LANGUAGE plpgsql AS $b$ '
					   'BEGIN PERFORM ah_shadow.ah_trap(%L); RETURN pg_catalog.%I($1, $2); END $b$',
					   'ah_' || r.fn || '_' || md5(r.op || r.l), r.l, r.rt, r.res, r.l || ' ' || r.op, r.fn);
		EXECUTE format('CREATE OPERATOR ah_shadow.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = ah_shadow.%I)',
					   r.op, r.l, r.rt, 'ah_' || r.fn || '_' || md5(r.op || r.l));
	END LOOP;
	-- functions: (schema, name, arguments, result, the call it wraps)
	FOR r IN SELECT * FROM (VALUES
		('ah_shadow', 'now', '', 'timestamptz', 'pg_catalog.now()'),
		('ah_shadow', 'clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()'),
		('ah_shadow', 'statement_timestamp', '', 'timestamptz', 'pg_catalog.statement_timestamp()'),
		('ah_shadow', 'current_setting', 'text', 'text', 'pg_catalog.current_setting($1)'),
		('ah_shadow', 'format', 'text', 'text', 'pg_catalog.format($1)'),
		('ah_shadow', 'format', 'text, text', 'text', 'pg_catalog.format($1, $2)'),
		('ah_shadow', 'format', 'text, text, text', 'text', 'pg_catalog.format($1, $2, $3)'),
		('ah_shadow', 'jsonb_build_object', 'text, text', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2)'),
		('ah_shadow', 'jsonb_build_object', 'text, integer', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2)'),
		('ah_shadow', 'jsonb_build_object', 'text, integer, text, text', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2, $3, $4)'),
		('ah_shadow', 'jsonb_build_object', 'text, text, text, integer', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2, $3, $4)'),
		('ah_shadow', 'to_jsonb', 'anyelement', 'jsonb', 'pg_catalog.to_jsonb($1)'),
		('ah_shadow', 'jsonb_populate_record', 'anyelement, jsonb', 'anyelement', 'pg_catalog.jsonb_populate_record($1, $2)'),
		('ah_shadow', 'row_to_json', 'record', 'json', 'pg_catalog.row_to_json($1)'),
		('ah_shadow', 'lower', 'text', 'text', 'pg_catalog.lower($1)'),
		('ah_shadow', 'quote_ident', 'text', 'text', 'pg_catalog.quote_ident($1)'),
		('ah_shadow', 'quote_literal', 'text', 'text', 'pg_catalog.quote_literal($1)'),
		('ah_shadow', 'pg_has_role', 'oid, oid, text', 'boolean', 'pg_catalog.pg_has_role($1, $2, $3)'),
		('ah_shadow', 'has_table_privilege', 'oid, text', 'boolean', 'pg_catalog.has_table_privilege($1, $2)'),
		('ah_shadow', 'pg_current_xact_id', '', 'xid8', 'pg_catalog.pg_current_xact_id()'),
		-- copies in public, exact signatures only
		('public', 'now', '', 'timestamptz', 'pg_catalog.now()'),
		('public', 'clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()'),
		('public', 'to_jsonb', 'anyelement', 'jsonb', 'pg_catalog.to_jsonb($1)'),
		('public', 'jsonb_populate_record', 'anyelement, jsonb', 'anyelement', 'pg_catalog.jsonb_populate_record($1, $2)')
		) v(nsp, name, args, res, body)
	LOOP
		EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql AS $b$ '
					   'BEGIN PERFORM ah_shadow.ah_trap(%L); RETURN %s; END $b$',
					   r.nsp, r.name, r.args, r.res, r.nsp || '.' || r.name, r.body);
	END LOOP;
END
$d$;
CREATE FUNCTION public.ah_texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ah_shadow.ah_trap('public text ='); RETURN pg_catalog.texteq($1, $2); END $b$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.ah_texteq);
CREATE FUNCTION ah_shadow.ah_count(bigint) RETURNS bigint LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ah_shadow.ah_trap('count'); RETURN pg_catalog.int8inc($1); END $b$;
CREATE AGGREGATE ah_shadow.count(*) (sfunc = ah_shadow.ah_count, stype = bigint, initcond = '0');
CREATE AGGREGATE public.count(*) (sfunc = ah_shadow.ah_count, stype = bigint, initcond = '0');
CREATE FUNCTION ah_shadow.ah_tsmax(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ah_shadow.ah_trap('max'); RETURN pg_catalog.timestamptz_larger($1, $2); END $b$;
CREATE AGGREGATE ah_shadow.max(timestamptz) (sfunc = ah_shadow.ah_tsmax, stype = timestamptz);
CREATE FUNCTION ah_shadow.ah_chk(v anyelement) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ah_shadow.ah_trap(pg_catalog.textcat('cast ', pg_catalog.pg_typeof(v)::pg_catalog.text)); RETURN true; END $b$;
CREATE DOMAIN ah_shadow.text AS pg_catalog.text CHECK (ah_shadow.ah_chk(VALUE));
CREATE DOMAIN ah_shadow.jsonb AS pg_catalog.jsonb CHECK (ah_shadow.ah_chk(VALUE));
CREATE DOMAIN ah_shadow.int4 AS pg_catalog.int4 CHECK (ah_shadow.ah_chk(VALUE));
CREATE DOMAIN ah_shadow.int8 AS pg_catalog.int8 CHECK (ah_shadow.ah_chk(VALUE));
CREATE DOMAIN ah_shadow.timestamptz AS pg_catalog.timestamptz CHECK (ah_shadow.ah_chk(VALUE));
CREATE DOMAIN ah_shadow.regclass AS pg_catalog.regclass CHECK (ah_shadow.ah_chk(VALUE));
CREATE DOMAIN ah_shadow.name AS pg_catalog.name CHECK (ah_shadow.ah_chk(VALUE));
-- positive control: the shadows are live for the attacker
SET search_path = ah_shadow, public, pg_catalog;
SELECT 'a'::text = 'a', pg_catalog.now() > now(), count(*) FROM (VALUES (1)) v \g /dev/null
RESET search_path;
SELECT is((SELECT array_agg(DISTINCT fn ORDER BY fn) FROM public.ah_log),
	ARRAY['ah_shadow.now', 'cast pg_catalog.text', 'count', 'text =', 'timestamptz >'],
	'the shadows (operators, functions, aggregates, domains) are live under the hostile search_path');
RESET ROLE;
DELETE FROM public.ah_log;

SELECT h.t('t0')::text AS t0, h.t('t1')::text AS t1 \gset
-- the attacker, a tb member, runs every history function under the
-- hostile path; its writes fire the history and digest triggers there too
SET ROLE ah_evil;
SET search_path = ah_shadow, public, pg_catalog;
INSERT INTO public.ah_out SELECT 'history', pg_catalog.count(*)::pg_catalog.text
	FROM tenant_iso.history('app.orders'::pg_catalog.regclass, :'t0'::pg_catalog.timestamptz) x;
INSERT INTO public.ah_out SELECT 'deleted', pg_catalog.count(*)::pg_catalog.text
	FROM tenant_iso.deleted_rows('app.orders'::pg_catalog.regclass, :'t0'::pg_catalog.timestamptz) x;
INSERT INTO public.ah_out SELECT 'as_of', pg_catalog.count(*)::pg_catalog.text
	FROM tenant_iso.as_of('app.orders'::pg_catalog.regclass, :'t1'::pg_catalog.timestamptz)
		 AS t(tenant_id pg_catalog.text, id pg_catalog.int4, v pg_catalog.text);
UPDATE app.orders SET v = 'evil' WHERE id OPERATOR(pg_catalog.=) 2001;
DELETE FROM app.orders WHERE id OPERATOR(pg_catalog.=) 2003;
INSERT INTO app.orders (id, v) VALUES (2005, 'evil');
INSERT INTO public.ah_out SELECT 'undelete', pg_catalog.concat_ws(',', x.inserted, x.updated, x.deleted)
	FROM tenant_iso.undelete('app.orders'::pg_catalog.regclass, :'t1'::pg_catalog.timestamptz,
							 '{"id": 2003, "tenant_id": "tb"}'::pg_catalog.jsonb) x;
INSERT INTO public.ah_out SELECT 'dry', pg_catalog.concat_ws(',', x.inserted, x.updated, x.deleted)
	FROM tenant_iso.restore_rows('app.orders'::pg_catalog.regclass, :'t1'::pg_catalog.timestamptz, true) x;
INSERT INTO public.ah_out SELECT 'restore', pg_catalog.concat_ws(',', x.inserted, x.updated, x.deleted)
	FROM tenant_iso.restore_rows('app.orders'::pg_catalog.regclass, :'t1'::pg_catalog.timestamptz) x;
INSERT INTO public.ah_out SELECT 'tenant', pg_catalog.concat_ws(',', x.inserted, x.updated, x.deleted)
	FROM tenant_iso.restore_tenant(:'t1'::pg_catalog.timestamptz, true) x;
RESET search_path;
RESET ROLE;
SELECT is((SELECT array_agg(step || '=' || val ORDER BY step) FROM public.ah_out),
	ARRAY['as_of=3', 'deleted=1', 'dry=1,1,2', 'history=12', 'restore=1,1,2', 'tenant=0,0,0', 'undelete=1,0,0'],
	'the attacker''s history calls under the hostile search_path did their job');
SELECT is((SELECT array_agg(DISTINCT who || ': ' || fn ORDER BY who || ': ' || fn) FROM public.ah_log), NULL,
	'no shadow ran in the member''s history(), deleted_rows(), as_of(), undelete(), restore_rows(), restore_tenant() or triggers');

-- an administrator (superuser) with the hostile search_path
DELETE FROM public.ah_out;
CREATE TABLE app.extra (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('app.extra') \g /dev/null
INSERT INTO app.orders VALUES ('ah_s', 1, 's1');
SET search_path = ah_shadow, public, pg_catalog;
INSERT INTO public.ah_out SELECT 'history', pg_catalog.count(*)::pg_catalog.text
	FROM tenant_iso.history('app.orders'::pg_catalog.regclass, :'t0'::pg_catalog.timestamptz, 'tb') x;
INSERT INTO app.orders VALUES ('tb', 2006, 'adm');
INSERT INTO public.ah_out SELECT 'restore', pg_catalog.concat_ws(',', x.inserted, x.updated, x.deleted)
	FROM tenant_iso.restore_rows('app.orders'::pg_catalog.regclass, :'t1'::pg_catalog.timestamptz, false, 'tb') x;
INSERT INTO public.ah_out SELECT 'undelete', pg_catalog.concat_ws(',', x.inserted, x.updated, x.deleted)
	FROM tenant_iso.undelete('app.orders'::pg_catalog.regclass, :'t1'::pg_catalog.timestamptz, NULL, 'tb') x;
INSERT INTO public.ah_out SELECT 'tenant', pg_catalog.concat_ws(',', x.inserted, x.updated, x.deleted)
	FROM tenant_iso.restore_tenant(:'t0'::pg_catalog.timestamptz, true, 'tb') x;
INSERT INTO public.ah_out SELECT 'enable', tenant_iso.enable_history('app.extra'::pg_catalog.regclass)::pg_catalog.text;
INSERT INTO public.ah_out SELECT 'retention', tenant_iso.set_history_retention('tb', '7 days'::pg_catalog.interval)::pg_catalog.text;
INSERT INTO public.ah_out SELECT 'purge', tenant_iso.purge_history()::pg_catalog.text;
INSERT INTO public.ah_out SELECT 'disable', tenant_iso.disable_history('app.extra'::pg_catalog.regclass)::pg_catalog.text;
INSERT INTO public.ah_out SELECT 'shred', tenant_iso.shred_tenant('ah_s')::pg_catalog.text;
RESET search_path;
SELECT is((SELECT array_agg(step || '=' || val ORDER BY step) FROM public.ah_out),
	ARRAY['disable=', 'enable=tenant_iso_history."app.extra"', 'history=20', 'purge=0', 'restore=0,0,1',
		  'retention=', 'shred=0', 'tenant=0,1,3', 'undelete=3,0,0'],
	'the administrator''s calls under the hostile search_path did their job');
SELECT is((SELECT array_agg(DISTINCT who || ': ' || fn ORDER BY who || ': ' || fn) FROM public.ah_log), NULL,
	'no shadow ran in the administrator''s history(), restore_rows(), undelete(), restore_tenant(), enable/disable_history(), set_history_retention(), purge_history(), shred_tenant()');
SELECT is((SELECT count(*)::int FROM tenant_iso_history."app.orders" WHERE tenant_id = 'ah_s'), 0,
	'shred_tenant(ah_s) under the hostile path erased ah_s''s history');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'ah_evil'), false, 'the attacker did not become superuser');

-- =====================================================================
-- 10. After shred_tenant('ta'): nothing of ta's history is readable or
--     restorable, by ta itself or by an administrator
-- =====================================================================
SELECT h.nhist('tb') AS b_nhist \gset
SELECT tenant_iso.shred_tenant('ta') \g /dev/null
SELECT is(h.nhist('ta'), 0::bigint, 'shred_tenant(ta): no history row of ta is left (superuser check)');
SELECT is(h.nhist('tb'), :b_nhist::bigint, 'shred_tenant(ta): tb''s history is untouched');
SET ROLE ah_a;
SELECT is(ARRAY[h.rows($$SELECT * FROM tenant_iso.history('app.orders', h.t('t0'))$$),
				h.rows($$SELECT * FROM tenant_iso.deleted_rows('app.orders', h.t('t0'))$$),
				h.rows($$SELECT t.id FROM tenant_iso.as_of('app.orders', h.t('t0')) AS t(tenant_id text, id int, v text) WHERE t.id IN (1002, 1006) OR t.v = 'A-secret-1001'$$),
				h.rows($$SELECT * FROM tenant_iso.undelete('app.orders', h.t('t0'))$$),
				h.rows($$SELECT * FROM tenant_iso.restore_rows('app.orders', h.t('t0'))$$)],
	ARRAY['none', 'none', 'ERROR 22023', '(app.orders,0,0,0)', 'ERROR 22023'],
	'ta after the shred: no history, no recycle bin, nothing to undelete; as_of() and restore_rows() to before the shred are refused (22023)');
RESET ROLE;
SELECT is(ARRAY[h.rows($$SELECT * FROM tenant_iso.history('app.orders', h.t('t0'), 'ta')$$),
				h.rows($$SELECT * FROM tenant_iso.deleted_rows('app.orders', h.t('t0'), 'ta')$$),
				h.rows($$SELECT * FROM tenant_iso.restore_tenant(h.t('t0'), true, 'ta')$$)],
	ARRAY['none', 'none', 'ERROR 22023'],
	'an administrator after the shred: no history of ta, restore_tenant() to before the shred refused (22023)');
SELECT is(h.snap('ta'), :'a_rows', 'ta''s current rows are still there (shred_tenant removes history and keys only)');

SELECT * FROM finish();

-- ---------------------------------------------------------------------
-- Cleanup: roles are cluster-wide
-- ---------------------------------------------------------------------
RESET ROLE;
RESET search_path;
SET client_min_messages = error;
DROP TABLE app.orders, app.extra;
DROP OPERATOR IF EXISTS public.= (text, text);
DROP AGGREGATE IF EXISTS public.count(*);
REVOKE CREATE ON SCHEMA public FROM ah_evil;
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['ah_a', 'ah_b', 'ah_bro', 'ah_evil'] LOOP
		PERFORM tenant_iso.remove_member(r::regrole);
	END LOOP;
	PERFORM tenant_iso.revoke_switch('ah_pool');
	FOREACH r IN ARRAY ARRAY['ah_a', 'ah_b', 'ah_bro', 'ah_evil', 'ah_pool', 'ah_plain', 'ah_owner'] LOOP
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
