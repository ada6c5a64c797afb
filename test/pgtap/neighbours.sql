-- test/pgtap/neighbours.sql
--
-- Noisy neighbours (issue 14), the functional side: the counters of
-- tenant_stats against known workloads in one backend (statements,
-- rows_read, rows_written per tenant and for the row tenant = NULL), a
-- pooled connection that switches tenant per session and per transaction
-- (set_tenant(x, local => true)) with no cross-attribution, a member role,
-- prepared statements and cursors, an erroring statement; the _current /
-- _previous / total columns across periods (tenant_iso.stats_period);
-- sessions_in_context and active_statements; reset_tenant_stats();
-- tenant_query_stats; set_tenant_limits() (its refusals, replacement, the
-- view tenant_limits with tenant_iso.default_limits); the setting caps
-- (work_mem, statement_timeout, temp_file_limit) and a statement cancelled
-- by the tenant's statement_timeout; wal_bytes, shared_blks_hit,
-- temp_blks_written and exec_time_ms.  The attacks are in
-- attack_neighbours.sql.
--
-- One psql session as the superuser postgres, no enclosing transaction.
-- SET ROLE ne_pool acts as a switcher (a pool), SET ROLE ne_ma as a member
-- of tenant ne_a; RESET ROLE returns to the superuser, who reads the
-- statistics from outside any tenant context.
--
-- How to count: a statement counts at its end (ExecutorEnd / the end of a
-- utility) for the tenant in effect when it STARTED.  The superuser's
-- assertions run outside any context, so they count for the NULL row only,
-- and the statement that reads the view is not counted yet while it reads.
-- The statistics are cluster-wide and keyed by tenant name: the tenants of
-- this file are ne_*, reset at the start.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;
CREATE EXTENSION IF NOT EXISTS dblink;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['ne_pool', 'ne_ma', 'ne_plain'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;
-- an earlier run that died half-way may have left these
ALTER SYSTEM RESET tenant_iso.stats_period;
ALTER SYSTEM RESET tenant_iso.default_limits;
SELECT pg_reload_conf() \g /dev/null

\ir include/h.sql

-- ---------------------------------------------------------------------
-- Helpers (SECURITY INVOKER: they run as the current role)
-- ---------------------------------------------------------------------
-- 'statements/rows_read/rows_written' of a tenant (NULL: the NULL row),
-- 'none' when the view has no row for it
CREATE FUNCTION h.c3(t text) RETURNS text LANGUAGE sql AS $f$
	SELECT coalesce((SELECT format('%s/%s/%s', s.statements, s.rows_read, s.rows_written)
					   FROM tenant_iso.tenant_stats s WHERE s.tenant IS NOT DISTINCT FROM $1), 'none')
$f$;
-- the same for the current period and the previous one
CREATE FUNCTION h.c3cur(t text) RETURNS text LANGUAGE sql AS $f$
	SELECT coalesce((SELECT format('%s/%s/%s', s.statements_current, s.rows_read_current, s.rows_written_current)
					   FROM tenant_iso.tenant_stats s WHERE s.tenant IS NOT DISTINCT FROM $1), 'none')
$f$;
CREATE FUNCTION h.c3prev(t text) RETURNS text LANGUAGE sql AS $f$
	SELECT coalesce((SELECT format('%s/%s/%s', s.statements_previous, s.rows_read_previous, s.rows_written_previous)
					   FROM tenant_iso.tenant_stats s WHERE s.tenant IS NOT DISTINCT FROM $1), 'none')
$f$;
-- one column of a tenant's row (NULL: the NULL row) as numeric
CREATE FUNCTION h.stat(t text, col text) RETURNS numeric LANGUAGE plpgsql AS $f$
DECLARE
	v numeric;
BEGIN
	EXECUTE format('SELECT s.%I::numeric FROM tenant_iso.tenant_stats s WHERE s.tenant IS NOT DISTINCT FROM $1', col)
		INTO v USING t;
	RETURN v;
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
-- the query identifier of a query (EXPLAIN VERBOSE, compute_query_id = on)
CREATE FUNCTION h.qid(q text) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
	j json;
BEGIN
	EXECUTE 'EXPLAIN (VERBOSE, FORMAT JSON) ' || q INTO j;
	RETURN (j -> 0 ->> 'Query Identifier')::bigint;
END
$f$;
-- sleep until offset seconds after the next multiple of p seconds (epoch)
CREATE FUNCTION h.to_boundary(p int, offs float8) RETURNS void LANGUAGE sql AS $f$
	SELECT pg_sleep($1 - mod(extract(epoch FROM clock_timestamp())::numeric, $1)::float8 + $2)
$f$;
-- functions whose SET clause raises / lowers work_mem
CREATE FUNCTION h.wm_high() RETURNS text LANGUAGE sql SET work_mem = '2MB' AS $f$
	SELECT current_setting('work_mem')
$f$;
CREATE FUNCTION h.wm_low() RETURNS text LANGUAGE sql SET work_mem = '512kB' AS $f$
	SELECT current_setting('work_mem')
$f$;
CREATE FUNCTION h.st_zero() RETURNS text LANGUAGE sql SET statement_timeout = 0 AS $f$
	SELECT current_setting('statement_timeout')
$f$;

SELECT plan(173);

-- ---------------------------------------------------------------------
-- Setup: three tenants, a pool (switcher), a member of ne_a, a table
-- ---------------------------------------------------------------------
SELECT tenant_iso.create_tenant('ne_a') \g /dev/null
SELECT tenant_iso.create_tenant('ne_b') \g /dev/null
SELECT tenant_iso.create_tenant('ne_c') \g /dev/null
CREATE ROLE ne_pool;
SELECT tenant_iso.grant_switch('ne_pool') \g /dev/null
CREATE ROLE ne_ma;
SELECT tenant_iso.add_member('ne_ma', 'ne_a') \g /dev/null
CREATE ROLE ne_plain;
CREATE TABLE public.ne_t (tenant_id text NOT NULL, id int NOT NULL, v text);
SELECT tenant_iso.protect('public.ne_t') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ne_t TO ne_pool, ne_ma;
SELECT format('host=127.0.0.1 port=%s dbname=%s user=postgres sslmode=disable',
			  current_setting('port'), current_database()) AS ne_conn \gset

SELECT is(current_setting('tenant_iso.track_queries'), 'on', 'the test server tracks queries');
SELECT is(current_setting('tenant_iso.track_stats'), 'on', 'statistics are collected');

-- =====================================================================
-- 1. One pooled connection, session-level switches: exact counts
-- =====================================================================
SELECT tenant_iso.reset_tenant_stats() \g /dev/null
-- NULL: the reset above (1 statement, 1 row read)
SET ROLE ne_pool;
-- NULL: SET ROLE
SELECT tenant_iso.set_tenant('ne_a') \g /dev/null
-- NULL: set_tenant started outside any context (1 row)
INSERT INTO public.ne_t (id, v) SELECT g, 'a' FROM generate_series(1, 5) g;
SELECT id FROM public.ne_t \g /dev/null
UPDATE public.ne_t SET v = 'a2' WHERE id <= 2;
DELETE FROM public.ne_t WHERE id = 5;
SELECT tenant_iso.set_tenant('ne_b') \g /dev/null
-- ne_a: set_tenant('ne_b') started in ne_a (1 row)
INSERT INTO public.ne_t (id, v) SELECT g, 'b' FROM generate_series(1, 3) g;
SELECT id FROM public.ne_t \g /dev/null
SELECT tenant_iso.reset_tenant() \g /dev/null
-- ne_b: reset_tenant() started in ne_b (1 row)
RESET ROLE;
-- NULL: RESET ROLE

SELECT is(h.c3(NULL), '4/2/0',
	'the NULL row: reset_tenant_stats(), SET ROLE, set_tenant(ne_a) and RESET ROLE (2 rows read)');
SELECT is(h.c3('ne_a'), '5/6/8',
	'ne_a: INSERT 5, SELECT 5, UPDATE 2, DELETE 1 and the set_tenant(ne_b) that started in it');
SELECT is(h.c3('ne_b'), '3/4/3',
	'ne_b: INSERT 3, SELECT 3 and the reset_tenant() that started in it');
SELECT is(h.c3('ne_c'), 'none', 'ne_c, never entered, has no row');
SELECT is(h.c3cur('ne_a') || ' ' || h.c3cur('ne_b'), '5/6/8 3/4/3',
	'the current period holds the same counts as the totals');
SELECT is((SELECT count(*)::int FROM tenant_iso.tenant_stats WHERE tenant IS NULL), 1,
	'there is exactly one NULL row');
SELECT ok((SELECT last_active IS NOT NULL AND last_active <= clock_timestamp()
			 FROM tenant_iso.tenant_stats WHERE tenant = 'ne_a'), 'last_active of ne_a is set');
SELECT ok((SELECT exec_time_ms >= 0 AND cpu_time_ms >= 0 AND throttled = 0 AND rejected = 0
			 FROM tenant_iso.tenant_stats WHERE tenant = 'ne_a'), 'ne_a: times are measured, nothing throttled or rejected');

-- =====================================================================
-- 2. The pool switches per transaction (local => true), and a local
--    switch inside a session-level context; EXECUTE and a cursor
-- =====================================================================
SELECT tenant_iso.reset_tenant_stats('ne_a') \g /dev/null
SELECT tenant_iso.reset_tenant_stats('ne_b') \g /dev/null
SELECT is(h.c3('ne_a') || ' ' || h.c3('ne_b'), '0/0/0 0/0/0', 'reset_tenant_stats(tenant) zeroed ne_a and ne_b');
SELECT tenant_iso.reset_tenant_stats() \g /dev/null
SET ROLE ne_pool;
BEGIN;
SELECT tenant_iso.set_tenant('ne_a', local => true) \g /dev/null
INSERT INTO public.ne_t (id, v) VALUES (10, 'a'), (11, 'a');
SELECT count(*) FROM public.ne_t \g /dev/null
COMMIT;
BEGIN;
SELECT tenant_iso.set_tenant('ne_b', local => true) \g /dev/null
INSERT INTO public.ne_t (id, v) VALUES (10, 'b');
UPDATE public.ne_t SET v = 'b2';
COMMIT;
-- the local context is gone: NULL
SELECT 1 \g /dev/null
SELECT tenant_iso.set_tenant('ne_a') \g /dev/null
BEGIN;
SELECT tenant_iso.set_tenant('ne_b', local => true) \g /dev/null
SELECT id FROM public.ne_t \g /dev/null
COMMIT;
-- back in ne_a (ids 1 2 3 4 10 11)
SELECT id FROM public.ne_t \g /dev/null
PREPARE ne_q AS SELECT id FROM public.ne_t WHERE id > $1;
EXECUTE ne_q(0) \g /dev/null
EXECUTE ne_q(3) \g /dev/null
DEALLOCATE ne_q;
BEGIN;
DECLARE ne_cur CURSOR FOR SELECT id FROM public.ne_t ORDER BY id;
FETCH 2 FROM ne_cur \g /dev/null
FETCH 3 FROM ne_cur \g /dev/null
CLOSE ne_cur;
COMMIT;
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;

SELECT is(h.c3(NULL), '7/5/0',
	'the NULL row: the reset, SET ROLE, two local set_tenant()s, SELECT 1, set_tenant(ne_a), RESET ROLE (5 rows read)');
SELECT is(h.c3('ne_a'), '8/23/2',
	'ne_a per transaction and per session: INSERT 2, count 1, set_tenant(ne_b, local) 1, SELECT 6, EXECUTE 6 and 3, a cursor fetched 2+3 (one statement), reset_tenant 1');
SELECT is(h.c3('ne_b'), '3/4/5',
	'ne_b per transaction: INSERT 1, UPDATE 4, and the SELECT of the local switch inside ne_a''s session context (4 rows)');

-- a member role: its statements count for its tenant; SET ROLE itself
-- started outside, RESET ROLE inside; an erroring statement is not counted
SELECT tenant_iso.reset_tenant_stats('ne_a') \g /dev/null
SET ROLE ne_ma;
INSERT INTO public.ne_t (id, v) VALUES (20, 'm');
SELECT id FROM public.ne_t WHERE id = 20 \g /dev/null
\set ON_ERROR_STOP 0
\echo '# the next statement fails on purpose (division by zero)'
SELECT 1 / (SELECT count(*) - count(*) FROM public.ne_t)::int;
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '22012', 'the member''s statement failed (division by zero)');
SELECT is(h.c3('ne_a'), '3/1/1',
	'a member''s INSERT, SELECT and RESET ROLE count for its tenant; the failed statement does not');

-- =====================================================================
-- 3. Periods: _current, _previous and totals
-- =====================================================================
ALTER SYSTEM SET tenant_iso.stats_period = 2;
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
SELECT is(current_setting('tenant_iso.stats_period'), '2s', 'stats_period is 2 s after the reload');
SELECT tenant_iso.reset_tenant_stats('ne_c') \g /dev/null
SELECT h.to_boundary(2, 0.1) \g /dev/null
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SELECT g FROM generate_series(1, 3) g \g /dev/null
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT is(h.c3('ne_c') || ' ' || h.c3cur('ne_c') || ' ' || h.c3prev('ne_c'), '2/4/0 2/4/0 0/0/0',
	'in the period of the work: total = current, previous empty');
SELECT ok((SELECT clock_timestamp() - period_start BETWEEN interval '0' AND interval '2 s'
				  AND mod(extract(epoch FROM period_start)::numeric, 2) = 0
			 FROM tenant_iso.tenant_stats WHERE tenant = 'ne_c'),
	'period_start is the start of the current 2 s period');
SELECT h.to_boundary(2, 0.1) \g /dev/null
SELECT is(h.c3('ne_c') || ' ' || h.c3cur('ne_c') || ' ' || h.c3prev('ne_c'), '2/4/0 0/0/0 2/4/0',
	'in the next period: the work moved to previous, current is empty, the total stays');
SELECT is((SELECT exec_time_ms_current::text || ' ' || (exec_time_ms_previous > 0)::text
			 FROM tenant_iso.tenant_stats WHERE tenant = 'ne_c'), '0 true',
	'exec_time_ms moved to the previous period too');
SELECT pg_sleep(2) \g /dev/null
SELECT is(h.c3('ne_c') || ' ' || h.c3cur('ne_c') || ' ' || h.c3prev('ne_c'), '2/4/0 0/0/0 0/0/0',
	'two periods later: current and previous empty, the total stays');
ALTER SYSTEM RESET tenant_iso.stats_period;
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
SELECT is(current_setting('tenant_iso.stats_period'), '1min', 'stats_period is back to its default');

-- =====================================================================
-- 4. sessions_in_context and active_statements
-- =====================================================================
SELECT is(h.stat('ne_c', 'sessions_in_context'), 0::numeric, 'no session is in ne_c');
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SELECT is((SELECT format('%s %s %s', tenant, sessions_in_context, active_statements) FROM tenant_iso.tenant_stats),
	'ne_c 1 1', 'in ne_c the pool sees its own row: one session, one active statement (this one)');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT is(h.stat('ne_c', 'sessions_in_context'), 0::numeric, 'after reset_tenant() no session is in ne_c');
SELECT dblink_connect('ne_s2', :'ne_conn') \g /dev/null
SELECT dblink_exec('ne_s2', 'SET ROLE ne_pool') \g /dev/null
SELECT dblink_exec('ne_s2', 'DO $x$ BEGIN PERFORM tenant_iso.set_tenant(''ne_c''); END $x$') \g /dev/null
SELECT is(h.stat('ne_c', 'sessions_in_context') || ' ' || h.stat('ne_c', 'active_statements'), '1 0',
	'another backend entered ne_c: one session in context, no statement running');
SELECT dblink_connect('ne_s3', :'ne_conn') \g /dev/null
SELECT dblink_exec('ne_s3', 'SET ROLE ne_pool') \g /dev/null
SELECT dblink_exec('ne_s3', 'DO $x$ BEGIN PERFORM tenant_iso.set_tenant(''ne_c''); END $x$') \g /dev/null
SELECT is(h.stat('ne_c', 'sessions_in_context'), 2::numeric, 'a third backend entered ne_c: two sessions');
-- live counts survive a reset
SELECT tenant_iso.reset_tenant_stats('ne_c') \g /dev/null
SELECT is(h.c3('ne_c') || ' ' || h.stat('ne_c', 'sessions_in_context'), '0/0/0 2',
	'reset_tenant_stats(ne_c) zeroes the counters, not sessions_in_context');
SELECT dblink_exec('ne_s3', 'DO $x$ BEGIN PERFORM tenant_iso.reset_tenant(); END $x$') \g /dev/null
SELECT is(h.stat('ne_c', 'sessions_in_context'), 1::numeric, 'one backend left ne_c with reset_tenant()');
SELECT dblink_exec('ne_s3', 'DO $x$ BEGIN PERFORM tenant_iso.set_tenant(''ne_c''); END $x$') \g /dev/null
SELECT is(h.stat('ne_c', 'sessions_in_context'), 2::numeric, 'it entered again');
SELECT is(h.c3('ne_c'), '1/0/0', 'since the reset ne_c counted one statement: the DO with reset_tenant() that started in it');
SELECT dblink_disconnect('ne_s3') \g /dev/null
DO $$
BEGIN
	FOR i IN 1 .. 50 LOOP
		EXIT WHEN h.stat('ne_c', 'sessions_in_context') = 1;
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$$;
SELECT is(h.stat('ne_c', 'sessions_in_context'), 1::numeric, 'a backend that exits in the context leaves it');
SELECT dblink_disconnect('ne_s2') \g /dev/null
DO $$
BEGIN
	FOR i IN 1 .. 50 LOOP
		EXIT WHEN h.stat('ne_c', 'sessions_in_context') = 0;
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$$;
SELECT is(h.stat('ne_c', 'sessions_in_context'), 0::numeric, '... and so does the other');
-- a pooled backend that switched per transaction and went idle: its
-- transaction-local context ended with COMMIT / ROLLBACK, so it is in no
-- tenant's context any more
SELECT dblink_connect('ne_s5', :'ne_conn') \g /dev/null
SELECT dblink_exec('ne_s5', 'SET ROLE ne_pool') \g /dev/null
SELECT dblink_exec('ne_s5', 'BEGIN') \g /dev/null
SELECT dblink_exec('ne_s5', 'DO $x$ BEGIN PERFORM tenant_iso.set_tenant(''ne_c'', local => true); END $x$') \g /dev/null
SELECT is(h.stat('ne_c', 'sessions_in_context'), 1::numeric, 'a backend in a transaction-local context of ne_c is in it');
SELECT dblink_exec('ne_s5', 'COMMIT') \g /dev/null
SELECT is(h.stat('ne_c', 'sessions_in_context'), 0::numeric,
	'after its COMMIT the idle backend is no longer in ne_c''s context');
SELECT dblink_exec('ne_s5', 'BEGIN') \g /dev/null
SELECT dblink_exec('ne_s5', 'DO $x$ BEGIN PERFORM tenant_iso.set_tenant(''ne_c'', local => true); END $x$') \g /dev/null
SELECT dblink_exec('ne_s5', 'ROLLBACK') \g /dev/null
SELECT is(h.stat('ne_c', 'sessions_in_context'), 0::numeric,
	'after its ROLLBACK neither');
SELECT dblink_exec('ne_s5', 'DO $x$ BEGIN PERFORM tenant_iso.set_tenant(''ne_c''); END $x$') \g /dev/null
SELECT dblink_exec('ne_s5', 'DISCARD ALL') \g /dev/null
SELECT is(h.stat('ne_c', 'sessions_in_context'), 0::numeric, 'after DISCARD ALL (a pooler''s reset) neither');
SELECT dblink_disconnect('ne_s5') \g /dev/null
SET ROLE ne_ma;
SELECT is((SELECT sessions_in_context FROM tenant_iso.tenant_stats), 1,
	'a member role''s session is in its tenant''s context');
RESET ROLE;
SELECT is(h.stat('ne_a', 'sessions_in_context'), 0::numeric, 'after RESET ROLE it is not');

-- =====================================================================
-- 5. reset_tenant_stats()
-- =====================================================================
SELECT stats_reset AS ne_reset_b FROM tenant_iso.tenant_stats WHERE tenant = 'ne_b' \gset
SELECT tenant_iso.reset_tenant_stats('ne_a') \g /dev/null
SELECT is(h.c3('ne_a'), '0/0/0', 'reset_tenant_stats(ne_a) zeroed ne_a');
SELECT is(h.c3('ne_b'), '3/4/5', '... and left ne_b alone');
SELECT is((SELECT stats_reset FROM tenant_iso.tenant_stats WHERE tenant = 'ne_b'), :'ne_reset_b'::timestamptz,
	'... and ne_b''s stats_reset');
SELECT ok((SELECT stats_reset > :'ne_reset_b'::timestamptz FROM tenant_iso.tenant_stats WHERE tenant = 'ne_a'),
	'ne_a''s stats_reset moved');
SELECT is(h.run('SELECT tenant_iso.reset_tenant_stats(''ne_nobody'')'), 'ok 1',
	'reset_tenant_stats() of a tenant without statistics is no error');
SELECT tenant_iso.reset_tenant_stats() \g /dev/null
SELECT is(h.c3(NULL), '1/1/0', 'reset_tenant_stats() zeroed the NULL row (only the reset itself counts since)');
SELECT is((SELECT count(*)::int FROM tenant_iso.tenant_stats
			WHERE tenant LIKE 'ne\_%' AND (statements <> 0 OR rows_read <> 0 OR rows_written <> 0
										   OR exec_time_ms <> 0 OR statements_current <> 0)),
	0, 'reset_tenant_stats() zeroed every tenant');
SELECT is(h.run('SELECT tenant_iso.reset_tenant_stats(NULL)'), 'ok 1', 'reset_tenant_stats(NULL) resets everything too');
SELECT is(h.c3(NULL), '1/1/0', '... the NULL row included');

-- =====================================================================
-- 6. tenant_query_stats
-- =====================================================================
SELECT h.qid('SELECT g FROM generate_series(1, 2) g') AS ne_qid \gset
SELECT ok(:'ne_qid'::bigint <> 0, 'EXPLAIN VERBOSE gives the query identifier');
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_a') \g /dev/null
SELECT g FROM generate_series(1, 2) g \g /dev/null
SELECT g FROM generate_series(1, 3) g \g /dev/null
SELECT g FROM generate_series(1, 4) g \g /dev/null
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT is((SELECT format('%s %s', calls, rows) FROM tenant_iso.tenant_query_stats
			WHERE tenant = 'ne_a' AND queryid = :'ne_qid'::bigint), '3 9',
	'ne_a: one query id, 3 calls (constants differ), 9 rows');
SELECT is((SELECT format('%s %s', count(*), sum(calls)) FROM tenant_iso.tenant_query_stats WHERE tenant = 'ne_a'),
	'2 4', 'ne_a has two queries: the generate_series one and reset_tenant()');
SELECT ok((SELECT bool_and(exec_time_ms >= 0) FROM tenant_iso.tenant_query_stats WHERE tenant = 'ne_a'),
	'the queries'' times are measured');
SELECT is((SELECT count(*)::int FROM tenant_iso.tenant_query_stats WHERE tenant = 'ne_b'), 0,
	'ne_b ran nothing since the reset: no query of it');
SELECT tenant_iso.reset_tenant_stats('ne_a') \g /dev/null
SELECT is((SELECT count(*)::int FROM tenant_iso.tenant_query_stats WHERE tenant = 'ne_a'), 0,
	'reset_tenant_stats(ne_a) dropped its queries');

-- =====================================================================
-- 7. set_tenant_limits() and tenant_limits
-- =====================================================================
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(NULL, 1)'), 'ERROR 22004', 'tenant NULL: 22004');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_nobody'', 1)'), 'ERROR 42704', 'an unregistered tenant: 42704');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', max_active_statements => -1)'), 'ERROR 22023',
	'max_active_statements -1: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', statement_timeout => ''-1 s'')'), 'ERROR 22023',
	'a negative statement_timeout: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', statement_timeout => ''0.5 ms'')'), 'ERROR 22023',
	'a statement_timeout of 0.5 ms (which would round to no limit): 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', statement_timeout => ''2147483648 ms'')'), 'ERROR 22023',
	'a statement_timeout above 2147483647 ms: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', statement_timeout => ''1 month'')'), 'ERROR 22023',
	'a statement_timeout of a month: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', max_statements_per_second => 0)'), 'ERROR 22023',
	'max_statements_per_second 0: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', max_statements_per_second => -5)'), 'ERROR 22023',
	'a negative max_statements_per_second: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', max_statements_per_second => 1e10)'), 'ERROR 22023',
	'max_statements_per_second above 1e9: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', work_mem => ''lots'')'), 'ERROR 22023',
	'work_mem ''lots'': 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', work_mem => ''32kB'')'), 'ERROR 22023',
	'work_mem below 64kB: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', work_mem => ''1500 bytes'')'), 'ERROR 22023',
	'work_mem not a whole number of kB: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', work_mem => ''3TB'')'), 'ERROR 22023',
	'work_mem above 2147483647 kB: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', work_mem => ''-1'')'), 'ERROR 22023',
	'work_mem -1: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', temp_file_limit => ''x1MB'')'), 'ERROR 22023',
	'a bad temp_file_limit: 22023');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_a'', temp_file_limit => ''-2'')'), 'ERROR 22023',
	'temp_file_limit -2: 22023');
SELECT is((SELECT count(*)::int FROM tenant_iso.limits WHERE tenant_id = 'ne_a'), 0, 'no refused call stored a row');
SELECT matches(h.msg('SELECT tenant_iso.set_tenant_limits(''ne_a'', work_mem => ''32kB'')'),
	'invalid work_mem limit "32kB"', 'the message names the setting and the value');

SELECT tenant_iso.set_tenant_limits('ne_a', max_active_statements => 4, work_mem => '65536kB',
									temp_file_limit => '-1') \g /dev/null
SELECT is((SELECT format('%s|%s|%s|%s|%s', max_active_statements, statement_timeout, work_mem, temp_file_limit,
						 max_statements_per_second) FROM tenant_iso.limits WHERE tenant_id = 'ne_a'),
	'4||64MB|-1|', 'set_tenant_limits stores its values, work_mem normalized to 64MB, temp_file_limit -1');
SELECT ok((SELECT updated_at BETWEEN now() - interval '1 min' AND clock_timestamp() FROM tenant_iso.limits WHERE tenant_id = 'ne_a'),
	'updated_at is set');
SELECT tenant_iso.set_tenant_limits('ne_a', statement_timeout => '5 s', max_statements_per_second => 250.5) \g /dev/null
SELECT is((SELECT format('%s|%s|%s|%s|%s', max_active_statements, statement_timeout, work_mem, temp_file_limit,
						 max_statements_per_second) FROM tenant_iso.limits WHERE tenant_id = 'ne_a'),
	'|00:00:05|||250.5', 'a second call replaces the row: the columns it leaves NULL are NULL again');
SELECT is(h.run($q$SELECT tenant_iso.set_tenant_limits('ne_a', work_mem => '1048576 kB')$q$), 'ok 1', 'work_mem 1048576 kB accepted');
SELECT is((SELECT work_mem FROM tenant_iso.limits WHERE tenant_id = 'ne_a'), '1GB', '... stored as 1GB');
SELECT is(h.run($q$SELECT tenant_iso.set_tenant_limits('ne_a', work_mem => '100kB')$q$), 'ok 1', 'work_mem 100kB accepted');
SELECT is((SELECT work_mem FROM tenant_iso.limits WHERE tenant_id = 'ne_a'), '100kB', '... stored as 100kB');
SELECT is(h.run($q$SELECT tenant_iso.set_tenant_limits('ne_a', work_mem => '64kB')$q$), 'ok 1', 'work_mem 64kB (the minimum) accepted');
SELECT is(h.run($q$SELECT tenant_iso.set_tenant_limits('ne_a', max_active_statements => 0, statement_timeout => '0')$q$),
	'ok 1', '0 (no limit) is accepted for max_active_statements and statement_timeout');
SELECT is((SELECT format('%s|%s', max_active_statements, statement_timeout) FROM tenant_iso.limits WHERE tenant_id = 'ne_a'),
	'0|00:00:00', '... and stored');
SELECT tenant_iso.set_tenant_limits('ne_a') \g /dev/null
SELECT is((SELECT count(*)::int FROM tenant_iso.limits WHERE tenant_id = 'ne_a'), 0, 'all NULL deletes the row');
SELECT is(h.run('SELECT tenant_iso.set_tenant_limits(''ne_b'')'), 'ok 1', 'all NULL for a tenant without a row is no error');

-- the view: own values, else the default
SELECT tenant_iso.set_tenant_limits('ne_a', max_active_statements => 3, work_mem => '8MB') \g /dev/null
SELECT is((SELECT format('%s|%s|%s|%s|%s|%s', max_active_statements, statement_timeout, work_mem, temp_file_limit,
						 max_statements_per_second, own_limits) FROM tenant_iso.tenant_limits WHERE tenant = 'ne_a'),
	'3||8MB|||t', 'tenant_limits: ne_a''s own limits, the rest none (no default)');
SELECT is((SELECT format('%s|%s|%s|%s|%s|%s|%s', max_active_statements, statement_timeout, work_mem, temp_file_limit,
						 max_statements_per_second, own_limits, updated_at) FROM tenant_iso.tenant_limits WHERE tenant = 'ne_b'),
	'|||||f|', 'tenant_limits: ne_b has no limits and no row of its own');
\set ON_ERROR_STOP 0
\echo '# the next statement fails on purpose (a bad tenant_iso.default_limits)'
ALTER SYSTEM SET tenant_iso.default_limits = 'max_active = 3';
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '22023', 'a bad tenant_iso.default_limits is refused by ALTER SYSTEM: 22023');
SELECT is(current_setting('tenant_iso.default_limits'), '', '... and not applied');
ALTER SYSTEM SET tenant_iso.default_limits = 'max_active_statements=7, statement_timeout=45s, work_mem=32MB, temp_file_limit=1GB, max_statements_per_second=500';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
SELECT is((SELECT format('%s|%s|%s|%s|%s|%s', max_active_statements, statement_timeout, work_mem, temp_file_limit,
						 max_statements_per_second, own_limits) FROM tenant_iso.tenant_limits WHERE tenant = 'ne_b'),
	'7|00:00:45|32MB|1GB|500|f', 'tenant_limits: ne_b takes every default');
SELECT is((SELECT format('%s|%s|%s|%s|%s|%s', max_active_statements, statement_timeout, work_mem, temp_file_limit,
						 max_statements_per_second, own_limits) FROM tenant_iso.tenant_limits WHERE tenant = 'ne_a'),
	'3|00:00:45|8MB|1GB|500|t', 'tenant_limits: ne_a keeps its own values and takes the default for the rest');
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_b') \g /dev/null
SELECT is(current_setting('work_mem') || ' ' || current_setting('statement_timeout'), '4MB 45s',
	'the default caps apply in ne_b''s context (work_mem 4MB is under 32MB; statement_timeout lowered to 45s)');
SELECT is(h.try('SET statement_timeout = ''1min'''), 'ERROR 42501', 'the default statement_timeout cap refuses 1min');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
ALTER SYSTEM RESET tenant_iso.default_limits;
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
SELECT is(current_setting('tenant_iso.default_limits'), '', 'default_limits is empty again');
SELECT is((SELECT format('%s|%s', max_active_statements, own_limits) FROM tenant_iso.tenant_limits WHERE tenant = 'ne_b'),
	'|f', 'tenant_limits: ne_b has no limit again');
SELECT tenant_iso.set_tenant_limits('ne_a') \g /dev/null

-- =====================================================================
-- 8. The caps
-- =====================================================================
SET work_mem = '3MB';
SET statement_timeout = 0;
SELECT tenant_iso.set_tenant_limits('ne_c', statement_timeout => '1 s', work_mem => '1MB',
									temp_file_limit => '10MB') \g /dev/null
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SHOW work_mem \gset ne_
SHOW statement_timeout \gset ne_
SHOW temp_file_limit \gset ne_
SELECT is((:'ne_work_mem')::text || ' ' || :'ne_statement_timeout' || ' ' || :'ne_temp_file_limit', '1MB 1s 10MB',
	'SHOW in ne_c''s context: work_mem, statement_timeout and temp_file_limit lowered to the limits');
SELECT is(current_setting('work_mem') || ' ' || current_setting('statement_timeout'), '1MB 1s',
	'current_setting() in a statement of the context sees the lowered values');
SELECT is(h.run('SET work_mem = ''2MB'''), 'ERROR 42501', 'SET work_mem above the limit: 42501');
SELECT matches(h.msg('SET work_mem = ''2MB'''), '^work_mem cannot be raised above the tenant''s limit',
	'the message says why');
SELECT is(h.run('SET work_mem = ''1025kB'''), 'ERROR 42501', 'SET work_mem 1 kB above the limit: 42501');
SELECT is(h.try('SET work_mem = ''1MB'''), 'ok 0', 'SET work_mem at the limit is allowed');
SELECT is(h.try('SET work_mem = ''256kB'''), 'ok 0', 'SET work_mem below the limit is allowed');
SELECT is(h.run('SET LOCAL work_mem = ''2MB'''), 'ERROR 42501', 'SET LOCAL work_mem above the limit: 42501');
SELECT is(h.val('SELECT set_config(''work_mem'', ''2MB'', false)'), 'ERROR 42501', 'set_config(work_mem, 2MB) : 42501');
SELECT is(h.val('SELECT set_config(''work_mem'', ''2MB'', true)'), 'ERROR 42501', 'set_config(work_mem, 2MB, local): 42501');
SELECT is(h.val('SELECT h.wm_high()'), 'ERROR 42501', 'a function with SET work_mem = 2MB: 42501');
SELECT is(h.val('SELECT h.wm_low()'), '512kB', 'a function with SET work_mem = 512kB runs, with 512kB');
SELECT is(h.run('SET statement_timeout = 0'), 'ERROR 42501', 'SET statement_timeout = 0 (none): 42501');
SELECT is(h.run('SET statement_timeout = ''2s'''), 'ERROR 42501', 'SET statement_timeout above the limit: 42501');
SELECT is(h.run('SET LOCAL statement_timeout = ''1h'''), 'ERROR 42501', 'SET LOCAL statement_timeout above the limit: 42501');
SELECT is(h.val('SELECT set_config(''statement_timeout'', ''0'', false)'), 'ERROR 42501', 'set_config(statement_timeout, 0): 42501');
SELECT is(h.val('SELECT h.st_zero()'), 'ERROR 42501', 'a function with SET statement_timeout = 0: 42501');
SELECT is(h.try('SET statement_timeout = ''500ms'''), 'ok 0', 'SET statement_timeout below the limit is allowed');
SELECT is(h.run('SET temp_file_limit = ''5MB'''), 'ERROR 42501', 'the pool cannot SET temp_file_limit at all (superuser only)');
SELECT tenant_iso.reset_tenant() \g /dev/null
SHOW work_mem \gset ne_
SHOW statement_timeout \gset ne_
SELECT is((:'ne_work_mem')::text || ' ' || :'ne_statement_timeout', '3MB 0', 'out of the context: the session''s own values again');
SELECT is(h.val('SELECT h.wm_high()'), '2MB', 'out of the context the function with SET work_mem = 2MB runs');
SELECT is(h.try('SET work_mem = ''2GB'''), 'ok 0', 'out of the context SET work_mem = 2GB is allowed');
-- a transaction-local context
BEGIN;
SELECT tenant_iso.set_tenant('ne_c', local => true) \g /dev/null
SHOW work_mem \gset ne_
SELECT is(:'ne_work_mem'::text, '1MB', 'in a local context the cap applies');
SELECT is(h.run('SET work_mem = ''2MB'''), 'ERROR 42501', 'and refuses a raise');
COMMIT;
SHOW work_mem \gset ne_
SELECT is(:'ne_work_mem'::text, '3MB', 'after the transaction: the session''s value');
-- a session-level SET below the limit sticks; RESET is allowed and the
-- next statement lowers again
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SET work_mem = '512kB';
SHOW work_mem \gset ne_
SELECT is(:'ne_work_mem'::text, '512kB', 'SET work_mem below the limit (top level) holds');
RESET work_mem;
SHOW work_mem \gset ne_
SELECT is(:'ne_work_mem'::text, '1MB', 'after RESET the next statement is lowered to the limit again');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT is(current_setting('work_mem'), '4MB', 'out of the context after RESET: the default');
SET work_mem = '3MB';
-- a superuser in the context is capped as well (temp_file_limit it may set)
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SELECT is(h.run('SET temp_file_limit = -1'), 'ERROR 42501', 'superuser in ne_c: SET temp_file_limit = -1 (none): 42501');
SELECT is(h.run('SET temp_file_limit = ''20MB'''), 'ERROR 42501', 'superuser in ne_c: temp_file_limit above the limit: 42501');
SELECT is(h.try('SET temp_file_limit = ''5MB'''), 'ok 0', 'superuser in ne_c: temp_file_limit below the limit is allowed');
SELECT is(h.run('SET work_mem = ''2MB'''), 'ERROR 42501', 'superuser in ne_c: SET work_mem above the limit: 42501');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT is(current_setting('temp_file_limit'), '-1', 'out of the context temp_file_limit is the session''s again');

-- a statement longer than the tenant's statement_timeout is cancelled,
-- although the session's own statement_timeout is 0, and then 10 s
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SELECT clock_timestamp() AS ne_t0 \gset
SELECT is(h.cancel('SELECT pg_sleep(4)'), 'ERROR 57014', 'pg_sleep(4) in ne_c (limit 1 s, session 0) is cancelled: 57014');
SELECT ok(clock_timestamp() - :'ne_t0'::timestamptz < interval '3 s', '... after about a second');
SELECT tenant_iso.reset_tenant() \g /dev/null
SET statement_timeout = '10s';
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SELECT clock_timestamp() AS ne_t0 \gset
SELECT is(h.cancel('SELECT pg_sleep(4)'), 'ERROR 57014', 'pg_sleep(4) in ne_c (limit 1 s, session 10 s) is cancelled: 57014');
SELECT ok(clock_timestamp() - :'ne_t0'::timestamptz < interval '3 s', '... after about a second');
SELECT tenant_iso.reset_tenant() \g /dev/null
SET statement_timeout = 0;
SELECT is(h.cancel('SELECT pg_sleep(1.5)'), 'no error', 'out of the context the same kind of statement runs to its end');
RESET ROLE;
SELECT tenant_iso.set_tenant_limits('ne_c') \g /dev/null
RESET work_mem;
RESET statement_timeout;

-- =====================================================================
-- 9. Resource counters: wal_bytes, shared_blks_hit, temp_blks_written,
--    exec_time_ms
-- =====================================================================
SELECT tenant_iso.reset_tenant_stats('ne_b') \g /dev/null
SELECT tenant_iso.set_tenant_limits('ne_b', work_mem => '64kB') \g /dev/null
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_b') \g /dev/null
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT h.stat('ne_b', 'wal_bytes') AS ne_wal0, h.stat('ne_b', 'shared_blks_hit') AS ne_hit0,
	   h.stat('ne_b', 'temp_blks_written') AS ne_tmp0, h.stat('ne_b', 'exec_time_ms') AS ne_ms0 \gset
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_b') \g /dev/null
INSERT INTO public.ne_t (id, v) SELECT g, repeat('w', 100) FROM generate_series(1000, 2999) g;
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT ok(h.stat('ne_b', 'wal_bytes') - :ne_wal0 > 100000, 'wal_bytes grew with an INSERT of 2000 rows of 100 bytes');
SELECT h.stat('ne_b', 'shared_blks_hit') AS ne_hit1 \gset
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_b') \g /dev/null
SELECT count(*) FROM public.ne_t \g /dev/null
SELECT count(*) FROM public.ne_t \g /dev/null
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT ok(h.stat('ne_b', 'shared_blks_hit') - :ne_hit1 > 10, 'shared_blks_hit grew with two scans of the table');
SELECT ok(h.stat('ne_b', 'shared_blks_hit') > :ne_hit0, '... and with the INSERT before');
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_b') \g /dev/null
SELECT is(current_setting('work_mem'), '64kB', 'ne_b''s work_mem is capped to 64kB');
SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC OFFSET 0) s \g /dev/null
SELECT pg_sleep(0.3) \g /dev/null
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT ok(h.stat('ne_b', 'temp_blks_written') - :ne_tmp0 > 0, 'temp_blks_written grew with a sort of 200000 rows in 64kB');
SELECT ok(h.stat('ne_b', 'exec_time_ms') - :ne_ms0 >= 300, 'exec_time_ms grew by at least the 300 ms of pg_sleep(0.3)');
SELECT ok(h.stat('ne_b', 'cpu_time_ms') > 0, 'cpu_time_ms grew with the sort');
SELECT tenant_iso.set_tenant_limits('ne_b') \g /dev/null

-- track_stats = off: no counters, limits still enforced
SELECT tenant_iso.set_tenant_limits('ne_c', work_mem => '1MB') \g /dev/null
SELECT h.c3('ne_c') AS ne_c_before \gset
SET tenant_iso.track_stats = off;
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SELECT g FROM generate_series(1, 10) g \g /dev/null
SELECT is(current_setting('work_mem'), '1MB', 'with track_stats off the cap still applies');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
RESET tenant_iso.track_stats;
SELECT is(h.c3('ne_c'), :'ne_c_before', 'with track_stats off nothing was counted for ne_c');
SELECT tenant_iso.set_tenant_limits('ne_c') \g /dev/null

-- =====================================================================
-- 10. What else is one statement (utilities, EXPLAIN ANALYZE, DO, a
--     parallel query); temp_file_limit enforced; a limit changed while a
--     backend is in the context; admission and rate refusals
-- =====================================================================
SELECT tenant_iso.reset_tenant_stats('ne_c') \g /dev/null
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SET extra_float_digits = 1;
SHOW extra_float_digits \g /dev/null
EXPLAIN (COSTS OFF) SELECT g FROM generate_series(1, 5) g \g /dev/null
DO $$ BEGIN PERFORM g FROM generate_series(1, 5) g; PERFORM 1; END $$;
SELECT count(*) FROM (SELECT h.run('SELECT g FROM generate_series(1, 5) g')) s \g /dev/null
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
RESET extra_float_digits;
SELECT is(h.c3('ne_c'), '6/2/0',
	'SET, SHOW, EXPLAIN, DO, a SELECT whose function runs a SELECT, reset_tenant(): one statement each, the nested rows not counted');

-- a parallel query counts once, for the tenant
CREATE TABLE public.ne_big AS SELECT g AS id FROM generate_series(1, 100000) g;
ANALYZE public.ne_big;
GRANT SELECT ON public.ne_big TO ne_pool;
CREATE FUNCTION h.workers(q text) RETURNS int LANGUAGE plpgsql AS $f$
DECLARE
	j json;
BEGIN
	EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO j;
	RETURN coalesce((j -> 0 -> 'Plan' -> 'Plans' -> 0 ->> 'Workers Launched')::int,
					(j -> 0 -> 'Plan' ->> 'Workers Launched')::int, 0);
END
$f$;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT ok(h.workers('SELECT count(*) FROM public.ne_big') > 0, 'control: count(*) on ne_big launches parallel workers');
SELECT tenant_iso.reset_tenant_stats('ne_c') \g /dev/null
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SELECT count(*) FROM public.ne_big \g /dev/null
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT is(h.c3('ne_c'), '2/2/0', 'a parallel count(*) is one statement with one row (its workers are not counted apart), then reset_tenant()');
SELECT ok(h.stat('ne_c', 'shared_blks_hit') + h.stat('ne_c', 'shared_blks_read') >= 400,
	'... its buffers include the workers'' (ne_big has over 400 pages)');

-- temp_file_limit is enforced in the context
SELECT tenant_iso.set_tenant_limits('ne_c', work_mem => '64kB', temp_file_limit => '1MB') \g /dev/null
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SELECT is(h.run('SELECT count(*) FROM (SELECT g FROM generate_series(1, 1000000) g ORDER BY g DESC OFFSET 0) s'),
	'ERROR 53400', 'a sort spilling more than temp_file_limit 1MB fails: 53400');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT is(h.run('SELECT count(*) FROM (SELECT g FROM generate_series(1, 1000000) g ORDER BY g DESC OFFSET 0) s'),
	'ok 1', 'out of the context the same sort runs');
RESET ROLE;

-- a limit changed while another backend is in the context applies from
-- its next transaction
SELECT tenant_iso.set_tenant_limits('ne_c', work_mem => '1MB') \g /dev/null
SELECT dblink_connect('ne_s4', :'ne_conn') \g /dev/null
SELECT dblink_exec('ne_s4', 'SET ROLE ne_pool') \g /dev/null
SELECT dblink_exec('ne_s4', 'DO $x$ BEGIN PERFORM tenant_iso.set_tenant(''ne_c''); END $x$') \g /dev/null
SELECT is((SELECT v FROM dblink('ne_s4', 'SELECT current_setting(''work_mem'')') AS x(v text)), '1MB',
	'the other backend in ne_c has work_mem 1MB');
SELECT tenant_iso.set_tenant_limits('ne_c', work_mem => '2MB') \g /dev/null
SELECT is((SELECT v FROM dblink('ne_s4', 'SELECT current_setting(''work_mem'')') AS x(v text)), '2MB',
	'after set_tenant_limits(work_mem => 2MB) its next statement has 2MB');
SELECT tenant_iso.set_tenant_limits('ne_c') \g /dev/null
SELECT is((SELECT v FROM dblink('ne_s4', 'SELECT current_setting(''work_mem'')') AS x(v text)), '4MB',
	'after the limits are dropped: its own 4MB');

-- admission: max_active_statements = 1, the other backend holds the slot
SELECT tenant_iso.set_tenant_limits('ne_c', max_active_statements => 1) \g /dev/null
SELECT tenant_iso.reset_tenant_stats('ne_c') \g /dev/null
SELECT dblink_send_query('ne_s4', 'SELECT pg_sleep(2.5)') \g /dev/null
SELECT pg_sleep(0.7) \g /dev/null
SELECT is(h.stat('ne_c', 'active_statements'), 1::numeric, 'the other backend''s statement holds ne_c''s one slot');
SET tenant_iso.admission_timeout = '300ms';
SET ROLE ne_pool;
BEGIN;
SELECT tenant_iso.set_tenant('ne_c', local => true) \g /dev/null
\set ON_ERROR_STOP 0
\echo '# the next statement fails on purpose (admission timeout)'
SELECT 1;
\set ON_ERROR_STOP 1
ROLLBACK;
RESET ROLE;
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '53300', 'a second statement of ne_c waits 300 ms and fails: 53300');
SELECT matches(:'LAST_ERROR_MESSAGE'::text, '^too many active statements for this tenant', '... too many active statements');
SELECT is(h.stat('ne_c', 'rejected') || ' ' || h.stat('ne_c', 'throttled') || ' ' || h.stat('ne_c', 'rejected_current'), '1 1 1',
	'it counts as rejected, and as throttled (it waited)');
SELECT * FROM dblink_get_result('ne_s4') AS x(v text) \g /dev/null
SELECT * FROM dblink_get_result('ne_s4') AS x(v text) \g /dev/null
SELECT is(h.stat('ne_c', 'active_statements'), 0::numeric, 'the slot is free again');
SET ROLE ne_pool;
BEGIN;
SELECT tenant_iso.set_tenant('ne_c', local => true) \g /dev/null
SELECT is(h.stat('ne_c', 'active_statements'), 1::numeric, 'a statement of ne_c is admitted at once (no leaked slot)');
ROLLBACK;
RESET ROLE;
SELECT dblink_disconnect('ne_s4') \g /dev/null

-- rate: 1 statement per second, admission_timeout 0: the second fails at once
SELECT tenant_iso.set_tenant_limits('ne_c', max_statements_per_second => 1) \g /dev/null
SELECT tenant_iso.reset_tenant_stats('ne_c') \g /dev/null
SET tenant_iso.admission_timeout = 0;
SET ROLE ne_pool;
BEGIN;
SELECT tenant_iso.set_tenant('ne_c', local => true) \g /dev/null
SELECT 1 \g /dev/null
\set ON_ERROR_STOP 0
\echo '# the next statement fails on purpose (rate limit)'
SELECT 2;
\set ON_ERROR_STOP 1
ROLLBACK;
RESET ROLE;
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '53400', 'the second statement within a second at 1/s fails at once: 53400');
SELECT matches(:'LAST_ERROR_MESSAGE'::text, '^statement rate limit of this tenant exceeded', '... statement rate limit exceeded');
SELECT is(h.stat('ne_c', 'rejected') || ' ' || h.stat('ne_c', 'throttled') || ' ' || h.stat('ne_c', 'statements'), '1 0 1',
	'it counts as rejected (not throttled, not a statement); the first one counted');
RESET tenant_iso.admission_timeout;
SELECT tenant_iso.set_tenant_limits('ne_c') \g /dev/null

-- =====================================================================
-- 11. A statement that fails at run time adds its time, not a statement;
--     rows written through a data-modifying WITH are written rows
-- =====================================================================
SELECT tenant_iso.reset_tenant_stats('ne_a') \g /dev/null
SET ROLE ne_ma;
\set ON_ERROR_STOP 0
\echo '# the next statement fails on purpose (division by zero after 0.3 s)'
SELECT pg_sleep(0.3), 1 / (random() * 0)::int;
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '22012', 'the statement failed at run time');
SELECT is(h.stat('ne_a', 'statements') || ' ' || (h.stat('ne_a', 'exec_time_ms') >= 300)::text, '1 true',
	'a failed statement is not a statement (RESET ROLE is), but its 300 ms of execution count');
-- failed utility statements are not statements either
SELECT tenant_iso.reset_tenant_stats('ne_a') \g /dev/null
SET ROLE ne_ma;
\set ON_ERROR_STOP 0
\echo '# the next 2 statements fail on purpose (a bad SET, a DROP of nothing)'
SET work_mem = 'bogus';
DROP TABLE public.ne_no_such_table;
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '42P01', 'the DROP failed');
SELECT is(h.stat('ne_a', 'statements'), 1::numeric,
	'a failed SET and a failed DROP TABLE are not statements (only RESET ROLE is)');
SELECT tenant_iso.reset_tenant_stats('ne_a') \g /dev/null
SET ROLE ne_ma;
WITH w AS (INSERT INTO public.ne_t (id, v) SELECT g, 'cte' FROM generate_series(30, 33) g RETURNING id)
	SELECT count(*) FROM w \g /dev/null
RESET ROLE;
SELECT is(h.stat('ne_a', 'rows_read') || ' ' || h.stat('ne_a', 'rows_written'), '1 0',
	'WITH (INSERT of 4 rows) SELECT count(*): the executor''s count is the SELECT''s 1 row read, as in pg_stat_statements');

-- =====================================================================
-- 12. Statements that fail inside a savepoint, then a local switch: the
--     next tenant's statements count for it alone
-- =====================================================================
SELECT tenant_iso.reset_tenant_stats('ne_a') \g /dev/null
SELECT tenant_iso.reset_tenant_stats('ne_b') \g /dev/null
SET ROLE ne_pool;
BEGIN;
SELECT tenant_iso.set_tenant('ne_a', local => true) \g /dev/null
\set ON_ERROR_STOP 0
\echo '# the next 2 statements fail on purpose (division by zero in a savepoint)'
SAVEPOINT s;
SELECT g, 1 / (random() * 0)::int FROM generate_series(1, 3) g;
ROLLBACK TO s;
SAVEPOINT s;
SELECT g, 1 / (random() * 0)::int FROM generate_series(1, 3) g;
ROLLBACK TO s;
\set ON_ERROR_STOP 1
SELECT tenant_iso.set_tenant('ne_b', local => true) \g /dev/null
SELECT g FROM generate_series(1, 5) g \g /dev/null
SELECT g FROM generate_series(1, 5) g \g /dev/null
SELECT g FROM generate_series(1, 5) g \g /dev/null
COMMIT;
RESET ROLE;
SELECT is(h.c3('ne_a'), '1/1/0',
	'ne_a: only the set_tenant(ne_b) that started in it (its two failed statements are not counted)');
SELECT is(h.c3('ne_b'), '3/15/0', 'ne_b: its three SELECTs of 5 rows, none of them booked to ne_a');

-- =====================================================================
-- 13. A context entered with a token counts like any other
-- =====================================================================
SELECT tenant_iso.reset_tenant_stats('ne_c') \g /dev/null
SELECT tenant_iso.issue_token('ne_c', '1 minute') AS ne_tok \gset
SET ROLE ne_plain;
SELECT tenant_iso.set_tenant_token(:'ne_tok') \g /dev/null
SELECT g FROM generate_series(1, 2) g \g /dev/null
SELECT is((SELECT format('%s %s', tenant, sessions_in_context) FROM tenant_iso.tenant_stats), 'ne_c 1',
	'a plain role in ne_c by token sees ne_c''s row, with its session in it');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT is(h.c3('ne_c') || ' ' || h.stat('ne_c', 'sessions_in_context'), '3/4/0 0',
	'ne_c: the SELECT of 2 rows, the check and reset_tenant(); no session after reset_tenant()');

-- =====================================================================
-- 14. tenant_query_stats keeps stats_queries_per_tenant queries a tenant
-- =====================================================================
SELECT tenant_iso.reset_tenant_stats('ne_c') \g /dev/null
SET ROLE ne_pool;
SELECT tenant_iso.set_tenant('ne_c') \g /dev/null
SELECT format('SELECT %s', (SELECT string_agg('1', ', ') FROM generate_series(1, n))) FROM generate_series(1, 30) n \gexec
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT is((SELECT count(*)::int FROM tenant_iso.tenant_query_stats WHERE tenant = 'ne_c'),
	current_setting('tenant_iso.stats_queries_per_tenant')::int,
	'after 32 different queries ne_c has stats_queries_per_tenant (20) of them');
SELECT is((SELECT count(DISTINCT queryid)::int FROM tenant_iso.tenant_query_stats WHERE tenant = 'ne_c'),
	current_setting('tenant_iso.stats_queries_per_tenant')::int, '... all different');
SELECT is(h.stat('ne_c', 'statements'), 32::numeric, 'the statements counter has all 32');

SELECT * FROM finish();

-- ---------------------------------------------------------------------
-- Cleanup
-- ---------------------------------------------------------------------
ALTER SYSTEM RESET tenant_iso.stats_period;
ALTER SYSTEM RESET tenant_iso.default_limits;
SELECT pg_reload_conf() \g /dev/null
DROP TABLE public.ne_t, public.ne_big;
SELECT tenant_iso.remove_member('ne_ma') \g /dev/null
SELECT tenant_iso.revoke_switch('ne_pool') \g /dev/null
DROP OWNED BY ne_pool CASCADE;
DROP OWNED BY ne_ma CASCADE;
DROP ROLE ne_pool, ne_ma, ne_plain;
DELETE FROM tenant_iso.tenants WHERE tenant_id IN ('ne_a', 'ne_b', 'ne_c');
