-- test/pgtap/context_forgery.sql: THREATS class 3, context forgery.
--
-- Every route that could set, clear or carry over the tenant context other
-- than set_tenant() / set_tenant_token() / reset_tenant(), tried by a tenant
-- member role (T1) and by a switcher pool role (T2):
--   SET, SET LOCAL, set_config() (local and not), RESET, SET ... TO DEFAULT,
--   RESET ALL, DISCARD ALL, ALTER ROLE/DATABASE/SYSTEM ... SET,
--   CREATE/ALTER FUNCTION ... SET, SET ROLE, SET SESSION AUTHORIZATION,
--   connection options (PGOPTIONS), set_tenant() by members and
--   non-switchers, suspended tenants, savepoint and rollback tricks, and a
--   transaction-scoped context reused by a pooled connection.
--
-- The file runs in one session (pgTAP), acting as the roles with SET ROLE.
-- It is NOT wrapped in a transaction.  Routes that need a real login session
-- (session user = the tenant role), or a second session, use dblink to this
-- same server: DISCARD ALL in particular runs there, because in this session
-- it would also drop pgTAP's temporary tables.  Token routes are in
-- tokens.sql; PGOPTIONS from the shell is in test/cluster/t_pgoptions.sh.
--
-- Roles (cluster-wide) carry the prefix forg_ and are dropped at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;
CREATE EXTENSION IF NOT EXISTS dblink;

DROP ROLE IF EXISTS forg_m, forg_m2, forg_gm, forg_pool, forg_sw, forg_plain;
CREATE ROLE forg_m LOGIN;       -- member of acme
CREATE ROLE forg_m2 LOGIN;      -- member of beta
CREATE ROLE forg_gm LOGIN;      -- member of gamma (suspended during the test)
CREATE ROLE forg_pool LOGIN;    -- switcher (application pool role)
CREATE ROLE forg_plain LOGIN;   -- neither member nor switcher
CREATE ROLE forg_sw;            -- a second switcher role, granted to the member
GRANT forg_plain TO forg_m;     -- a member may SET ROLE to a non-member role
GRANT forg_m2 TO forg_m;        -- ... or to a member of another tenant
GRANT forg_sw TO forg_m;        -- ... or to a switcher role
GRANT forg_m TO forg_pool;      -- the pool may SET ROLE to a member role

SELECT tenant_iso.create_tenant(t) FROM unnest(ARRAY['acme', 'beta', 'gamma', 'delta', 'epsilon']) t \g /dev/null
SELECT tenant_iso.add_member('forg_m', 'acme') \g /dev/null
SELECT tenant_iso.add_member('forg_m2', 'beta') \g /dev/null
SELECT tenant_iso.add_member('forg_gm', 'gamma') \g /dev/null
SELECT tenant_iso.grant_switch('forg_pool') \g /dev/null
SELECT tenant_iso.grant_switch('forg_sw') \g /dev/null
SELECT tenant_iso.suspend_tenant('delta') \g /dev/null

CREATE TABLE public.forg_data (tenant_id text NOT NULL, v int NOT NULL);
INSERT INTO public.forg_data VALUES
	('acme', 1), ('acme', 2), ('acme', 3), ('beta', 10), ('beta', 20),
	('gamma', 100), ('delta', 1000), ('epsilon', 10000);
SELECT tenant_iso.protect('public.forg_data') \g /dev/null
GRANT SELECT, INSERT ON public.forg_data TO forg_m, forg_m2, forg_gm, forg_pool, forg_sw, forg_plain;

-- a schema where the tenant roles may create functions
CREATE SCHEMA forg_s;
GRANT USAGE, CREATE ON SCHEMA forg_s TO forg_m, forg_pool;

-- which tenants' rows the current role can see: 'acme:3' or 'acme:3,beta:2'
CREATE FUNCTION forg_s.seen() RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce(string_agg(tenant_id || ':' || n, ',' ORDER BY tenant_id), '')
	  FROM (SELECT tenant_id, count(*) n FROM public.forg_data GROUP BY tenant_id) s $$;
-- a libpq connection string for a second session on this server
CREATE FUNCTION forg_s.connstr(u text, extra text DEFAULT '') RETURNS text LANGUAGE sql STABLE AS $$
	SELECT format('host=%s port=%s dbname=%s user=%s %s',
		CASE WHEN current_setting('listen_addresses') <> '' THEN '127.0.0.1'
		     ELSE split_part(current_setting('unix_socket_directories'), ',', 1) END,
		current_setting('port'), current_database(), u, extra) $$;
-- one text value from a query on a dblink connection
CREATE FUNCTION forg_s.remote(conn text, q text) RETURNS text LANGUAGE sql AS $$
	SELECT v FROM public.dblink(conn, q) AS t(v text) $$;
-- the full error (SQLSTATE, message, detail) of connecting with a connection string
CREATE FUNCTION forg_s.connect_error(cs text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text; d text;
BEGIN
	PERFORM public.dblink_connect('forg_probe', cs);
	PERFORM public.dblink_disconnect('forg_probe');
	RETURN 'connected';
EXCEPTION WHEN others THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || m || ' / ' || coalesce(d, '');
END $$;
GRANT USAGE ON SCHEMA forg_s TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA forg_s TO PUBLIC;

SELECT plan(185);

-- ===================================================================
-- 1. Member role (T1): every direct route is refused
-- ===================================================================
SET ROLE forg_m;
SELECT is(tenant_iso.current_tenant(), 'acme', 'member: starts in its tenant acme');
SELECT is(forg_s.seen(), 'acme:3', 'member: sees only acme rows');

SELECT throws_ok($$SET tenant_iso.tenant = 'beta'$$, '42501', 'tenant context cannot be set directly',
	'member: SET tenant_iso.tenant -> 42501');
SELECT throws_ok($$SET SESSION tenant_iso.tenant = 'beta'$$, '42501', 'tenant context cannot be set directly',
	'member: SET SESSION tenant_iso.tenant -> 42501');
SELECT throws_ok($$SET LOCAL tenant_iso.tenant = 'beta'$$, '42501', 'tenant context cannot be set directly',
	'member: SET LOCAL tenant_iso.tenant -> 42501');
SELECT throws_ok($$SELECT set_config('tenant_iso.tenant', 'beta', false)$$, '42501',
	'tenant context cannot be set directly', 'member: set_config(..., is_local => false) -> 42501');
SELECT throws_ok($$SELECT set_config('tenant_iso.tenant', 'beta', true)$$, '42501',
	'tenant context cannot be set directly', 'member: set_config(..., is_local => true) -> 42501');
SELECT throws_ok($$SELECT pg_catalog.set_config('TENANT_ISO.TENANT', 'beta', false)$$, '42501',
	'tenant context cannot be set directly', 'member: set_config with the name in upper case -> 42501');
SELECT throws_ok($$RESET tenant_iso.tenant$$, '42501', 'tenant context cannot be set directly',
	'member: RESET tenant_iso.tenant -> 42501');
SELECT throws_ok($$SET tenant_iso.tenant TO DEFAULT$$, '42501', 'tenant context cannot be set directly',
	'member: SET tenant_iso.tenant TO DEFAULT -> 42501');
SELECT throws_ok($$SET LOCAL tenant_iso.tenant TO DEFAULT$$, '42501', 'tenant context cannot be set directly',
	'member: SET LOCAL tenant_iso.tenant TO DEFAULT -> 42501');
SELECT throws_ok($$SET "Tenant_ISO.Tenant" = 'beta'$$, '42501', 'tenant context cannot be set directly',
	'member: SET with the name in mixed case -> 42501');
SELECT throws_ok($$RESET "TENANT_ISO.TENANT"$$, '42501', 'tenant context cannot be set directly',
	'member: RESET with the name in upper case -> 42501');
SELECT throws_ok($$SET tenant_iso.tenant = ''$$, '42501', 'tenant context cannot be set directly',
	'member: SET tenant_iso.tenant to the empty string -> 42501');
SELECT throws_ok($$ALTER ROLE forg_m SET tenant_iso.tenant = 'beta'$$, '42501',
	'tenant context cannot be set directly', 'member: ALTER ROLE itself SET tenant_iso.tenant -> 42501');
SELECT throws_ok($$CREATE FUNCTION forg_s.f_set() RETURNS int LANGUAGE sql
                   SET tenant_iso.tenant = 'beta' AS 'SELECT 1'$$, '42501',
	'tenant context cannot be set directly', 'member: CREATE FUNCTION ... SET tenant_iso.tenant refused at creation');
SELECT throws_ok($$CREATE FUNCTION forg_s.f_cur() RETURNS int LANGUAGE sql
                   SET tenant_iso.tenant FROM CURRENT AS 'SELECT 1'$$, '42501',
	'tenant context cannot be set directly', 'member: CREATE FUNCTION ... SET tenant_iso.tenant FROM CURRENT refused');
CREATE FUNCTION forg_s.f_member() RETURNS text LANGUAGE sql AS 'SELECT tenant_iso.current_tenant()';
SELECT throws_ok($$ALTER FUNCTION forg_s.f_member() SET tenant_iso.tenant = 'beta'$$, '42501',
	'tenant context cannot be set directly', 'member: ALTER FUNCTION ... SET tenant_iso.tenant refused');
SELECT is(forg_s.f_member(), 'acme', 'member: its own function still runs in acme');

SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta')$$, '42501',
	'role "forg_m" is a tenant member and cannot switch tenants', 'member: set_tenant(other tenant) -> 42501');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta', true)$$, '42501',
	'role "forg_m" is a tenant member and cannot switch tenants', 'member: set_tenant(other tenant, local) -> 42501');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('nosuch')$$, '42501', NULL,
	'member: set_tenant(unknown tenant) -> 42501 (cannot switch at all)');
SELECT lives_ok($$SELECT tenant_iso.set_tenant('acme')$$, 'member: set_tenant(own tenant) is a no-op');
SELECT lives_ok($$SELECT tenant_iso.reset_tenant()$$, 'member: reset_tenant() is a no-op');
SELECT is(tenant_iso.current_tenant(), 'acme', 'member: after all that, still in acme');
SELECT is(forg_s.seen(), 'acme:3', 'member: and still sees only acme rows');
SELECT is(current_setting('tenant_iso.tenant'), '', 'member: the hidden setting was never changed');

RESET ALL;
SELECT is(current_user::text, 'forg_m', 'member: RESET ALL kept the role');
SELECT is(tenant_iso.current_tenant(), 'acme', 'member: RESET ALL leaves the context alone');
SELECT is(forg_s.seen(), 'acme:3', 'member: after RESET ALL still only acme rows');
SET client_min_messages = warning;

-- a SECURITY DEFINER function owned by the switcher does not let a member switch
RESET ROLE;
CREATE FUNCTION forg_s.pool_switch(t text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog AS $$
BEGIN
	PERFORM tenant_iso.set_tenant(t);
	RETURN tenant_iso.current_tenant();
END $$;
ALTER FUNCTION forg_s.pool_switch(text) OWNER TO forg_pool;
GRANT EXECUTE ON FUNCTION forg_s.pool_switch(text) TO forg_m;
SET ROLE forg_m;
SELECT throws_ok($$SELECT forg_s.pool_switch('beta')$$, '42501',
	'role "forg_m" is a tenant member and cannot switch tenants',
	'member: a SECURITY DEFINER function owned by a switcher cannot switch the member''s tenant');
SELECT is(tenant_iso.current_tenant(), 'acme', 'member: still in acme');
RESET ROLE;

-- ===================================================================
-- 2. Switcher pool role (T2): same routes, after entering acme legitimately
-- ===================================================================
SET ROLE forg_pool;
SELECT is(tenant_iso.current_tenant(), NULL, 'pool: no tenant before set_tenant');
SELECT throws_ok($$SELECT count(*) FROM public.forg_data$$, '42501', 'no tenant context',
	'pool: reading a protected table without a context -> 42501');
SELECT throws_ok($$SET tenant_iso.tenant = 'acme'$$, '42501', 'tenant context cannot be set directly',
	'pool: SET tenant_iso.tenant with no context -> 42501');
SELECT is(tenant_iso.current_tenant(), NULL, 'pool: still no tenant');

SELECT lives_ok($$SELECT tenant_iso.set_tenant('acme')$$, 'pool: set_tenant(acme)');
SELECT is(tenant_iso.current_tenant(), 'acme', 'pool: in acme');
SELECT is(forg_s.seen(), 'acme:3', 'pool: sees only acme rows');

SELECT throws_ok($$SET tenant_iso.tenant = 'beta'$$, '42501', 'tenant context cannot be set directly',
	'pool: SET tenant_iso.tenant -> 42501');
SELECT throws_ok($$SET LOCAL tenant_iso.tenant = 'beta'$$, '42501', 'tenant context cannot be set directly',
	'pool: SET LOCAL tenant_iso.tenant -> 42501');
SELECT throws_ok($$SELECT set_config('tenant_iso.tenant', 'beta', false)$$, '42501',
	'tenant context cannot be set directly', 'pool: set_config(..., is_local => false) -> 42501');
SELECT throws_ok($$SELECT set_config('tenant_iso.tenant', 'beta', true)$$, '42501',
	'tenant context cannot be set directly', 'pool: set_config(..., is_local => true) -> 42501');
SELECT throws_ok($$SELECT set_config('tenant_iso.tenant', current_setting('tenant_iso.tenant'), false)$$, '42501',
	'tenant context cannot be set directly', 'pool: set_config to the same value -> 42501');
SELECT throws_ok($$RESET tenant_iso.tenant$$, '42501', 'tenant context cannot be set directly',
	'pool: RESET tenant_iso.tenant -> 42501');
SELECT throws_ok($$SET tenant_iso.tenant TO DEFAULT$$, '42501', 'tenant context cannot be set directly',
	'pool: SET tenant_iso.tenant TO DEFAULT -> 42501');
SELECT throws_ok($$SET "Tenant_ISO.Tenant" = 'beta'$$, '42501', 'tenant context cannot be set directly',
	'pool: SET with the name in mixed case -> 42501');
SELECT throws_ok($$SET tenant_iso.tenant = ''$$, '42501', 'tenant context cannot be set directly',
	'pool: SET tenant_iso.tenant to the empty string -> 42501');
SELECT throws_ok($$ALTER ROLE forg_pool SET tenant_iso.tenant = 'beta'$$, '42501',
	'tenant context cannot be set directly', 'pool: ALTER ROLE itself SET tenant_iso.tenant -> 42501');
SELECT throws_ok($$CREATE FUNCTION forg_s.p_set() RETURNS int LANGUAGE sql
                   SET tenant_iso.tenant = 'beta' AS 'SELECT 1'$$, '42501',
	'tenant context cannot be set directly', 'pool: CREATE FUNCTION ... SET tenant_iso.tenant refused at creation');
SELECT throws_ok($$CREATE FUNCTION forg_s.p_cur() RETURNS int LANGUAGE sql
                   SET tenant_iso.tenant FROM CURRENT AS 'SELECT 1'$$, '42501',
	'tenant context cannot be set directly', 'pool: CREATE FUNCTION ... SET tenant_iso.tenant FROM CURRENT refused');
SELECT is(tenant_iso.current_tenant(), 'acme', 'pool: after the refused attempts still in acme');
SELECT is(forg_s.seen(), 'acme:3', 'pool: and still sees only acme rows');

-- set_config(name, NULL) is RESET in disguise: no utility statement, and
-- PostgreSQL does not call the check hook for a reset
SELECT throws_ok($$SELECT set_config('tenant_iso.tenant', NULL, false)$$, '42501',
	'tenant context cannot be set directly', 'pool: set_config(..., NULL, false) (a RESET in disguise) -> 42501');
SELECT is(tenant_iso.current_tenant(), 'acme', 'pool: set_config(..., NULL) did not clear the context');
SELECT lives_ok($$SELECT tenant_iso.set_tenant('acme')$$, 'pool: (re-enter acme)');

RESET ALL;
SELECT is(current_user::text, 'forg_pool', 'pool: RESET ALL kept the role');
SELECT is(tenant_iso.current_tenant(), 'acme', 'pool: RESET ALL does not clear the switcher context');
SELECT is(forg_s.seen(), 'acme:3', 'pool: after RESET ALL still only acme rows');
SET client_min_messages = warning;

-- failed set_tenant calls leave the context alone
SELECT throws_ok($$SELECT tenant_iso.set_tenant('nosuch')$$, '42704', 'tenant "nosuch" does not exist',
	'pool: set_tenant(unknown tenant) -> 42704');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('no such')$$, '22023', 'invalid tenant id',
	'pool: set_tenant(invalid id) -> 22023');
SELECT throws_ok($$SELECT tenant_iso.set_tenant(NULL)$$, '22023', 'invalid tenant id',
	'pool: set_tenant(NULL) -> 22023');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('')$$, '22023', 'invalid tenant id',
	'pool: set_tenant(empty) -> 22023');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('delta')$$, '42501', 'tenant "delta" is suspended',
	'pool: set_tenant(suspended tenant) -> 42501');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('delta', true)$$, '42501', 'tenant "delta" is suspended',
	'pool: set_tenant(suspended tenant, local) -> 42501');
SELECT is(tenant_iso.current_tenant(), 'acme', 'pool: after the failed calls still in acme');

-- legitimate switch
SELECT lives_ok($$SELECT tenant_iso.set_tenant('beta')$$, 'pool: set_tenant(beta)');
SELECT is(forg_s.seen(), 'beta:2', 'pool: now sees only beta rows');

-- ===================================================================
-- 3. SET ROLE
-- ===================================================================
-- switcher -> member role: the member's tenant wins, and cannot be switched
SET ROLE forg_m;
SELECT is(tenant_iso.current_tenant(), 'acme', 'SET ROLE from the pool (in beta) to member forg_m: tenant acme');
SELECT is(forg_s.seen(), 'acme:3', '... and only acme rows');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta')$$, '42501', NULL,
	'... and set_tenant is refused for the member role');
SET ROLE forg_pool;
SELECT is(tenant_iso.current_tenant(), 'beta', 'back to the pool role: its context beta is unchanged');
SELECT lives_ok($$SELECT tenant_iso.reset_tenant()$$, 'pool: reset_tenant()');
SELECT is(tenant_iso.current_tenant(), NULL, 'pool: no tenant after reset_tenant');
SELECT throws_ok($$SELECT count(*) FROM public.forg_data$$, '42501', 'no tenant context',
	'pool: after reset_tenant, reading protected rows -> 42501');

-- non-switcher
SET ROLE forg_plain;
SELECT throws_ok($$SELECT tenant_iso.set_tenant('acme')$$, '42501', 'permission denied to switch tenant context',
	'non-switcher: set_tenant -> 42501');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('acme', true)$$, '42501', 'permission denied to switch tenant context',
	'non-switcher: set_tenant(local) -> 42501');
SELECT throws_ok($$SET tenant_iso.tenant = 'acme'$$, '42501', 'tenant context cannot be set directly',
	'non-switcher: SET tenant_iso.tenant -> 42501');
SELECT throws_ok($$SELECT set_config('tenant_iso.tenant', 'acme', false)$$, '42501',
	'tenant context cannot be set directly', 'non-switcher: set_config -> 42501');
SELECT is(tenant_iso.current_tenant(), NULL, 'non-switcher: no tenant');
SELECT throws_ok($$SELECT count(*) FROM public.forg_data$$, '42501', 'no tenant context',
	'non-switcher: reading protected rows -> 42501');
RESET ROLE;

-- member as the SESSION user (SET SESSION AUTHORIZATION is possible here only
-- because this session authenticated as a superuser)
SET SESSION AUTHORIZATION forg_m;
SELECT is(session_user::text, 'forg_m', 'SET SESSION AUTHORIZATION forg_m (superuser-authenticated session)');
SELECT is(tenant_iso.current_tenant(), 'acme', 'session user forg_m: tenant acme');
SET ROLE forg_plain;
SELECT is(tenant_iso.current_tenant(), 'acme', 'member session, SET ROLE to a non-member role: still acme');
SELECT is(forg_s.seen(), 'acme:3', '... and only acme rows');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta')$$, '42501', NULL,
	'... and set_tenant is refused');
SET ROLE forg_sw;
SELECT is(tenant_iso.current_tenant(), 'acme', 'member session, SET ROLE to a switcher role: still acme');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta')$$, '42501',
	'role "forg_sw" is a tenant member and cannot switch tenants',
	'... and the switcher role''s set_tenant is refused');
SELECT is(forg_s.seen(), 'acme:3', '... still only acme rows');
SET ROLE forg_m2;
SELECT is(tenant_iso.current_tenant(), NULL,
	'member session, SET ROLE to a member of another tenant: no usable context');
SELECT throws_ok($$SELECT count(*) FROM public.forg_data$$, '42501', 'no tenant context',
	'... reading protected rows fails closed (42501)');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta')$$, '42501', NULL,
	'... and set_tenant is refused');
RESET ROLE;
SELECT is(tenant_iso.current_tenant(), 'acme', 'RESET ROLE: back to acme');
RESET SESSION AUTHORIZATION;
SELECT is(session_user::text, 'postgres', 'RESET SESSION AUTHORIZATION');

-- a superuser session becoming the pool role keeps nothing of the member
SET SESSION AUTHORIZATION forg_pool;
SELECT is(tenant_iso.current_tenant(), NULL, 'SET SESSION AUTHORIZATION forg_pool: no tenant');
SELECT lives_ok($$SELECT tenant_iso.set_tenant('beta')$$, '... and it can set_tenant as the switcher');
SELECT is(forg_s.seen(), 'beta:2', '... seeing only beta rows');
SELECT lives_ok($$SELECT tenant_iso.reset_tenant()$$, '... and reset_tenant');
RESET SESSION AUTHORIZATION;

-- ===================================================================
-- 4. Routes for administrators: all refused, even for a superuser
-- ===================================================================
SELECT throws_ok($$SET tenant_iso.tenant = 'acme'$$, '42501', 'tenant context cannot be set directly',
	'superuser: SET tenant_iso.tenant -> 42501');
SELECT throws_ok($$SELECT set_config('tenant_iso.tenant', 'acme', false)$$, '42501',
	'tenant context cannot be set directly', 'superuser: set_config -> 42501');
SELECT throws_ok($$ALTER ROLE forg_plain SET tenant_iso.tenant = 'acme'$$, '42501',
	'tenant context cannot be set directly', 'ALTER ROLE ... SET tenant_iso.tenant -> 42501');
SELECT throws_ok(format('ALTER ROLE forg_plain IN DATABASE %I SET tenant_iso.tenant = %L', current_database(), 'acme'),
	'42501', 'tenant context cannot be set directly', 'ALTER ROLE ... IN DATABASE ... SET tenant_iso.tenant -> 42501');
SELECT throws_ok($$ALTER ROLE ALL SET tenant_iso.tenant = 'acme'$$, '42501',
	'tenant context cannot be set directly', 'ALTER ROLE ALL SET tenant_iso.tenant -> 42501');
SELECT throws_ok(format('ALTER DATABASE %I SET tenant_iso.tenant = %L', current_database(), 'acme'),
	'42501', 'tenant context cannot be set directly', 'ALTER DATABASE ... SET tenant_iso.tenant -> 42501');
SELECT throws_ok($$ALTER SYSTEM SET tenant_iso.tenant = 'acme'$$, '42501',
	'tenant context cannot be set directly', 'ALTER SYSTEM SET tenant_iso.tenant -> 42501');
SELECT throws_ok($$CREATE FUNCTION forg_s.su_set() RETURNS int LANGUAGE sql
                   SET tenant_iso.tenant = 'acme' AS 'SELECT 1'$$, '42501',
	'tenant context cannot be set directly', 'superuser: CREATE FUNCTION ... SET tenant_iso.tenant refused');
SELECT is((SELECT count(*)::int FROM pg_db_role_setting, unnest(setconfig) c WHERE c ILIKE 'tenant_iso.tenant%'), 0,
	'no role or database default for tenant_iso.tenant was stored');
SELECT is((SELECT count(*)::int FROM pg_proc, unnest(proconfig) c WHERE c ILIKE 'tenant_iso.tenant%'), 0,
	'no function carries a tenant_iso.tenant setting');
SELECT is((SELECT count(*)::int FROM pg_proc WHERE proname IN ('f_set', 'f_cur', 'p_set', 'p_cur', 'su_set')), 0,
	'none of the refused functions was created');

-- ===================================================================
-- 5. Suspension
-- ===================================================================
-- a member of a suspended tenant cannot read
RESET ROLE;
SELECT tenant_iso.add_member('forg_plain', 'delta') \g /dev/null
SET ROLE forg_plain;
SELECT throws_ok($$SELECT count(*) FROM public.forg_data$$, '42501', 'tenant "delta" is suspended',
	'member of a suspended tenant: reading -> 42501');
SELECT throws_ok($$INSERT INTO public.forg_data (v) VALUES (1)$$, '42501', NULL,
	'member of a suspended tenant: inserting -> 42501');
RESET ROLE;
SELECT tenant_iso.remove_member('forg_plain') \g /dev/null

-- a session already in a tenant that gets suspended is refused at its next statement
SET ROLE forg_pool;
SELECT lives_ok($$SELECT tenant_iso.set_tenant('gamma')$$, 'pool: set_tenant(gamma)');
SELECT is(forg_s.seen(), 'gamma:1', 'pool: sees gamma''s row');
SET ROLE forg_gm;
SELECT is(forg_s.seen(), 'gamma:1', 'member forg_gm: sees gamma''s row');
RESET ROLE;
SELECT lives_ok($$SELECT tenant_iso.suspend_tenant('gamma')$$, 'superuser suspends gamma');
SET ROLE forg_pool;
SELECT throws_ok($$SELECT count(*) FROM public.forg_data$$, '42501', 'tenant "gamma" is suspended',
	'pool in a tenant that was suspended: next read -> 42501');
SELECT throws_ok($$INSERT INTO public.forg_data (tenant_id, v) VALUES ('gamma', 2)$$, '42501', NULL,
	'pool in a tenant that was suspended: next insert -> 42501');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('gamma')$$, '42501', 'tenant "gamma" is suspended',
	'pool: re-entering the suspended tenant -> 42501');
SET ROLE forg_gm;
SELECT throws_ok($$SELECT count(*) FROM public.forg_data$$, '42501', 'tenant "gamma" is suspended',
	'member of the suspended tenant: next read -> 42501');
RESET ROLE;
SELECT lives_ok($$SELECT tenant_iso.resume_tenant('gamma')$$, 'superuser resumes gamma');
SET ROLE forg_pool;
SELECT is(forg_s.seen(), 'gamma:1', 'pool: gamma readable again after resume_tenant');
SELECT lives_ok($$SELECT tenant_iso.reset_tenant()$$, 'pool: reset_tenant()');
RESET ROLE;

-- ===================================================================
-- 6. Savepoint and rollback tricks (pool role, starting in acme)
-- ===================================================================
SET ROLE forg_pool;
SELECT tenant_iso.set_tenant('acme') \g /dev/null

BEGIN;
SELECT tenant_iso.set_tenant('beta') \g /dev/null
SELECT coalesce(tenant_iso.current_tenant(), '-') AS ctx_in_txn, forg_s.seen() AS seen_in_txn \gset
ROLLBACK;
SELECT is(:'ctx_in_txn'::text, 'beta', 'set_tenant inside a transaction takes effect at once');
SELECT is(:'seen_in_txn'::text, 'beta:2', '... for the rows too');
SELECT is(tenant_iso.current_tenant(), 'acme', 'ROLLBACK undoes a set_tenant made in the transaction');
SELECT is(forg_s.seen(), 'acme:3', '... rows: acme again');

BEGIN;
SAVEPOINT s1;
SELECT tenant_iso.set_tenant('beta') \g /dev/null
ROLLBACK TO SAVEPOINT s1;
SELECT coalesce(tenant_iso.current_tenant(), '-') AS ctx_after_rb \gset
COMMIT;
SELECT is(:'ctx_after_rb'::text, 'acme', 'ROLLBACK TO SAVEPOINT undoes a set_tenant made after the savepoint');
SELECT is(tenant_iso.current_tenant(), 'acme', '... and it stays undone after COMMIT');

BEGIN;
SAVEPOINT s1;
SELECT tenant_iso.set_tenant('beta') \g /dev/null
SAVEPOINT s2;
SELECT tenant_iso.reset_tenant() \g /dev/null
ROLLBACK TO SAVEPOINT s2;
SELECT coalesce(tenant_iso.current_tenant(), '-') AS ctx_s2 \gset
ROLLBACK TO SAVEPOINT s1;
SELECT coalesce(tenant_iso.current_tenant(), '-') AS ctx_s1 \gset
COMMIT;
SELECT is(:'ctx_s2'::text, 'beta', 'nested savepoints: rolling back a reset_tenant restores beta');
SELECT is(:'ctx_s1'::text, 'acme', 'nested savepoints: rolling back the outer savepoint restores acme');
SELECT is(tenant_iso.current_tenant(), 'acme', '... and COMMIT keeps acme');

BEGIN;
SAVEPOINT s1;
SELECT tenant_iso.set_tenant('beta') \g /dev/null
RELEASE SAVEPOINT s1;
COMMIT;
SELECT is(tenant_iso.current_tenant(), 'beta', 'a released savepoint and COMMIT keep a session set_tenant');
SELECT tenant_iso.set_tenant('acme') \g /dev/null

DO $$
BEGIN
	PERFORM tenant_iso.set_tenant('beta');
	RAISE EXCEPTION 'boom';
EXCEPTION WHEN raise_exception THEN
	NULL;
END $$;
SELECT is(tenant_iso.current_tenant(), 'acme',
	'set_tenant in a PL/pgSQL block whose exception was caught is undone');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta'), 1/0$$, '22012', NULL,
	'a statement that fails after set_tenant ...');
SELECT is(tenant_iso.current_tenant(), 'acme', '... leaves the context unchanged');
SELECT throws_ok($$SELECT tenant_iso.set_tenant(t) FROM unnest(ARRAY['beta', 'nosuch']) t$$, '42704', NULL,
	'a statement that switches to beta, then fails on an unknown tenant ...');
SELECT is(tenant_iso.current_tenant(), 'acme', '... leaves the context unchanged');

-- a member cannot use a rolled-back transaction to leave its tenant either
SET ROLE forg_m;
-- an error while reading protected rows inside a savepoint, rolled back,
-- must not disturb the session (nor crash the backend at COMMIT)
BEGIN;
SAVEPOINT s1;
\set ON_ERROR_STOP 0
SELECT 1 / (v - v) FROM public.forg_data;
\set ON_ERROR_STOP 1
ROLLBACK TO SAVEPOINT s1;
SELECT forg_s.seen() AS seen_after_err \gset
COMMIT;
SELECT is(:'seen_after_err'::text, 'acme:3',
	'member: after a failed protected read in a rolled-back savepoint, still only acme rows');
SELECT throws_ok($$SELECT 1 / (v - v) FROM public.forg_data$$, '22012', NULL,
	'member: a protected read failing inside a subtransaction (PL/pgSQL exception block)');
SELECT is(forg_s.seen(), 'acme:3', 'member: the session survives it (and its COMMIT)');
BEGIN;
SAVEPOINT s1;
SELECT tenant_iso.reset_tenant() \g /dev/null
ROLLBACK TO SAVEPOINT s1;
SELECT coalesce(tenant_iso.current_tenant(), '-') AS ctx_member \gset
ROLLBACK;
SELECT is(:'ctx_member'::text, 'acme', 'member: reset_tenant + savepoint rollback: still acme');
SET ROLE forg_pool;

-- ===================================================================
-- 7. Transaction-scoped context reused by a pooled connection
-- ===================================================================
SELECT tenant_iso.reset_tenant() \g /dev/null
BEGIN;
SELECT tenant_iso.set_tenant('beta', local => true) \g /dev/null
SELECT coalesce(tenant_iso.current_tenant(), '-') AS ctx_local, forg_s.seen() AS seen_local \gset
COMMIT;
SELECT is(:'ctx_local'::text, 'beta', 'pooled: set_tenant(beta, local) inside the transaction');
SELECT is(:'seen_local'::text, 'beta:2', 'pooled: ... sees beta''s rows');
SELECT is(tenant_iso.current_tenant(), NULL, 'pooled: the next transaction on the connection has no tenant');
SELECT throws_ok($$SELECT count(*) FROM public.forg_data$$, '42501', 'no tenant context',
	'pooled: the next transaction cannot read beta''s rows (42501)');

BEGIN;
SELECT tenant_iso.set_tenant('beta', local => true) \g /dev/null
ROLLBACK;
SELECT is(tenant_iso.current_tenant(), NULL, 'pooled: after ROLLBACK of a local set_tenant: no tenant');

-- outside a transaction block, a local context lasts one statement
SELECT tenant_iso.set_tenant('beta', true) \g /dev/null
SELECT is(tenant_iso.current_tenant(), NULL, 'pooled: set_tenant(local) in autocommit mode is gone by the next statement');
RESET ROLE;

-- ===================================================================
-- 8. Real login sessions (dblink): session user = the tenant role
-- ===================================================================
SELECT lives_ok(format($$SELECT public.dblink_connect('m', %L)$$, forg_s.connstr('forg_m')),
	'login as member forg_m');
SELECT is(forg_s.remote('m', 'SELECT tenant_iso.current_tenant()'), 'acme', 'login forg_m: tenant acme');
SELECT throws_ok($$SELECT public.dblink_exec('m', 'SET SESSION AUTHORIZATION forg_pool')$$, '42501',
	'permission denied to set session authorization "forg_pool"',
	'login forg_m: SET SESSION AUTHORIZATION is refused (superuser only)');
SELECT throws_ok($$SELECT public.dblink_exec('m', 'SET SESSION AUTHORIZATION forg_m2')$$, '42501', NULL,
	'login forg_m: SET SESSION AUTHORIZATION to a granted member role is refused too');
SELECT lives_ok($$SELECT public.dblink_exec('m', 'SET ROLE forg_plain')$$, 'login forg_m: SET ROLE forg_plain');
SELECT is(forg_s.remote('m', 'SELECT tenant_iso.current_tenant()'), 'acme', 'login forg_m as forg_plain: still acme');
SELECT is(forg_s.remote('m', 'SELECT forg_s.seen()'), 'acme:3', 'login forg_m as forg_plain: only acme rows');
SELECT lives_ok($$SELECT public.dblink_exec('m', 'SET ROLE forg_sw')$$, 'login forg_m: SET ROLE forg_sw (a switcher role)');
SELECT throws_ok($$SELECT * FROM public.dblink('m', 'SELECT tenant_iso.set_tenant(''beta'')::text') AS t(v text)$$,
	'42501', 'role "forg_sw" is a tenant member and cannot switch tenants',
	'login forg_m as switcher role forg_sw: set_tenant refused');
SELECT lives_ok($$SELECT public.dblink_exec('m', 'RESET ALL')$$, 'login forg_m: RESET ALL');
SELECT is(forg_s.remote('m', 'SELECT tenant_iso.current_tenant()'), 'acme', 'login forg_m: after RESET ALL still acme');
SELECT lives_ok($$SELECT public.dblink_exec('m', 'DISCARD ALL')$$, 'login forg_m: DISCARD ALL');
SELECT is(forg_s.remote('m', 'SELECT current_user || '':'' || tenant_iso.current_tenant()'), 'forg_m:acme',
	'login forg_m: after DISCARD ALL still in its tenant acme (DISCARD ALL also reset the role)');
SELECT is(forg_s.remote('m', 'SELECT forg_s.seen()'), 'acme:3', 'login forg_m: after DISCARD ALL only acme rows');
SELECT dblink_disconnect('m') \g /dev/null

SELECT lives_ok(format($$SELECT public.dblink_connect('p', %L)$$, forg_s.connstr('forg_pool')),
	'login as switcher forg_pool');
SELECT is(forg_s.remote('p', 'SELECT tenant_iso.current_tenant()'), NULL, 'login forg_pool: no tenant');
SELECT is(forg_s.remote('p', 'SELECT tenant_iso.set_tenant(''beta'')::text'), '',
	'login forg_pool: set_tenant(beta) succeeds');
SELECT is(forg_s.remote('p', 'SELECT tenant_iso.current_tenant()'), 'beta', 'login forg_pool: set_tenant(beta)');
SELECT lives_ok($$SELECT public.dblink_exec('p', 'RESET ALL')$$, 'login forg_pool: RESET ALL');
SELECT is(forg_s.remote('p', 'SELECT tenant_iso.current_tenant()'), 'beta', 'login forg_pool: RESET ALL keeps beta');
SELECT lives_ok($$SELECT public.dblink_exec('p', 'DISCARD ALL')$$, 'login forg_pool: DISCARD ALL');
SELECT is(forg_s.remote('p', 'SELECT tenant_iso.current_tenant()'), NULL,
	'login forg_pool: DISCARD ALL clears the switcher context');
SELECT throws_ok($$SELECT * FROM public.dblink('p', 'SELECT count(*) FROM public.forg_data') AS t(n bigint)$$,
	'42501', 'no tenant context', 'login forg_pool: after DISCARD ALL, no protected rows (42501)');
SELECT throws_ok($$SELECT public.dblink_exec('p', 'SET SESSION AUTHORIZATION forg_m')$$, '42501', NULL,
	'login forg_pool: SET SESSION AUTHORIZATION is refused');
SELECT lives_ok($$SELECT public.dblink_exec('p', 'SET ROLE forg_m')$$, 'login forg_pool: SET ROLE forg_m');
SELECT is(forg_s.remote('p', 'SELECT tenant_iso.current_tenant()'), 'acme',
	'login forg_pool as forg_m: the member''s tenant acme');
SELECT lives_ok($$SELECT public.dblink_exec('p', 'RESET ROLE')$$, 'login forg_pool: RESET ROLE');

-- a second session in a tenant that another session suspends
SELECT is(forg_s.remote('p', 'SELECT tenant_iso.set_tenant(''epsilon'')::text'), '',
	'login forg_pool: set_tenant(epsilon)');
SELECT is(forg_s.remote('p', 'SELECT forg_s.seen()'), 'epsilon:1', 'login forg_pool: sees epsilon''s row');
SELECT lives_ok($$SELECT tenant_iso.suspend_tenant('epsilon')$$, 'this session suspends epsilon (committed)');
SELECT throws_ok($$SELECT * FROM public.dblink('p', 'SELECT count(*) FROM public.forg_data') AS t(n bigint)$$,
	'42501', 'tenant "epsilon" is suspended',
	'login forg_pool: its next statement on protected data is refused (42501)');
SELECT lives_ok($$SELECT tenant_iso.resume_tenant('epsilon')$$, 'this session resumes epsilon');
SELECT is(forg_s.remote('p', 'SELECT forg_s.seen()'), 'epsilon:1', 'login forg_pool: readable again');
SELECT dblink_disconnect('p') \g /dev/null

-- connection options (what PGOPTIONS sends) are refused at connection time
SELECT matches(forg_s.connect_error(forg_s.connstr('forg_pool', $$options='-c tenant_iso.tenant=acme'$$)),
	'^08001: .*tenant context cannot be set directly',
	'connecting as the pool with options -c tenant_iso.tenant=acme fails');
SELECT matches(forg_s.connect_error(forg_s.connstr('forg_m', $$options='-c tenant_iso.tenant=beta'$$)),
	'^08001: .*tenant context cannot be set directly',
	'connecting as a member with options -c tenant_iso.tenant=beta fails');
SELECT matches(forg_s.connect_error(forg_s.connstr('postgres', $$options='-c tenant_iso.tenant=acme'$$)),
	'^08001: .*tenant context cannot be set directly',
	'connecting as a superuser with options -c tenant_iso.tenant=acme fails');
SELECT matches(forg_s.connect_error(forg_s.connstr('forg_pool', $$options='-c TENANT_ISO.TENANT=acme'$$)),
	'^08001: .*tenant context cannot be set directly',
	'connection option with the name in upper case fails too');
SELECT is(forg_s.connect_error(forg_s.connstr('forg_pool')), 'connected',
	'(control) the same connection without the option works');

SELECT * FROM finish();

-- ===================================================================
-- cleanup (roles are cluster-wide)
-- ===================================================================
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT dblink_disconnect(c) FROM unnest(dblink_get_connections()) c \g /dev/null
SELECT tenant_iso.remove_member(member) FROM tenant_iso.members \g /dev/null
SELECT tenant_iso.revoke_switch(grantee) FROM tenant_iso.switchers \g /dev/null
DROP SCHEMA forg_s CASCADE;
DROP TABLE public.forg_data;
DROP OWNED BY forg_m, forg_m2, forg_gm, forg_pool, forg_sw, forg_plain;
DROP ROLE forg_m, forg_m2, forg_gm, forg_pool, forg_sw, forg_plain;
