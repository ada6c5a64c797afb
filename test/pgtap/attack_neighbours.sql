-- test/pgtap/attack_neighbours.sql
--
-- Attacks on the noisy-neighbour statistics and limits (issue 14):
--   - a hostile member (an_ma of tenant an_a) and a hostile pool request
--     (the switcher an_pool in an_b's context) read tenant_stats,
--     tenant_query_stats, tenant_limits and their internal functions: only
--     their own tenant's rows, never another's, never the NULL row; the
--     query text is NULL in a tenant context;
--   - roles outside any context: without pg_read_all_stats 42501, with it
--     every row; pg_read_all_stats inside a context does not widen it;
--   - a conflicting context (SECURITY DEFINER code of another tenant's
--     member) sees nothing;
--   - the management functions: set_tenant_limits() and
--     reset_tenant_stats() have no EXECUTE for tenants; a switcher or a
--     superuser that has it is refused inside a tenant context; the table
--     tenant_iso.limits cannot be read or written directly; the SUSET
--     settings of the statistics cannot be changed;
--   - raising the caps: SET, SET LOCAL, set_config(), a function's SET
--     clause (own, and a superuser's SECURITY DEFINER one), ALTER ROLE /
--     DATABASE ... SET, RESET, a raise made before entering the context
--     (PGOPTIONS is a connection option, out of reach of pgTAP);
--   - a leaky function (cheap, records its argument) in queries on the
--     views never sees another tenant's id (security_barrier);
--   - the SECURITY DEFINER set_tenant_limits() and the views called by a
--     careless administrator and by a switcher whose search_path puts a
--     hostile schema (and a PUBLIC-writable public) first, holding shadows
--     of every function and operator they use: no shadow may run.
--
-- One psql session as the superuser postgres; SET ROLE acts as the
-- attacker, RESET ROLE returns to the superuser.  The tenant context of a
-- switcher is a session setting and survives RESET ROLE: every switch is
-- undone with reset_tenant() before RESET ROLE.  Roles start with an_.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['an_ma', 'an_mb', 'an_evil', 'an_pool', 'an_pool2', 'an_plain', 'an_reader'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
	EXECUTE format('ALTER DATABASE %I RESET search_path', current_database());
END
$$;

\ir include/h.sql

-- the tenants of a statistics view as seen by the current role: sorted,
-- NULL shown as <null>, 'none' for no row, or 'ERROR <sqlstate>'
CREATE FUNCTION h.seen(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE format($x$SELECT coalesce(string_agg(DISTINCT coalesce(x.tenant, '<null>'), ' ' ORDER BY coalesce(x.tenant, '<null>')), 'none') FROM (%s) x$x$, q)
		INTO r;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

-- a leaky function: cheap, records every argument it sees in the session
-- setting an.leak (and says it in a NOTICE)
CREATE FUNCTION h.leak(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $f$
BEGIN
	RAISE NOTICE 'leak: %', t;
	PERFORM set_config('an.leak', coalesce(current_setting('an.leak', true), '') || coalesce(t, '<null>') || ' ', false);
	RETURN true;
END
$f$;

-- run q and report a cancellation (57014), which WHEN OTHERS does not catch
CREATE FUNCTION h.cancel(q text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION
	WHEN query_canceled THEN
		RETURN 'ERROR ' || SQLSTATE;
	WHEN OTHERS THEN
		RETURN 'ERROR ' || SQLSTATE;
END
$f$;

SELECT plan(138);

-- ---------------------------------------------------------------------
-- Setup
-- ---------------------------------------------------------------------
SELECT tenant_iso.create_tenant('an_a') \g /dev/null
SELECT tenant_iso.create_tenant('an_b') \g /dev/null
CREATE ROLE an_ma;
SELECT tenant_iso.add_member('an_ma', 'an_a') \g /dev/null
CREATE ROLE an_mb;
SELECT tenant_iso.add_member('an_mb', 'an_b') \g /dev/null
CREATE ROLE an_evil;
SELECT tenant_iso.add_member('an_evil', 'an_a') \g /dev/null
CREATE ROLE an_pool;
SELECT tenant_iso.grant_switch('an_pool') \g /dev/null
CREATE ROLE an_pool2;
SELECT tenant_iso.grant_switch('an_pool2') \g /dev/null
CREATE ROLE an_plain;
CREATE ROLE an_reader;
GRANT pg_read_all_stats TO an_reader;
SELECT tenant_iso.grant_switch('an_reader') \g /dev/null
CREATE TABLE public.an_t (tenant_id text NOT NULL, id int NOT NULL, v text);
SELECT tenant_iso.protect('public.an_t') \g /dev/null
GRANT SELECT, INSERT ON public.an_t TO an_ma, an_mb, an_evil, an_pool, an_pool2, an_reader;
SELECT tenant_iso.set_tenant_limits('an_a', work_mem => '1MB', statement_timeout => '2 s', temp_file_limit => '10MB') \g /dev/null
SELECT tenant_iso.set_tenant_limits('an_b', max_active_statements => 5, work_mem => '2MB') \g /dev/null

-- activity of both tenants and outside any context
SET ROLE an_ma;
INSERT INTO public.an_t (id, v) SELECT g, 'a' FROM generate_series(1, 3) g;
SELECT id FROM public.an_t \g /dev/null
RESET ROLE;
SET ROLE an_mb;
INSERT INTO public.an_t (id, v) SELECT g, 'b secret' FROM generate_series(1, 4) g;
SELECT id, v FROM public.an_t WHERE v = 'b secret' \g /dev/null
RESET ROLE;
SELECT 1 \g /dev/null
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_stats WHERE tenant IN (''an_a'', ''an_b'') OR tenant IS NULL'),
	'<null> an_a an_b', 'control: the superuser sees the rows of an_a, an_b and the NULL row');

-- the plan nodes of a query (plain EXPLAIN, allowed in a tenant context):
-- a view whose plan scans the configuration tables behind a filter would
-- count other tenants' rows under EXPLAIN ANALYZE wherever that is allowed
-- (in a database with no protected table)
CREATE FUNCTION h.plan_nodes(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
	line text;
	nodes text[] := '{}';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		IF line !~ '^\s*(Filter|Output|Index Cond|Hash Cond|Join Filter):' THEN
			nodes := nodes || regexp_replace(line, '^[\s>-]*', '');
		ELSE
			nodes := nodes || ('(' || regexp_replace(line, '^\s*([A-Za-z ]+):.*$', '\1') || ')');
		END IF;
	END LOOP;
	RETURN array_to_string(nodes, ' / ');
END
$f$;
GRANT EXECUTE ON FUNCTION h.plan_nodes(text) TO PUBLIC;

-- =====================================================================
-- 1. Who sees which rows
-- =====================================================================
SET ROLE an_ma;
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_stats'), 'an_a', 'member of an_a: tenant_stats shows an_a only');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_query_stats'), 'an_a', 'member of an_a: tenant_query_stats shows an_a only');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_limits'), 'an_a', 'member of an_a: tenant_limits shows an_a only');
SELECT is(h.plan_nodes('SELECT * FROM tenant_iso.tenant_limits'), 'Function Scan on _tenant_limits',
	'member of an_a: the plan of tenant_limits is one function scan: no table scan or filter whose row counts EXPLAIN ANALYZE could show');
SELECT is(h.plan_nodes('SELECT * FROM tenant_iso.tenant_stats'), 'Function Scan on _tenant_stats',
	'member of an_a: the plan of tenant_stats is one function scan');
SELECT is(h.seen('SELECT tenant FROM tenant_iso._tenant_stats()'), 'an_a', 'member of an_a: _tenant_stats() directly: an_a only');
SELECT is(h.seen('SELECT tenant FROM tenant_iso._tenant_query_stats()'), 'an_a', 'member of an_a: _tenant_query_stats() directly: an_a only');
SELECT is(h.seen('SELECT tenant FROM tenant_iso._tenant_query_stats_text()'), 'an_a', 'member of an_a: _tenant_query_stats_text() directly: an_a only');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_stats WHERE tenant = ''an_b'' OR tenant IS NULL'), 'none',
	'member of an_a: asking for an_b or the NULL row gives nothing');
SELECT is(h.val('SELECT tenant_iso._stats_visible(''an_b'')::text || tenant_iso._stats_visible(NULL)::text || tenant_iso._stats_visible(''an_a'')::text'),
	'falsefalsetrue', 'member of an_a: _stats_visible is true for an_a only');
SELECT is(h.val('SELECT count(*) FILTER (WHERE query IS NOT NULL) || ''/'' || (count(*) > 0) FROM tenant_iso.tenant_query_stats'),
	'0/true', 'member of an_a: the query text of its own queries is NULL');
SELECT is(h.val('SELECT count(*) FROM tenant_iso.tenants'), 'ERROR 42501', 'member of an_a: the registry itself is closed');
RESET ROLE;

SET ROLE an_pool;
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_stats'), 'ERROR 42501', 'a switcher outside any context: tenant_stats 42501');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_query_stats'), 'ERROR 42501', 'a switcher outside any context: tenant_query_stats 42501');
SELECT is(h.seen('SELECT tenant FROM tenant_iso._tenant_stats()'), 'ERROR 42501', 'a switcher outside any context: _tenant_stats() 42501');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_limits'), 'none', 'a switcher outside any context: tenant_limits shows no row');
SELECT tenant_iso.set_tenant('an_b') \g /dev/null
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_stats'), 'an_b', 'the pool in an_b: tenant_stats shows an_b only');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_query_stats'), 'an_b', 'the pool in an_b: tenant_query_stats shows an_b only');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_limits'), 'an_b', 'the pool in an_b: tenant_limits shows an_b only');
SELECT is(h.val('SELECT count(*) FILTER (WHERE query IS NOT NULL) || ''/'' || (count(*) > 0) FROM tenant_iso.tenant_query_stats'),
	'0/true', 'the pool in an_b: the query text is NULL');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;

SET ROLE an_plain;
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_stats'), 'ERROR 42501', 'a plain role: tenant_stats 42501');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_query_stats'), 'ERROR 42501', 'a plain role: tenant_query_stats 42501');
SELECT is(h.seen('SELECT tenant FROM tenant_iso._tenant_query_stats()'), 'ERROR 42501', 'a plain role: _tenant_query_stats() 42501');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_limits'), 'none', 'a plain role: tenant_limits shows no row');
SELECT matches(h.msg('SELECT * FROM tenant_iso.tenant_stats'), '^permission denied for tenant statistics',
	'the refusal says what is denied');
RESET ROLE;

SET ROLE an_reader;
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_stats WHERE tenant IN (''an_a'', ''an_b'') OR tenant IS NULL'),
	'<null> an_a an_b', 'pg_read_all_stats outside any context: an_a, an_b and the NULL row');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_query_stats WHERE tenant IN (''an_a'', ''an_b'') OR tenant IS NULL'),
	'<null> an_a an_b', 'pg_read_all_stats outside any context: every tenant''s queries');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_limits WHERE tenant IN (''an_a'', ''an_b'')'),
	'an_a an_b', 'pg_read_all_stats outside any context: every tenant''s limits');
SELECT tenant_iso.set_tenant('an_a') \g /dev/null
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_stats'), 'an_a', 'pg_read_all_stats in an_a''s context: an_a only');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_query_stats'), 'an_a', '... tenant_query_stats too');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_limits'), 'an_a', '... tenant_limits too');
SELECT is(h.val('SELECT count(*) FILTER (WHERE query IS NOT NULL) FROM tenant_iso.tenant_query_stats'), '0',
	'pg_read_all_stats in a tenant context: no query text');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;

-- a conflicting context: SECURITY DEFINER code owned by a member of an_b,
-- called by a member of an_a
CREATE SCHEMA an_bs;
GRANT USAGE ON SCHEMA an_bs TO PUBLIC;
CREATE FUNCTION an_bs.peek(q text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE format($x$SELECT coalesce(string_agg(DISTINCT coalesce(x.tenant, '<null>'), ' '), 'none') FROM (%s) x$x$, q)
		INTO r;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;
ALTER FUNCTION an_bs.peek(text) OWNER TO an_mb;
GRANT EXECUTE ON FUNCTION an_bs.peek(text) TO PUBLIC;
SET ROLE an_mb;
SELECT is(an_bs.peek('SELECT tenant FROM tenant_iso.tenant_stats'), 'an_b', 'control: an_b''s own function shows an_b to an_b');
RESET ROLE;
SET ROLE an_ma;
SELECT is(h.val('SELECT an_bs.peek(''SELECT tenant FROM tenant_iso.tenant_stats'')'), 'ERROR 42501',
	'an_b''s SECURITY DEFINER code called by a member of an_a (a conflict) does not run: 42501');
RESET ROLE;
SET ROLE an_pool;
SELECT tenant_iso.set_tenant('an_a') \g /dev/null
SELECT is(h.val('SELECT an_bs.peek(''SELECT tenant FROM tenant_iso.tenant_stats'')'), 'ERROR 42501',
	'an_b''s SECURITY DEFINER code called by the pool in an_a does not run either: 42501');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;

-- =====================================================================
-- 2. A leaky function never sees another tenant's id
-- =====================================================================
SET ROLE an_ma;
SET an.leak = '';
SELECT count(*) FROM tenant_iso.tenant_limits WHERE h.leak(tenant) \g /dev/null
SELECT is(current_setting('an.leak'), 'an_a ', 'a leaky qual on tenant_limits saw an_a only');
SET an.leak = '';
SELECT count(*) FROM tenant_iso.tenant_limits l WHERE l.tenant = 'an_b' OR h.leak(l.tenant) \g /dev/null
SELECT is(current_setting('an.leak'), 'an_a ', 'a leaky qual OR-ed with tenant = an_b saw an_a only');
SET an.leak = '';
SELECT count(*) FROM tenant_iso.tenant_limits l JOIN (VALUES ('an_b'), ('an_a')) v(t) ON h.leak(l.tenant) AND l.tenant = v.t \g /dev/null
SELECT ok(current_setting('an.leak') ~ '^(an_a )+$', 'a leaky join qual on tenant_limits saw an_a only');
SET an.leak = '';
SELECT count(*) FROM tenant_iso.tenant_stats WHERE h.leak(tenant) \g /dev/null
SELECT is(current_setting('an.leak'), 'an_a ', 'a leaky qual on tenant_stats saw an_a only (never the NULL row)');
SET an.leak = '';
SELECT count(*) FROM tenant_iso.tenant_query_stats WHERE h.leak(tenant) AND h.leak(query) \g /dev/null
SELECT ok(current_setting('an.leak') ~ '^(an_a <null> )+$', 'a leaky qual on tenant_query_stats saw an_a and no query text');
RESET an.leak;
RESET ROLE;

-- =====================================================================
-- 3. The management functions and the table
-- =====================================================================
SET ROLE an_ma;
SELECT is(h.try('SELECT tenant_iso.set_tenant_limits(''an_a'', 100)'), 'ERROR 42501', 'member: set_tenant_limits for its own tenant: 42501');
SELECT is(h.try('SELECT tenant_iso.set_tenant_limits(''an_b'', 1)'), 'ERROR 42501', 'member: set_tenant_limits for another tenant: 42501');
SELECT is(h.try('SELECT tenant_iso.set_tenant_limits(''an_a'')'), 'ERROR 42501', 'member: set_tenant_limits to drop its row: 42501');
SELECT is(h.try('SELECT tenant_iso.reset_tenant_stats()'), 'ERROR 42501', 'member: reset_tenant_stats(): 42501');
SELECT is(h.try('SELECT tenant_iso.reset_tenant_stats(''an_a'')'), 'ERROR 42501', 'member: reset_tenant_stats(own): 42501');
SELECT is(h.try('SELECT tenant_iso._memory_limit(''work_mem'', ''1GB'', 64)'), 'ERROR 42501', 'member: _memory_limit(): 42501');
SELECT is(h.try('SELECT * FROM tenant_iso.limits'), 'ERROR 42501', 'member: SELECT tenant_iso.limits: 42501');
SELECT is(h.try('INSERT INTO tenant_iso.limits (tenant_id, work_mem) VALUES (''an_a'', ''1GB'')'), 'ERROR 42501', 'member: INSERT INTO tenant_iso.limits: 42501');
SELECT is(h.try('UPDATE tenant_iso.limits SET work_mem = ''1GB'''), 'ERROR 42501', 'member: UPDATE tenant_iso.limits: 42501');
SELECT is(h.try('DELETE FROM tenant_iso.limits'), 'ERROR 42501', 'member: DELETE FROM tenant_iso.limits: 42501');
SELECT is(h.try('TRUNCATE tenant_iso.limits'), 'ERROR 42501', 'member: TRUNCATE tenant_iso.limits: 42501');
SELECT is(h.try('SET tenant_iso.track_stats = off'), 'ERROR 42501', 'member: SET tenant_iso.track_stats = off: 42501');
SELECT is(h.try('SELECT set_config(''tenant_iso.track_stats'', ''off'', false)'), 'ERROR 42501', 'member: set_config(track_stats, off): 42501');
SELECT is(h.try('SET tenant_iso.admission_timeout = ''1h'''), 'ERROR 42501', 'member: SET tenant_iso.admission_timeout: 42501');
\set ON_ERROR_STOP 0
\echo '# the next statement fails on purpose (ALTER SYSTEM by a member)'
ALTER SYSTEM SET tenant_iso.stats_period = 1;
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '42501', 'member: ALTER SYSTEM SET tenant_iso.stats_period: 42501');
RESET ROLE;

SET ROLE an_pool;
SELECT is(h.try('SELECT tenant_iso.set_tenant_limits(''an_a'', 100)'), 'ERROR 42501', 'a switcher without EXECUTE: set_tenant_limits 42501');
SELECT is(h.try('SELECT tenant_iso.reset_tenant_stats()'), 'ERROR 42501', 'a switcher without EXECUTE: reset_tenant_stats 42501');
RESET ROLE;

GRANT EXECUTE ON FUNCTION tenant_iso.set_tenant_limits(text, integer, interval, text, text, numeric),
	tenant_iso.reset_tenant_stats(text) TO an_pool2;
SET ROLE an_pool2;
SELECT tenant_iso.set_tenant('an_a') \g /dev/null
SELECT is(h.try('SELECT tenant_iso.set_tenant_limits(''an_a'', 100)'), 'ERROR 42501', 'a switcher with EXECUTE in an_a: set_tenant_limits(an_a) 42501');
SELECT is(h.try('SELECT tenant_iso.set_tenant_limits(''an_b'', 1)'), 'ERROR 42501', 'a switcher with EXECUTE in an_a: set_tenant_limits(an_b) 42501');
SELECT is(h.try('SELECT tenant_iso.reset_tenant_stats()'), 'ERROR 42501', 'a switcher with EXECUTE in an_a: reset_tenant_stats() 42501');
SELECT is(h.try('SELECT tenant_iso.reset_tenant_stats(''an_a'')'), 'ERROR 42501', 'a switcher with EXECUTE in an_a: reset_tenant_stats(an_a) 42501');
SELECT is(h.try('UPDATE tenant_iso.limits SET work_mem = ''1GB'''), 'ERROR 42501', 'a switcher with EXECUTE: the table stays closed');
SELECT tenant_iso.reset_tenant() \g /dev/null
BEGIN;
SELECT tenant_iso.set_tenant('an_a', local => true) \g /dev/null
SELECT is(h.try('SELECT tenant_iso.set_tenant_limits(''an_a'', 100)'), 'ERROR 42501', 'a switcher with EXECUTE in a local context: 42501');
COMMIT;
SELECT is(h.try('SELECT tenant_iso.set_tenant_limits(''an_b'', 6, work_mem => ''2MB'')'), 'ok 1',
	'control: the switcher with EXECUTE outside any context may set limits');
SELECT is(h.try('SELECT tenant_iso.reset_tenant_stats(''an_b'')'), 'ok 1',
	'control: ... and reset statistics');
RESET ROLE;
SELECT tenant_iso.set_tenant('an_a') \g /dev/null
SELECT is(h.try('SELECT tenant_iso.set_tenant_limits(''an_a'', 100)'), 'ERROR 42501', 'a superuser in an_a: set_tenant_limits 42501');
SELECT is(h.try('SELECT tenant_iso.reset_tenant_stats()'), 'ERROR 42501', 'a superuser in an_a: reset_tenant_stats 42501');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT is((SELECT format('%s|%s|%s|%s|%s', max_active_statements, statement_timeout, work_mem, temp_file_limit,
						 max_statements_per_second) FROM tenant_iso.limits WHERE tenant_id = 'an_a'),
	'|00:00:02|1MB|10MB|', 'an_a''s limits are unchanged');
SELECT is((SELECT format('%s|%s', max_active_statements, work_mem) FROM tenant_iso.limits WHERE tenant_id = 'an_b'),
	'5|2MB', 'an_b''s limits are unchanged');

-- =====================================================================
-- 4. Raising the caps (an_a: work_mem 1MB, statement_timeout 2 s,
--    temp_file_limit 10MB)
-- =====================================================================
CREATE FUNCTION h.wm_high() RETURNS text LANGUAGE sql SET work_mem = '1GB' AS $f$
	SELECT current_setting('work_mem')
$f$;
CREATE FUNCTION h.wm_high_definer() RETURNS text LANGUAGE sql SECURITY DEFINER SET work_mem = '1GB' AS $f$
	SELECT current_setting('work_mem')
$f$;
CREATE FUNCTION h.st_none_definer() RETURNS text LANGUAGE sql SECURITY DEFINER SET statement_timeout = 0 AS $f$
	SELECT current_setting('statement_timeout')
$f$;
-- a function of the member's own, made outside any context (as if before
-- it became a member)
CREATE PROCEDURE h.commit_caps() LANGUAGE plpgsql AS $p$
BEGIN
	COMMIT;
	PERFORM set_config('an.caps', current_setting('work_mem') || ' ' || current_setting('temp_file_limit'), false);
END
$p$;
CREATE SCHEMA an_own AUTHORIZATION an_evil;
CREATE FUNCTION an_own.wm() RETURNS text LANGUAGE sql SET work_mem = '1GB' AS $f$
	SELECT current_setting('work_mem')
$f$;
CREATE FUNCTION an_own.wm_low() RETURNS text LANGUAGE sql SET work_mem = '512kB' AS $f$
	SELECT current_setting('work_mem')
$f$;
ALTER FUNCTION an_own.wm() OWNER TO an_evil;
ALTER FUNCTION an_own.wm_low() OWNER TO an_evil;
SET ROLE an_evil;
SELECT is(h.try($q$CREATE FUNCTION an_own.wm2() RETURNS text LANGUAGE sql SET work_mem = '1GB' AS 'SELECT 1::text'$q$),
	'ERROR 42501', 'member: CREATE FUNCTION with SET work_mem = 1GB: 42501');
SELECT is(current_setting('work_mem'), '1MB', 'a member of an_a works with work_mem 1MB');
SELECT is(h.try('SET work_mem = ''1GB'''), 'ERROR 42501', 'member: SET work_mem = 1GB: 42501');
SELECT is(h.try('SET SESSION work_mem = ''2MB'''), 'ERROR 42501', 'member: SET SESSION work_mem = 2MB: 42501');
SELECT is(h.try('SET LOCAL work_mem = ''1GB'''), 'ERROR 42501', 'member: SET LOCAL work_mem: 42501');
SELECT is(h.val('SELECT set_config(''work_mem'', ''1GB'', false)'), 'ERROR 42501', 'member: set_config(work_mem): 42501');
SELECT is(h.val('SELECT set_config(''work_mem'', ''1GB'', true)'), 'ERROR 42501', 'member: set_config(work_mem, local): 42501');
SELECT is(h.val('SELECT an_own.wm()'), 'ERROR 42501', 'member: its own function with SET work_mem = 1GB: 42501');
SELECT is(h.val('SELECT h.wm_high()'), 'ERROR 42501', 'member: a function with SET work_mem = 1GB: 42501');
SELECT is(h.val('SELECT h.wm_high_definer()'), 'ERROR 42501', 'member: a superuser''s SECURITY DEFINER function with SET work_mem = 1GB: 42501');
SELECT is(h.val('SELECT h.st_none_definer()'), 'ERROR 42501', 'member: a superuser''s SECURITY DEFINER function with SET statement_timeout = 0: 42501');
SELECT is(h.try('SET statement_timeout = 0'), 'ERROR 42501', 'member: SET statement_timeout = 0: 42501');
SELECT is(h.try('SET statement_timeout = ''1h'''), 'ERROR 42501', 'member: SET statement_timeout = 1h: 42501');
SELECT is(h.val('SELECT set_config(''statement_timeout'', ''0'', false)'), 'ERROR 42501', 'member: set_config(statement_timeout, 0): 42501');
SELECT is(h.try('SET temp_file_limit = -1'), 'ERROR 42501', 'member: SET temp_file_limit = -1: 42501');
SELECT is(h.try('ALTER ROLE an_evil SET work_mem = ''1GB'''), 'ERROR 42501', 'member: ALTER ROLE itself SET work_mem: 42501');
SELECT is(h.try(format('ALTER ROLE an_evil IN DATABASE %I SET work_mem = ''1GB''', current_database())), 'ERROR 42501',
	'member: ALTER ROLE itself IN DATABASE SET work_mem: 42501');
SELECT is(h.try(format('ALTER DATABASE %I SET work_mem = ''1GB''', current_database())), 'ERROR 42501',
	'member: ALTER DATABASE SET work_mem: 42501');
SELECT h.run('ALTER FUNCTION an_own.wm_low() SET work_mem = ''2GB''') \g /dev/null
SELECT is(h.val('SELECT an_own.wm_low()'), 'ERROR 42501',
	'member: its own function, SET clause changed to 2GB with ALTER FUNCTION (if that passes), is refused when it runs');
RESET work_mem;
SELECT is(current_setting('work_mem'), '1MB', 'member: after RESET work_mem the next statement is capped again');
-- within one statement: RESET and its spellings go back to the session's
-- reset value (the server's 4MB), above the limit, for the rest of it
SELECT is(current_setting('work_mem', true), '1MB', 'control: 1MB before');
DO $$ BEGIN RESET work_mem; PERFORM set_config('an.wm', current_setting('work_mem'), false); END $$;
SELECT ok(pg_size_bytes(current_setting('an.wm')) <= pg_size_bytes('1MB'),
	'member: RESET work_mem inside a statement does not lift the 1MB cap for the rest of it (got ' || current_setting('an.wm') || ')');
DO $$ BEGIN SET work_mem TO DEFAULT; PERFORM set_config('an.wm', current_setting('work_mem'), false); END $$;
SELECT ok(pg_size_bytes(current_setting('an.wm')) <= pg_size_bytes('1MB'),
	'member: SET work_mem TO DEFAULT inside a statement does not lift the cap (got ' || current_setting('an.wm') || ')');
DO $$ BEGIN RESET ALL; PERFORM set_config('an.wm', current_setting('work_mem'), false); END $$;
SELECT ok(pg_size_bytes(current_setting('an.wm')) <= pg_size_bytes('1MB'),
	'member: RESET ALL inside a statement does not lift the cap (got ' || current_setting('an.wm') || ')');
SELECT set_config('an.wm', (SELECT set_config('work_mem', NULL, false)), false) \g /dev/null
SELECT ok(pg_size_bytes(current_setting('an.wm')) <= pg_size_bytes('1MB'),
	'member: set_config(work_mem, NULL) inside a statement does not lift the cap (got ' || current_setting('an.wm') || ')');
RESET an.wm;
-- a procedure that ends its transaction: the caps were SET LOCAL, so
-- after COMMIT the rest of the CALL would run with the session's values
CALL h.commit_caps();
SELECT is(current_setting('an.caps'), '1MB 10MB',
	'member: after COMMIT inside a CALL, work_mem and temp_file_limit are still capped for the rest of it');
RESET an.caps;
SELECT is(current_setting('statement_timeout'), '2s', 'member: statement_timeout is capped to 2s');
SELECT is(current_setting('temp_file_limit'), '10MB', 'member: temp_file_limit is capped to 10MB');
SELECT is((SELECT count(*)::int FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'an_evil'), 0,
	'no role setting of an_evil was stored');
RESET ROLE;

-- a pool raises before entering a tenant, or in the statement that enters it
SET ROLE an_pool;
SET work_mem = '1GB';
SET statement_timeout = 0;
SELECT tenant_iso.set_tenant('an_a') \g /dev/null
SELECT is(current_setting('work_mem') || ' ' || current_setting('statement_timeout'), '1MB 2s',
	'a pool that raised work_mem and statement_timeout before set_tenant(an_a) is capped in an_a');
SELECT tenant_iso.reset_tenant() \g /dev/null
SET hash_mem_multiplier = 1000;
SET max_parallel_workers_per_gather = 64;
SET maintenance_work_mem = '2GB';
SELECT tenant_iso.set_tenant('an_a') \g /dev/null
SELECT is(current_setting('hash_mem_multiplier') || ' ' || current_setting('max_parallel_workers_per_gather')
		  || ' ' || (current_setting('maintenance_work_mem') <> '2GB')::text,
		  reset_val_hm || ' ' || reset_val_pw || ' true',
	'a pool that raised hash_mem_multiplier, parallel workers and maintenance_work_mem before set_tenant(an_a) is back at the reset values in an_a')
  FROM (SELECT (SELECT reset_val FROM pg_settings WHERE name = 'hash_mem_multiplier') AS reset_val_hm,
			   (SELECT reset_val FROM pg_settings WHERE name = 'max_parallel_workers_per_gather') AS reset_val_pw) r;
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT is(current_setting('hash_mem_multiplier'), '1000', 'out of the context the pool''s own hash_mem_multiplier again');
RESET hash_mem_multiplier;
RESET max_parallel_workers_per_gather;
RESET maintenance_work_mem;
SELECT set_config('work_mem', '1GB', false), tenant_iso.set_tenant('an_a') \g /dev/null
SELECT is(current_setting('work_mem'), '1MB', 'a raise in the very statement that entered an_a is capped from the next statement');
SELECT clock_timestamp() AS an_t0 \gset
SELECT is(h.cancel('SELECT pg_sleep(5)'), 'ERROR 57014', 'the pool''s statement_timeout 0 does not lift an_a''s limit: cancelled');
SELECT ok(clock_timestamp() - :'an_t0'::timestamptz < interval '4 s', '... after about 2 s');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT is(current_setting('work_mem'), '1GB', 'control: outside the context the pool has its own 1GB');
RESET work_mem;
RESET statement_timeout;
RESET ROLE;

-- =====================================================================
-- 5. set_tenant_limits() and the views under a hostile search_path
-- =====================================================================
-- The attacker an_evil (a member of an_a) owns a schema of shadows of
-- every function, operator and type name the paths use (COALESCE, EXISTS,
-- IS NULL and the like are syntax, not names), and puts copies into a
-- PUBLIC-writable public.  Each shadow records current_user and tries to
-- make the attacker superuser.  A careless administrator, and a switcher
-- granted EXECUTE, then call the paths with search_path = an_shadow,
-- public, pg_catalog; the statements themselves are qualified, so only
-- the paths can reach a shadow.
GRANT CREATE ON SCHEMA public TO PUBLIC;
CREATE SCHEMA an_shadow AUTHORIZATION an_evil;
GRANT USAGE ON SCHEMA an_shadow TO PUBLIC;
CREATE TABLE public.an_log (who text, fn text);
GRANT INSERT, SELECT ON public.an_log TO PUBLIC;
CREATE TABLE public.an_out (step text, val text);
GRANT INSERT, SELECT ON public.an_out TO PUBLIC;

SET ROLE an_evil;
CREATE FUNCTION an_shadow.an_trap(fn text) RETURNS void LANGUAGE plpgsql AS $b$
BEGIN
	INSERT INTO public.an_log VALUES (current_user, fn);
	BEGIN
		EXECUTE 'ALTER ROLE an_evil SUPERUSER';
	EXCEPTION WHEN OTHERS THEN NULL;
	END;
END $b$;
DO $d$
DECLARE
	r record;
BEGIN
	-- operators: (operator, argument type, result type, function it wraps)
	FOR r IN SELECT * FROM (VALUES
		('=', 'text', 'boolean', 'texteq'), ('<>', 'text', 'boolean', 'textne'),
		('||', 'text', 'text', 'textcat'),
		('=', 'integer', 'boolean', 'int4eq'), ('<', 'integer', 'boolean', 'int4lt'),
		('>', 'integer', 'boolean', 'int4gt'), ('<=', 'integer', 'boolean', 'int4le'),
		('>=', 'integer', 'boolean', 'int4ge'), ('<>', 'integer', 'boolean', 'int4ne'),
		('=', 'bigint', 'boolean', 'int8eq'), ('<', 'bigint', 'boolean', 'int8lt'),
		('>', 'bigint', 'boolean', 'int8gt'), ('/', 'bigint', 'bigint', 'int8div'),
		('=', 'numeric', 'boolean', 'numeric_eq'), ('<>', 'numeric', 'boolean', 'numeric_ne'),
		('<', 'numeric', 'boolean', 'numeric_lt'), ('>', 'numeric', 'boolean', 'numeric_gt'),
		('<=', 'numeric', 'boolean', 'numeric_le'), ('>=', 'numeric', 'boolean', 'numeric_ge'),
		('%', 'numeric', 'numeric', 'numeric_mod'), ('/', 'numeric', 'numeric', 'numeric_div'),
		('*', 'numeric', 'numeric', 'numeric_mul'), ('+', 'numeric', 'numeric', 'numeric_add'),
		('=', 'interval', 'boolean', 'interval_eq'), ('<', 'interval', 'boolean', 'interval_lt'),
		('>', 'interval', 'boolean', 'interval_gt'), ('<=', 'interval', 'boolean', 'interval_le'),
		('>=', 'interval', 'boolean', 'interval_ge')) v(op, arg, res, fn)
	LOOP
		EXECUTE format('CREATE FUNCTION an_shadow.%I(%s, %s) RETURNS %s LANGUAGE plpgsql AS $b$ '
					   'BEGIN PERFORM an_shadow.an_trap(%L); RETURN pg_catalog.%I($1, $2); END $b$',
					   'an_' || r.fn, r.arg, r.arg, r.res, r.arg || ' ' || r.op, r.fn);
		EXECUTE format('CREATE OPERATOR an_shadow.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = an_shadow.%I)',
					   r.op, r.arg, r.arg, 'an_' || r.fn);
	END LOOP;
	-- functions: (schema, name, arguments, result, the call it wraps)
	FOR r IN SELECT * FROM (VALUES
		('an_shadow', 'btrim', 'text', 'text', 'pg_catalog.btrim($1)'),
		('an_shadow', 'trunc', 'numeric', 'numeric', 'pg_catalog.trunc($1)'),
		('an_shadow', 'format', 'text', 'text', 'pg_catalog.format($1)'),
		('an_shadow', 'format', 'text, text', 'text', 'pg_catalog.format($1, $2)'),
		('an_shadow', 'format', 'text, text, text', 'text', 'pg_catalog.format($1, $2, $3)'),
		('an_shadow', 'format', 'text, text, bigint', 'text', 'pg_catalog.format($1, $2, $3)'),
		('an_shadow', 'format', 'text, bigint', 'text', 'pg_catalog.format($1, $2)'),
		('an_shadow', 'pg_size_bytes', 'text', 'bigint', 'pg_catalog.pg_size_bytes($1)'),
		('an_shadow', 'now', '', 'timestamptz', 'pg_catalog.now()'),
		('an_shadow', 'text', 'bigint', 'text', 'pg_catalog.text($1::pg_catalog.text)'),
		('an_shadow', 'numeric', 'bigint', 'numeric', 'pg_catalog.numeric($1)'),
		('an_shadow', 'int8', 'numeric', 'bigint', 'pg_catalog.int8($1)'),
		('an_shadow', 'float8', 'numeric', 'float8', 'pg_catalog.float8($1)'),
		('an_shadow', 'current_setting', 'text', 'text', 'pg_catalog.current_setting($1)'),
		('an_shadow', 'pg_has_role', 'oid, oid, text', 'boolean', 'pg_catalog.pg_has_role($1, $2, $3)'),
		('an_shadow', 'string_agg', 'text, text', 'text', 'NULL'),
		-- copies in public, exact signatures only
		('public', 'btrim', 'text', 'text', 'pg_catalog.btrim($1)'),
		('public', 'trunc', 'numeric', 'numeric', 'pg_catalog.trunc($1)'),
		('public', 'pg_size_bytes', 'text', 'bigint', 'pg_catalog.pg_size_bytes($1)'),
		('public', 'now', '', 'timestamptz', 'pg_catalog.now()'),
		('public', 'format', 'text, text', 'text', 'pg_catalog.format($1, $2)')) v(nsp, name, args, res, body)
	LOOP
		CONTINUE WHEN r.name = 'string_agg';
		EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql AS $b$ '
					   'BEGIN PERFORM an_shadow.an_trap(%L); RETURN %s; END $b$',
					   r.nsp, r.name, r.args, r.res, r.nsp || '.' || r.name || '(' || r.args || ')', r.body);
	END LOOP;
END
$d$;
CREATE FUNCTION public.an_numeric_mod(numeric, numeric) RETURNS numeric LANGUAGE plpgsql AS $b$
	BEGIN PERFORM an_shadow.an_trap('public numeric %'); RETURN pg_catalog.numeric_mod($1, $2); END $b$;
CREATE OPERATOR public.% (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = public.an_numeric_mod);
CREATE FUNCTION public.an_texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN PERFORM an_shadow.an_trap('public text ='); RETURN pg_catalog.texteq($1, $2); END $b$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.an_texteq);
-- domains named like the types that casts name; their CHECK runs a trap
CREATE FUNCTION an_shadow.an_chk(v anyelement) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN PERFORM an_shadow.an_trap(pg_catalog.textcat('cast ', pg_catalog.pg_typeof(v)::pg_catalog.text)); RETURN true; END $b$;
CREATE DOMAIN an_shadow.text AS pg_catalog.text CHECK (an_shadow.an_chk(VALUE));
CREATE DOMAIN an_shadow.numeric AS pg_catalog.numeric CHECK (an_shadow.an_chk(VALUE));
CREATE DOMAIN an_shadow.bigint AS pg_catalog.int8 CHECK (an_shadow.an_chk(VALUE));
CREATE DOMAIN an_shadow.int8 AS pg_catalog.int8 CHECK (an_shadow.an_chk(VALUE));
CREATE DOMAIN an_shadow.interval AS pg_catalog.interval CHECK (an_shadow.an_chk(VALUE));
CREATE DOMAIN an_shadow.regclass AS pg_catalog.regclass CHECK (an_shadow.an_chk(VALUE));

-- positive control: the shadows are live for whoever runs with the path
SET search_path = an_shadow, public, pg_catalog;
SELECT 7::numeric % 2::numeric, btrim(' x '), pg_size_bytes('1MB'), now(), 'a'::text = 'b', '1 s'::interval > '0'::interval \g /dev/null
RESET search_path;
SELECT ok((SELECT count(DISTINCT fn) FROM public.an_log) >= 6,
	'control: the shadows (%, btrim, pg_size_bytes, now, =, >, domain casts) run under the hostile search_path');
RESET ROLE;
DELETE FROM public.an_log;

-- the careless administrator, under the hostile path: every branch of
-- set_tenant_limits (the errors included, top level, so that no helper of
-- this file resolves names under the path)
SET search_path = an_shadow, public, pg_catalog;
SELECT tenant_iso.set_tenant_limits('an_b', 2, '3 s', '2MB', '1GB', 50) \g /dev/null
INSERT INTO public.an_out SELECT 'admin', pg_catalog.concat_ws('|', l.max_active_statements, l.statement_timeout, l.work_mem,
															 l.temp_file_limit, l.max_statements_per_second)
	FROM tenant_iso.limits l WHERE l.tenant_id OPERATOR(pg_catalog.=) 'an_b';
SELECT tenant_iso.set_tenant_limits('an_b', work_mem => '1048576kB', temp_file_limit => '-1') \g /dev/null
INSERT INTO public.an_out SELECT 'admin2', pg_catalog.concat_ws('|', l.work_mem, l.temp_file_limit)
	FROM tenant_iso.limits l WHERE l.tenant_id OPERATOR(pg_catalog.=) 'an_b';
SELECT tenant_iso.set_tenant_limits('an_b', work_mem => '100kB') \g /dev/null
SELECT tenant_iso.set_tenant_limits('an_b') \g /dev/null
INSERT INTO public.an_out SELECT 'admin3', pg_catalog.count(*)::pg_catalog.text
	FROM tenant_iso.limits l WHERE l.tenant_id OPERATOR(pg_catalog.=) 'an_b';
\set ON_ERROR_STOP 0
\echo '# the next 8 statements fail on purpose (bad limits under a hostile search_path)'
SELECT tenant_iso.set_tenant_limits(NULL, 1);
SELECT tenant_iso.set_tenant_limits('an_nobody', 1);
SELECT tenant_iso.set_tenant_limits('an_b', -1);
SELECT tenant_iso.set_tenant_limits('an_b', statement_timeout => '-1 s');
SELECT tenant_iso.set_tenant_limits('an_b', max_statements_per_second => 0);
SELECT tenant_iso.set_tenant_limits('an_b', work_mem => 'lots');
SELECT tenant_iso.set_tenant_limits('an_b', work_mem => '1500 bytes');
SELECT tenant_iso.set_tenant_limits('an_b', temp_file_limit => '-2');
\set ON_ERROR_STOP 1
SELECT tenant_iso.set_tenant_limits('an_b', 5, work_mem => '2MB') \g /dev/null
-- the views and the reset, read by the administrator under the path
INSERT INTO public.an_out SELECT 'limits', pg_catalog.count(*)::pg_catalog.text FROM tenant_iso.tenant_limits;
INSERT INTO public.an_out SELECT 'stats', pg_catalog.count(*)::pg_catalog.text FROM tenant_iso.tenant_stats;
INSERT INTO public.an_out SELECT 'queries', pg_catalog.count(*)::pg_catalog.text FROM tenant_iso.tenant_query_stats;
SELECT tenant_iso.reset_tenant_stats('an_b') \g /dev/null
RESET search_path;
SELECT is((SELECT count(*)::int FROM public.an_log), 0,
	'no shadow ran while a superuser called set_tenant_limits (every branch), the views and reset_tenant_stats under the hostile path');
SELECT is((SELECT val FROM public.an_out WHERE step = 'admin'), '2|00:00:03|2MB|1GB|50',
	'set_tenant_limits still did its job under the hostile path');
SELECT is((SELECT val FROM public.an_out WHERE step = 'admin2') || ' ' || (SELECT val FROM public.an_out WHERE step = 'admin3'),
	'1GB|-1 0', '... the normalization and the delete too');
SELECT ok((SELECT val::int FROM public.an_out WHERE step = 'limits') >= 2 AND (SELECT val::int FROM public.an_out WHERE step = 'stats') >= 3
		  AND (SELECT val::int FROM public.an_out WHERE step = 'queries') >= 1, '... and the views returned their rows');

-- the switcher granted EXECUTE, outside any context, under the same path
DELETE FROM public.an_out;
SET ROLE an_pool2;
SET search_path = an_shadow, public, pg_catalog;
SELECT tenant_iso.set_tenant_limits('an_b', 3, '4 s', '3MB', '512MB', 20.5) \g /dev/null
\set ON_ERROR_STOP 0
\echo '# the next 3 statements fail on purpose (bad limits by the switcher)'
SELECT tenant_iso.set_tenant_limits('an_nobody', 1);
SELECT tenant_iso.set_tenant_limits('an_b', work_mem => '32kB');
SELECT tenant_iso.set_tenant_limits('an_b', max_statements_per_second => 1e10);
\set ON_ERROR_STOP 1
SELECT tenant_iso.reset_tenant_stats('an_b') \g /dev/null
RESET search_path;
RESET ROLE;
SELECT is((SELECT count(*)::int FROM public.an_log), 0,
	'no shadow ran while a switcher with EXECUTE called set_tenant_limits and reset_tenant_stats under the hostile path');
SELECT is((SELECT concat_ws('|', max_active_statements, statement_timeout, work_mem, temp_file_limit, max_statements_per_second)
			 FROM tenant_iso.limits WHERE tenant_id = 'an_b'), '3|00:00:04|3MB|512MB|20.5',
	'the switcher''s call did its job');

-- the member itself reads the views under its own hostile path
SET ROLE an_evil;
SET search_path = an_shadow, public, pg_catalog;
INSERT INTO public.an_out SELECT 'evil', pg_catalog.count(*)::pg_catalog.text FROM tenant_iso.tenant_limits;
INSERT INTO public.an_out SELECT 'evil', pg_catalog.count(*)::pg_catalog.text FROM tenant_iso.tenant_query_stats;
RESET search_path;
SELECT is((SELECT array_agg(DISTINCT who) FROM public.an_log), NULL,
	'the views read by the member under its hostile path ran no shadow (not even as the member)');
RESET ROLE;
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'an_evil'), false, 'the attacker did not become superuser');
SELECT is(tenant_iso.set_tenant_limits('an_b', max_active_statements => 5, work_mem => '2MB')::text, '', 'an_b''s limits back');
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- =====================================================================
-- 6. A tenant of the same name in another database is another tenant
-- =====================================================================
-- Tenants are registered per database.  A member of an_a here must not see
-- (or be charged with) the activity of a tenant "an_a" registered in
-- another database of the cluster, and a reset there must not touch ours.
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT format('host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable', current_setting('port')) AS an_pg \gset
SELECT format('host=127.0.0.1 port=%s user=postgres dbname=an_peer sslmode=disable', current_setting('port')) AS an_peer \gset
SELECT dblink_exec(:'an_pg', 'DROP DATABASE IF EXISTS an_peer WITH (FORCE)') \g /dev/null
SELECT dblink_exec(:'an_pg', 'CREATE DATABASE an_peer') \g /dev/null
SELECT dblink_exec(:'an_peer', $$CREATE EXTENSION tenant_iso; DO 'BEGIN PERFORM tenant_iso.create_tenant(''an_a''); END'$$) \g /dev/null
SELECT statements AS an_st0, sessions_in_context AS an_sess0 FROM tenant_iso.tenant_stats WHERE tenant = 'an_a' \gset
CREATE FUNCTION h.qid(q text) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
	j json;
BEGIN
	EXECUTE 'EXPLAIN (VERBOSE, FORMAT JSON) ' || q INTO j;
	RETURN (j -> 0 ->> 'Query Identifier')::bigint;
END
$f$;
SELECT h.qid('SELECT g FROM generate_series(1, 7) g WHERE g > 0 AND g < 100 AND g <> 55') AS an_qid \gset
SELECT dblink_connect('an_p', :'an_peer') \g /dev/null
SELECT dblink_exec('an_p', $$DO 'BEGIN PERFORM tenant_iso.set_tenant(''an_a''); END'$$) \g /dev/null
SELECT count(*) FROM dblink('an_p', 'SELECT g FROM generate_series(1, 7) g WHERE g > 0 AND g < 100 AND g <> 55') AS x(g int) \g /dev/null
SELECT count(*) FROM dblink('an_p', 'SELECT g FROM generate_series(1, 7) g WHERE g > 0 AND g < 100 AND g <> 55') AS x(g int) \g /dev/null
SELECT count(*) FROM dblink('an_p', 'SELECT g FROM generate_series(1, 7) g WHERE g > 0 AND g < 100 AND g <> 55') AS x(g int) \g /dev/null
SELECT is((SELECT statements FROM tenant_iso.tenant_stats WHERE tenant = 'an_a'), :'an_st0'::bigint,
	'statements of "an_a" of another database do not count for this database''s an_a');
SELECT is((SELECT sessions_in_context FROM tenant_iso.tenant_stats WHERE tenant = 'an_a'), :'an_sess0'::int,
	'a session in "an_a" of another database is not in this database''s an_a');
SELECT is((SELECT count(*)::int FROM tenant_iso.tenant_query_stats WHERE tenant = 'an_a' AND queryid = :'an_qid'::bigint), 0,
	'the query of "an_a" of another database is not among this database''s an_a queries');
SET ROLE an_ma;
SELECT is(h.val(format('SELECT count(*) FROM tenant_iso.tenant_query_stats WHERE queryid = %s', :'an_qid')), '0',
	'the member of an_a here does not see the other database''s an_a query');
RESET ROLE;
SELECT dblink_exec('an_p', $$DO 'BEGIN PERFORM tenant_iso.reset_tenant(); END'$$) \g /dev/null
SELECT dblink_exec('an_p', $$DO 'BEGIN PERFORM tenant_iso.reset_tenant_stats(''an_a''); END'$$) \g /dev/null
SELECT ok((SELECT statements FROM tenant_iso.tenant_stats WHERE tenant = 'an_a') >= :'an_st0'::bigint AND :'an_st0'::bigint > 0,
	'reset_tenant_stats(''an_a'') in another database leaves this database''s an_a alone');
SELECT dblink_disconnect('an_p') \g /dev/null
SELECT dblink_exec(:'an_pg', 'DROP DATABASE IF EXISTS an_peer WITH (FORCE)') \g /dev/null

-- =====================================================================
-- 7. A noisy member cannot run past max_active_statements by wrapping
--    its statements in a utility (DO, CREATE TABLE AS, CALL)
-- =====================================================================
-- an_b: max_active_statements = 1.  A second backend of an_b holds the
-- slot with a 2.5 s statement; a statement of ours must then wait and fail
-- (admission_timeout 300 ms).  First with a plain SELECT (control), then
-- with the long statement wrapped in DO, CREATE TABLE AS and CALL.
SELECT tenant_iso.set_tenant_limits('an_b', max_active_statements => 1) \g /dev/null
CREATE PROCEDURE h.nap(s float8) LANGUAGE plpgsql AS $p$ BEGIN PERFORM pg_sleep(s); END $p$;
SELECT format('host=127.0.0.1 port=%s user=postgres dbname=%s sslmode=disable', current_setting('port'), current_database()) AS an_self \gset
SELECT dblink_connect('an_q', :'an_self') \g /dev/null
SELECT dblink_exec('an_q', 'SET ROLE an_mb') \g /dev/null
SET tenant_iso.admission_timeout = '300ms';

SELECT dblink_send_query('an_q', 'SELECT pg_sleep(2.5)') \g /dev/null
SELECT pg_sleep(0.7) \g /dev/null
SELECT h.val('SELECT active_statements FROM tenant_iso.tenant_stats WHERE tenant = ''an_b''') AS an_act \gset
SET ROLE an_mb;
\set ON_ERROR_STOP 0
\echo '# the next statement may fail on purpose (admission)'
SELECT 1 \g /dev/null
\set an_state :SQLSTATE
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT is(:'an_act' || ' ' || :'an_state', '1 53300',
	'control: a SELECT of an_b holds the slot and our SELECT fails with 53300');

SELECT dblink_send_query('an_q', 'DO $x$ BEGIN PERFORM pg_sleep(2.5); END $x$') \g /dev/null
SELECT pg_sleep(0.7) \g /dev/null
SELECT h.val('SELECT active_statements FROM tenant_iso.tenant_stats WHERE tenant = ''an_b''') AS an_act \gset
SET ROLE an_mb;
\set ON_ERROR_STOP 0
\echo '# the next statement may fail on purpose (admission)'
SELECT 1 \g /dev/null
\set an_state :SQLSTATE
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT is(:'an_act' || ' ' || :'an_state', '1 53300',
	'a DO block of an_b running 2.5 s holds the slot too: our SELECT fails with 53300');

SELECT dblink_send_query('an_q', 'CREATE TEMP TABLE an_ctas AS SELECT pg_sleep(2.5)::text AS z') \g /dev/null
SELECT pg_sleep(0.7) \g /dev/null
SELECT h.val('SELECT active_statements FROM tenant_iso.tenant_stats WHERE tenant = ''an_b''') AS an_act \gset
SET ROLE an_mb;
\set ON_ERROR_STOP 0
\echo '# the next statement may fail on purpose (admission)'
SELECT 1 \g /dev/null
\set an_state :SQLSTATE
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT is(:'an_act' || ' ' || :'an_state', '1 53300',
	'a CREATE TABLE AS of an_b running 2.5 s holds the slot too: our SELECT fails with 53300');

SELECT dblink_send_query('an_q', 'CALL h.nap(2.5)') \g /dev/null
SELECT pg_sleep(0.7) \g /dev/null
SELECT h.val('SELECT active_statements FROM tenant_iso.tenant_stats WHERE tenant = ''an_b''') AS an_act \gset
SET ROLE an_mb;
\set ON_ERROR_STOP 0
\echo '# the next statement may fail on purpose (admission)'
SELECT 1 \g /dev/null
\set an_state :SQLSTATE
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT is(:'an_act' || ' ' || :'an_state', '1 53300',
	'a CALL of an_b running 2.5 s holds the slot too: our SELECT fails with 53300');

SELECT dblink_send_query('an_q', 'BEGIN; DO $x$ DECLARE c refcursor := ''an_hc''; BEGIN OPEN c FOR SELECT pg_sleep(2.5); END $x$; FETCH ALL FROM an_hc; COMMIT') \g /dev/null
SELECT pg_sleep(0.7) \g /dev/null
SELECT h.val('SELECT active_statements FROM tenant_iso.tenant_stats WHERE tenant = ''an_b''') AS an_act \gset
SET ROLE an_mb;
\set ON_ERROR_STOP 0
\echo '# the next statement may fail on purpose (admission)'
SELECT 1 \g /dev/null
\set an_state :SQLSTATE
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT is(:'an_act' || ' ' || :'an_state', '1 53300',
	'a top-level FETCH from a cursor that a DO block opened holds the slot too: our SELECT fails with 53300');

SELECT dblink_send_query('an_q', 'CREATE TEMP TABLE an_trg (x int); CREATE FUNCTION pg_temp.an_tf() RETURNS trigger LANGUAGE plpgsql AS $x$ BEGIN PERFORM pg_sleep(2.5); RETURN NULL; END $x$; CREATE TRIGGER an_tt AFTER INSERT ON an_trg FOR EACH ROW EXECUTE FUNCTION pg_temp.an_tf(); INSERT INTO an_trg VALUES (1)') \g /dev/null
SELECT pg_sleep(0.7) \g /dev/null
SELECT h.val('SELECT active_statements FROM tenant_iso.tenant_stats WHERE tenant = ''an_b''') AS an_act \gset
SET ROLE an_mb;
\set ON_ERROR_STOP 0
\echo '# the next statement may fail on purpose (admission)'
SELECT 1 \g /dev/null
\set an_state :SQLSTATE
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT is(:'an_act' || ' ' || :'an_state', '1 53300',
	'an AFTER trigger running 2.5 s (ExecutorFinish) holds the slot too: our SELECT fails with 53300');

SELECT dblink_disconnect('an_q') \g /dev/null
RESET tenant_iso.admission_timeout;
SELECT tenant_iso.set_tenant_limits('an_b', max_active_statements => 5, work_mem => '2MB') \g /dev/null

-- =====================================================================
-- 8. A careless administrator granted a's member a role of tenant b: the
--    session (a) running as b is in a conflicting context; it must not
--    escape the limits both tenants have
-- =====================================================================
-- an_a: work_mem 1MB, statement_timeout 2 s; an_b: work_mem 2MB
GRANT an_mb TO an_ma;
SET SESSION AUTHORIZATION an_ma;
SET ROLE an_mb;
SELECT is(tenant_iso.current_tenant(), NULL, 'control: a session of an_a running as an_b''s member has no tenant (conflict)');
SELECT is(h.try('SELECT count(*) FROM public.an_t'), 'ERROR 42501', 'control: ... and reads no tenant''s rows');
SELECT ok(pg_size_bytes(current_setting('work_mem')) <= pg_size_bytes('2MB'),
	'in the conflict work_mem stays within the limits of both tenants (got ' || current_setting('work_mem') || ')');
SELECT is(h.try('SET work_mem = ''1GB'''), 'ERROR 42501', 'in the conflict SET work_mem = 1GB is refused');
RESET ROLE;
RESET SESSION AUTHORIZATION;
REVOKE an_mb FROM an_ma;
SET client_min_messages = warning;

-- =====================================================================
-- 9. Careless administrators: wrappers and grants that must not widen
--    what a tenant can do
-- =====================================================================
CREATE FUNCTION public.an_admin_stats() RETURNS text LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $f$
	SELECT coalesce(string_agg(DISTINCT coalesce(tenant, '<null>'), ' '), 'none') FROM tenant_iso.tenant_stats
$f$;
CREATE FUNCTION public.an_admin_limits(t text, wm text) RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $f$
	SELECT tenant_iso.set_tenant_limits(t, work_mem => wm)
$f$;
CREATE FUNCTION public.an_admin_reset() RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $f$
	SELECT tenant_iso.reset_tenant_stats()
$f$;
GRANT EXECUTE ON FUNCTION public.an_admin_stats(), public.an_admin_limits(text, text), public.an_admin_reset() TO PUBLIC;
GRANT pg_read_all_stats TO an_ma;
SET ROLE an_ma;
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_stats'), 'an_a', 'a member granted pg_read_all_stats still sees only its tenant');
SELECT is(h.seen('SELECT tenant FROM tenant_iso.tenant_query_stats'), 'an_a', '... in tenant_query_stats too');
SELECT is(h.val('SELECT public.an_admin_stats()'), 'an_a',
	'a superuser''s SECURITY DEFINER monitoring function called by the member shows only its tenant');
SELECT is(h.try('SELECT public.an_admin_limits(''an_a'', ''1GB'')'), 'ERROR 42501',
	'a superuser''s SECURITY DEFINER wrapper of set_tenant_limits, called by the member: 42501');
SELECT is(h.try('SELECT public.an_admin_reset()'), 'ERROR 42501',
	'a superuser''s SECURITY DEFINER wrapper of reset_tenant_stats, called by the member: 42501');
RESET ROLE;
REVOKE pg_read_all_stats FROM an_ma;
SELECT is((SELECT work_mem FROM tenant_iso.limits WHERE tenant_id = 'an_a'), '1MB', 'an_a''s work_mem limit is still 1MB');
DROP FUNCTION public.an_admin_stats(), public.an_admin_limits(text, text), public.an_admin_reset();

-- =====================================================================
-- 10. A pool cannot get a statement of a limited tenant admitted under
--     another tenant through statements that failed in a savepoint
-- =====================================================================
-- an_b: max_active_statements = 1, its slot held by another backend; the
-- pool first lets two statements of an_a (no limit) fail inside
-- savepoints, then tries three statements of an_b: each must wait and fail
SELECT tenant_iso.set_tenant_limits('an_b', max_active_statements => 1) \g /dev/null
SELECT dblink_connect('an_q', :'an_self') \g /dev/null
SELECT dblink_exec('an_q', 'SET ROLE an_mb') \g /dev/null
SET tenant_iso.admission_timeout = '300ms';
SELECT dblink_send_query('an_q', 'SELECT pg_sleep(3)') \g /dev/null
SELECT pg_sleep(0.7) \g /dev/null
SET ROLE an_pool;
BEGIN;
SELECT tenant_iso.set_tenant('an_a', local => true) \g /dev/null
\set ON_ERROR_STOP 0
\echo '# the next statements fail on purpose (division by zero, then admission)'
SAVEPOINT s;
SELECT g, 1 / (random() * 0)::int FROM generate_series(1, 3) g;
ROLLBACK TO s;
SAVEPOINT s;
SELECT g, 1 / (random() * 0)::int FROM generate_series(1, 3) g;
ROLLBACK TO s;
SELECT tenant_iso.set_tenant('an_b', local => true) \g /dev/null
SAVEPOINT s;
SELECT g FROM generate_series(1, 5) g \g /dev/null
\set an_s1 :SQLSTATE
ROLLBACK TO s;
SAVEPOINT s;
SELECT g FROM generate_series(1, 5) g \g /dev/null
\set an_s2 :SQLSTATE
ROLLBACK TO s;
SAVEPOINT s;
SELECT g FROM generate_series(1, 5) g \g /dev/null
\set an_s3 :SQLSTATE
ROLLBACK TO s;
\set ON_ERROR_STOP 1
COMMIT;
RESET ROLE;
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('an_q') AS x(v text) \g /dev/null
SELECT dblink_disconnect('an_q') \g /dev/null
RESET tenant_iso.admission_timeout;
SELECT is(:'an_s1' || ' ' || :'an_s2' || ' ' || :'an_s3', '53300 53300 53300',
	'every statement of an_b waits for an_b''s slot and fails, whatever failed before in the transaction');
SELECT tenant_iso.set_tenant_limits('an_b', max_active_statements => 5, work_mem => '2MB') \g /dev/null

SELECT * FROM finish();

-- ---------------------------------------------------------------------
-- Cleanup
-- ---------------------------------------------------------------------
-- the attacker's shadows first (some are in public)
DROP OWNED BY an_evil CASCADE;
DROP TABLE public.an_t, public.an_log, public.an_out;
DROP SCHEMA an_bs CASCADE;
DROP SCHEMA IF EXISTS an_own CASCADE;
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['an_ma', 'an_mb', 'an_evil'] LOOP
		PERFORM tenant_iso.remove_member(r::regrole);
	END LOOP;
	FOREACH r IN ARRAY ARRAY['an_pool', 'an_pool2', 'an_reader'] LOOP
		PERFORM tenant_iso.revoke_switch(r::regrole);
	END LOOP;
	FOREACH r IN ARRAY ARRAY['an_ma', 'an_mb', 'an_evil', 'an_pool', 'an_pool2', 'an_plain', 'an_reader'] LOOP
		EXECUTE pg_catalog.format('DROP OWNED BY %I CASCADE', r);
		EXECUTE pg_catalog.format('DROP ROLE %I', r);
	END LOOP;
END
$$;
DELETE FROM tenant_iso.tenants WHERE tenant_id IN ('an_a', 'an_b');
