-- test/pgtap/local_context.sql: transaction-scoped tenant context.
--
-- set_tenant(id, local => true) behaves like SET LOCAL: it lasts until the
-- end of the transaction, is undone by ROLLBACK and ROLLBACK TO SAVEPOINT,
-- and kept through RELEASE.  Session-level set_tenant inside a transaction
-- behaves like SET (undone by rollback).  reset_tenant() leaves the context.
--
-- Values observed inside transactions are captured with \gset and asserted
-- after the transaction ends, so that no test result is rolled back.
--
-- Roles (cluster-wide) carry the prefix loc_ and are dropped at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DROP ROLE IF EXISTS loc_pool, loc_m;
CREATE ROLE loc_pool;   -- switcher
CREATE ROLE loc_m;      -- member of acme

SELECT tenant_iso.create_tenant(t) FROM unnest(ARRAY['acme', 'beta', 'gamma']) t \g /dev/null
SELECT tenant_iso.add_member('loc_m', 'acme') \g /dev/null
SELECT tenant_iso.grant_switch('loc_pool') \g /dev/null

CREATE TABLE public.loc_data (tenant_id text NOT NULL, v int NOT NULL);
INSERT INTO public.loc_data VALUES ('acme', 1), ('beta', 2), ('beta', 3), ('gamma', 4);
SELECT tenant_iso.protect('public.loc_data') \g /dev/null
GRANT SELECT, INSERT ON public.loc_data TO loc_pool, loc_m;

CREATE SCHEMA loc_s;
GRANT USAGE ON SCHEMA loc_s TO PUBLIC;
-- the current tenant, '-' for none (psql variables cannot hold NULL)
CREATE FUNCTION loc_s.ctx() RETURNS text LANGUAGE sql STABLE AS
	$$ SELECT coalesce(tenant_iso.current_tenant(), '-') $$;
-- which tenants' rows the current role sees
CREATE FUNCTION loc_s.seen() RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce(string_agg(tenant_id || ':' || n, ',' ORDER BY tenant_id), '')
	  FROM (SELECT tenant_id, count(*) n FROM public.loc_data GROUP BY tenant_id) s $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA loc_s TO PUBLIC;

SELECT plan(55);

SET ROLE loc_pool;

-- ===================================================================
-- 1. Local context and the end of the transaction
-- ===================================================================
SELECT tenant_iso.set_tenant('acme', true) \g /dev/null
SELECT is(loc_s.ctx(), '-', 'autocommit: a local set_tenant is gone by the next statement');

BEGIN;
SELECT tenant_iso.set_tenant('acme', local => true) \g /dev/null
SELECT loc_s.ctx() AS c1, loc_s.seen() AS s1 \gset
COMMIT;
SELECT is(:'c1'::text, 'acme', 'local set_tenant: in acme inside the transaction');
SELECT is(:'s1'::text, 'acme:1', 'local set_tenant: sees acme rows inside the transaction');
SELECT is(loc_s.ctx(), '-', 'local set_tenant: gone after COMMIT');
SELECT throws_ok($$SELECT count(*) FROM public.loc_data$$, '42501', 'no tenant context',
	'local set_tenant: after COMMIT no protected rows');

BEGIN;
SELECT tenant_iso.set_tenant('acme', local => true) \g /dev/null
SELECT loc_s.ctx() AS c2 \gset
ROLLBACK;
SELECT is(:'c2'::text, 'acme', 'local set_tenant before ROLLBACK: in acme');
SELECT is(loc_s.ctx(), '-', 'local set_tenant: gone after ROLLBACK');

-- a local context over a session context
SELECT tenant_iso.set_tenant('acme') \g /dev/null
BEGIN;
SELECT tenant_iso.set_tenant('beta', local => true) \g /dev/null
SELECT loc_s.ctx() AS c3, loc_s.seen() AS s3 \gset
COMMIT;
SELECT is(:'c3'::text, 'beta', 'session acme + local beta: beta inside the transaction');
SELECT is(:'s3'::text, 'beta:2', '... with beta rows');
SELECT is(loc_s.ctx(), 'acme', 'session acme + local beta: acme again after COMMIT');
SELECT is(loc_s.seen(), 'acme:1', '... with acme rows');

BEGIN;
SELECT tenant_iso.set_tenant('beta', local => true) \g /dev/null
ROLLBACK;
SELECT is(loc_s.ctx(), 'acme', 'session acme + local beta: acme again after ROLLBACK');

-- a row inserted in a local context gets that tenant
BEGIN;
SELECT tenant_iso.set_tenant('gamma', local => true) \g /dev/null
INSERT INTO public.loc_data (v) VALUES (40);
COMMIT;
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT is((SELECT tenant_id FROM public.loc_data WHERE v = 40), 'gamma',
	'a row inserted under a local context gets that tenant (column default)');
SET ROLE loc_pool;

-- ===================================================================
-- 2. Savepoints
-- ===================================================================
BEGIN;
SELECT tenant_iso.set_tenant('acme', local => true) \g /dev/null
SAVEPOINT s;
SELECT tenant_iso.set_tenant('beta', local => true) \g /dev/null
SELECT loc_s.ctx() AS c4a \gset
ROLLBACK TO SAVEPOINT s;
SELECT loc_s.ctx() AS c4b, loc_s.seen() AS s4b \gset
COMMIT;
SELECT is(:'c4a'::text, 'beta', 'savepoint: local beta after the savepoint');
SELECT is(:'c4b'::text, 'acme', 'savepoint: ROLLBACK TO SAVEPOINT restores local acme');
SELECT is(:'s4b'::text, 'acme:1', '... and its rows');
SELECT is(loc_s.ctx(), '-', 'savepoint: nothing left after COMMIT');

BEGIN;
SELECT tenant_iso.set_tenant('acme', local => true) \g /dev/null
SAVEPOINT s;
SELECT tenant_iso.set_tenant('beta', local => true) \g /dev/null
RELEASE SAVEPOINT s;
SELECT loc_s.ctx() AS c5 \gset
COMMIT;
SELECT is(:'c5'::text, 'beta', 'savepoint: RELEASE keeps local beta');
SELECT is(loc_s.ctx(), '-', 'savepoint: nothing left after COMMIT');

BEGIN;
SAVEPOINT s;
SELECT tenant_iso.set_tenant('beta', local => true) \g /dev/null
ROLLBACK TO SAVEPOINT s;
SELECT loc_s.ctx() AS c6 \gset
COMMIT;
SELECT is(:'c6'::text, '-', 'savepoint: a local context set only after the savepoint is gone after ROLLBACK TO');

-- nested savepoints
BEGIN;
SELECT tenant_iso.set_tenant('acme', local => true) \g /dev/null
SAVEPOINT a;
SELECT tenant_iso.set_tenant('beta', local => true) \g /dev/null
SAVEPOINT b;
SELECT tenant_iso.set_tenant('gamma', local => true) \g /dev/null
SELECT loc_s.ctx() AS n1 \gset
ROLLBACK TO SAVEPOINT b;
SELECT loc_s.ctx() AS n2 \gset
ROLLBACK TO SAVEPOINT a;
SELECT loc_s.ctx() AS n3 \gset
SAVEPOINT c;
SELECT tenant_iso.set_tenant('gamma', local => true) \g /dev/null
SAVEPOINT d;
SELECT tenant_iso.set_tenant('beta', local => true) \g /dev/null
RELEASE SAVEPOINT d;
SELECT loc_s.ctx() AS n4 \gset
RELEASE SAVEPOINT c;
SELECT loc_s.ctx() AS n5, loc_s.seen() AS ns5 \gset
COMMIT;
SELECT is(:'n1'::text, 'gamma', 'nested: gamma at the innermost level');
SELECT is(:'n2'::text, 'beta', 'nested: ROLLBACK TO b gives beta');
SELECT is(:'n3'::text, 'acme', 'nested: ROLLBACK TO a gives acme');
SELECT is(:'n4'::text, 'beta', 'nested: RELEASE d keeps beta');
SELECT is(:'n5'::text, 'beta', 'nested: RELEASE c keeps beta');
SELECT is(:'ns5'::text, 'beta:2', 'nested: and the rows are beta''s');
SELECT is(loc_s.ctx(), '-', 'nested: nothing left after COMMIT');

-- local context set in a PL/pgSQL block lasts to the end of the transaction,
-- unless the block's subtransaction is rolled back
BEGIN;
DO $$ BEGIN PERFORM tenant_iso.set_tenant('beta', true); END $$;
SELECT loc_s.ctx() AS d1 \gset
DO $$
BEGIN
	PERFORM tenant_iso.set_tenant('gamma', true);
	RAISE EXCEPTION 'boom';
EXCEPTION WHEN raise_exception THEN
	NULL;
END $$;
SELECT loc_s.ctx() AS d2 \gset
COMMIT;
SELECT is(:'d1'::text, 'beta', 'a local set_tenant in a DO block outlives the block');
SELECT is(:'d2'::text, 'beta', 'a local set_tenant in a block that raised and caught is undone');
SELECT is(loc_s.ctx(), '-', '... and nothing is left after COMMIT');

-- ===================================================================
-- 3. Session-level set_tenant inside transactions
-- ===================================================================
BEGIN;
SELECT tenant_iso.set_tenant('acme') \g /dev/null
COMMIT;
SELECT is(loc_s.ctx(), 'acme', 'session set_tenant in a committed transaction persists');

BEGIN;
SELECT tenant_iso.set_tenant('beta') \g /dev/null
SELECT loc_s.ctx() AS e1 \gset
ROLLBACK;
SELECT is(:'e1'::text, 'beta', 'session set_tenant(beta) inside the transaction');
SELECT is(loc_s.ctx(), 'acme', 'ROLLBACK undoes a session set_tenant');
SELECT is(loc_s.seen(), 'acme:1', '... rows are acme''s again');

BEGIN;
SAVEPOINT s;
SELECT tenant_iso.set_tenant('beta') \g /dev/null
ROLLBACK TO SAVEPOINT s;
SELECT loc_s.ctx() AS e2 \gset
COMMIT;
SELECT is(:'e2'::text, 'acme', 'ROLLBACK TO SAVEPOINT undoes a session set_tenant');
SELECT is(loc_s.ctx(), 'acme', '... and COMMIT keeps acme');

-- mixing: like SET LOCAL followed by SET, and SET followed by SET LOCAL
BEGIN;
SELECT tenant_iso.set_tenant('beta', true) \g /dev/null
SELECT tenant_iso.set_tenant('gamma') \g /dev/null
SELECT loc_s.ctx() AS m1 \gset
COMMIT;
SELECT is(:'m1'::text, 'gamma', 'local beta then session gamma: gamma inside');
SELECT is(loc_s.ctx(), 'gamma', 'local beta then session gamma: gamma persists after COMMIT (like SET after SET LOCAL)');

BEGIN;
SELECT tenant_iso.set_tenant('acme') \g /dev/null
SELECT tenant_iso.set_tenant('beta', true) \g /dev/null
SELECT loc_s.ctx() AS m2 \gset
COMMIT;
SELECT is(:'m2'::text, 'beta', 'session acme then local beta: beta inside');
SELECT is(loc_s.ctx(), 'acme', 'session acme then local beta: acme after COMMIT (like SET LOCAL after SET)');

SELECT tenant_iso.set_tenant('beta', NULL) \g /dev/null
SELECT is(loc_s.ctx(), 'beta', 'set_tenant(id, local => NULL) acts at session level');

-- ===================================================================
-- 4. reset_tenant
-- ===================================================================
SELECT tenant_iso.set_tenant('acme') \g /dev/null
SELECT lives_ok($$SELECT tenant_iso.reset_tenant()$$, 'reset_tenant()');
SELECT is(loc_s.ctx(), '-', 'reset_tenant clears the session context');
SELECT throws_ok($$SELECT count(*) FROM public.loc_data$$, '42501', 'no tenant context',
	'after reset_tenant no protected rows');
SELECT lives_ok($$SELECT tenant_iso.reset_tenant()$$, 'reset_tenant without a context is a no-op');

SELECT tenant_iso.set_tenant('acme') \g /dev/null
BEGIN;
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT loc_s.ctx() AS r1 \gset
ROLLBACK;
SELECT is(:'r1'::text, '-', 'reset_tenant inside a transaction: no context inside');
SELECT is(loc_s.ctx(), 'acme', 'ROLLBACK undoes reset_tenant');

BEGIN;
SAVEPOINT s;
SELECT tenant_iso.reset_tenant() \g /dev/null
ROLLBACK TO SAVEPOINT s;
SELECT loc_s.ctx() AS r2 \gset
COMMIT;
SELECT is(:'r2'::text, 'acme', 'ROLLBACK TO SAVEPOINT undoes reset_tenant');

BEGIN;
SELECT tenant_iso.set_tenant('beta', true) \g /dev/null
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT loc_s.ctx() AS r3 \gset
COMMIT;
SELECT is(:'r3'::text, '-', 'reset_tenant over a local context: no context inside');
SELECT is(loc_s.ctx(), '-', 'reset_tenant leaves the context for good (also the session one) after COMMIT');

-- ===================================================================
-- 5. Member roles: local set_tenant cannot move them
-- ===================================================================
SET ROLE loc_m;
SELECT lives_ok($$SELECT tenant_iso.set_tenant('acme', true)$$, 'member: local set_tenant(own tenant) is a no-op');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta', true)$$, '42501', NULL,
	'member: local set_tenant(other tenant) -> 42501');
BEGIN;
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT loc_s.ctx() AS mm1, loc_s.seen() AS mms1 \gset
COMMIT;
SELECT is(:'mm1'::text, 'acme', 'member: reset_tenant inside a transaction does not leave acme');
SELECT is(:'mms1'::text, 'acme:1', '... rows are acme''s');
SELECT is(loc_s.ctx(), 'acme', 'member: still acme after COMMIT');

SELECT * FROM finish();

-- ===================================================================
-- cleanup (roles are cluster-wide)
-- ===================================================================
RESET ROLE;
SELECT tenant_iso.remove_member(member) FROM tenant_iso.members \g /dev/null
SELECT tenant_iso.revoke_switch(grantee) FROM tenant_iso.switchers \g /dev/null
DROP SCHEMA loc_s CASCADE;
DROP TABLE public.loc_data;
DROP OWNED BY loc_pool, loc_m;
DROP ROLE loc_pool, loc_m;
