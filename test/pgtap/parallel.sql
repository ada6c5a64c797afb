-- test/pgtap/parallel.sql: the tenant context in parallel workers
-- (THREATS class 4, parallel workers).
--
-- A protected table of 100 000 rows over two tenants (acme 60 000, beta
-- 40 000).  Parallel plans are forced; EXPLAIN (FORMAT JSON) checks that a
-- Gather with a Parallel Seq Scan is used and that the row policy and
-- current_tenant() are evaluated in the parallel scan, below the Gather.
-- With parallel_leader_participation = off every row comes from a worker,
-- which the test checks with a helper returning the evaluating backend's pid.
--
-- Roles (cluster-wide) carry the prefix par_ and are dropped at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DROP ROLE IF EXISTS par_m, par_pool;
CREATE ROLE par_m;      -- member of acme
CREATE ROLE par_pool;   -- switcher

SELECT tenant_iso.create_tenant(t) FROM unnest(ARRAY['acme', 'beta']) t \g /dev/null
SELECT tenant_iso.add_member('par_m', 'acme') \g /dev/null
SELECT tenant_iso.grant_switch('par_pool') \g /dev/null

CREATE TABLE public.par_data (tenant_id text NOT NULL, id int NOT NULL, pad text NOT NULL);
INSERT INTO public.par_data
	SELECT CASE WHEN i % 5 < 3 THEN 'acme' ELSE 'beta' END, i, repeat('x', 40)
	  FROM generate_series(1, 100000) i;
SELECT tenant_iso.protect('public.par_data') \g /dev/null
GRANT SELECT ON public.par_data TO par_m, par_pool;
ANALYZE public.par_data;

CREATE SCHEMA par_s;
GRANT USAGE ON SCHEMA par_s TO PUBLIC;
-- the plan of a query, as jsonb
CREATE FUNCTION par_s.plan(q text, verb boolean DEFAULT false) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
	EXECUTE format('EXPLAIN (FORMAT JSON%s) %s', CASE WHEN verb THEN ', VERBOSE' ELSE '' END, q) INTO j;
	RETURN j::jsonb;
END $$;
-- is there a node of this type in the plan (parallel aware or not)?
CREATE FUNCTION par_s.has_node(q text, node text, parallel_aware boolean DEFAULT false) RETURNS boolean
LANGUAGE sql AS $$
	SELECT jsonb_path_exists(par_s.plan(q),
		'$.** ? (@."Node Type" == $n && (@."Parallel Aware" == true || $pa == false))',
		jsonb_build_object('n', node, 'pa', parallel_aware)) $$;
-- does a parallel-aware Seq Scan node (below the Gather, run by the
-- workers) compute this, in its output list (o = 'Output') or its filter
-- (o = 'Filter') something that matches the regular expression pattern?
CREATE FUNCTION par_s.scan_has(q text, o text, pattern text) RETURNS boolean LANGUAGE sql AS $$
	SELECT coalesce(bool_or(x #>> '{}' ~ pattern), false)
	  FROM jsonb_path_query(par_s.plan(q, true),
			'$.** ? (@."Node Type" == "Seq Scan" && @."Parallel Aware" == true)') AS n,
	       LATERAL (SELECT n -> o AS x WHERE jsonb_typeof(n -> o) = 'string'
	                UNION ALL
	                SELECT e FROM jsonb_array_elements(CASE WHEN jsonb_typeof(n -> o) = 'array'
	                                                        THEN n -> o ELSE '[]' END) e) s $$;
-- the pid of the backend that evaluates it (deliberately marked parallel
-- safe, so that it runs in the workers)
CREATE FUNCTION par_s.pid() RETURNS int LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS
	$$ BEGIN RETURN pg_backend_pid(); END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA par_s TO PUBLIC;

-- force parallel plans
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
\ir include/parallel_guc.sql
SET :"parallel_guc" = on;
SET parallel_leader_participation = off;

-- The queries under test.  They run as top-level statements and their
-- results are kept with \gset: a query nested in a pgTAP call (a parallel
-- unsafe function) or run by PL/pgSQL EXECUTE is never given a parallel plan.
\set q_count 'SELECT count(*) FROM public.par_data'
\set q_rows 'SELECT tenant_iso.current_tenant() AS t, par_s.pid() AS p, id FROM public.par_data'
-- rows, sum of ids, and the groups by tenant
\set q_sum 'SELECT count(*) AS n, sum(id) AS s FROM public.par_data'
\set q_groups 'SELECT string_agg(tenant_id || '':'' || n, '','' ORDER BY tenant_id) AS g FROM (SELECT tenant_id, count(*) n FROM public.par_data GROUP BY tenant_id) s'
-- what the workers see: rows, distinct tenants, the tenant, whether every
-- row came from a worker (pid differs from the leader's)
\set q_workers 'SELECT format(''rows=%s tenants=%s tenant=%s all_in_workers=%s'', count(*), count(DISTINCT t), min(t), bool_and(p <> pg_backend_pid())) AS w FROM (SELECT tenant_iso.current_tenant() AS t, par_s.pid() AS p, id FROM public.par_data) s'

SELECT sum(i) AS acme_sum FROM generate_series(1, 100000) i WHERE i % 5 < 3 \gset
SELECT sum(i) AS beta_sum FROM generate_series(1, 100000) i WHERE i % 5 >= 3 \gset

SELECT plan(45);

-- ===================================================================
-- 0. Sanity: parallel plans are used
-- ===================================================================
:q_sum \gset su_
:q_workers \gset su_
SELECT is(:'su_n'::text, '100000', 'superuser (bypasses row security): 100 000 rows');
SELECT ok(par_s.has_node(:'q_count', 'Gather'), 'superuser: count(*) uses a Gather');
SELECT ok(par_s.has_node(:'q_count', 'Seq Scan', true), 'superuser: ... over a Parallel Seq Scan');
SELECT is(:'su_w'::text, 'rows=100000 tenants=0 tenant= all_in_workers=t',
	'superuser: every row comes from a parallel worker (and there is no tenant)');

-- ===================================================================
-- 1. Member role
-- ===================================================================
SET ROLE par_m;
SELECT ok(par_s.has_node(:'q_count', 'Gather'), 'member: count(*) uses a Gather');
SELECT ok(par_s.has_node(:'q_count', 'Seq Scan', true), 'member: ... over a Parallel Seq Scan');
SELECT ok(par_s.scan_has(:'q_count', 'Filter', '= (\$0|\(InitPlan 1\)\.col1)'),
	'member: the tenant policy is evaluated in the Parallel Seq Scan (in the workers, with the value of the InitPlan, $0)');
SELECT ok(par_s.has_node(:'q_rows', 'Gather'), 'member: the per-row current_tenant() query uses a Gather');
SELECT ok(par_s.scan_has(:'q_rows', 'Output', 'current_tenant\(\)'),
	'member: current_tenant() is computed in the Parallel Seq Scan (in the workers)');
SELECT ok(par_s.has_node(:'q_groups', 'Seq Scan', true), 'member: the GROUP BY query is parallel too');
:q_sum \gset m_
:q_groups \gset m_
:q_workers \gset m_
SELECT is(:'m_n'::text, '60000', 'member: parallel count(*) = acme''s 60 000 rows');
SELECT is(:'m_s'::text, :'acme_sum'::text, 'member: parallel sum(id) is exactly acme''s');
SELECT is(:'m_g'::text, 'acme:60000', 'member: parallel GROUP BY sees only acme');
SELECT is(:'m_w'::text, 'rows=60000 tenants=1 tenant=acme all_in_workers=t',
	'member: the workers evaluate current_tenant() = acme, for acme''s rows only');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta')$$, '42501', NULL, 'member: cannot switch');
RESET ROLE;

-- ===================================================================
-- 2. Switcher role
-- ===================================================================
SET ROLE par_pool;
-- without a context the workers fail closed
\set ON_ERROR_STOP 0
:q_count;
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '42501', 'pool without a context: the parallel scan fails (42501)');
SELECT is(:'LAST_ERROR_MESSAGE'::text, 'no tenant context', '... with "no tenant context"');
\set ON_ERROR_STOP 0
:q_workers;
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text || ' ' || :'LAST_ERROR_MESSAGE'::text, '42501 no tenant context',
	'pool without a context: the per-row query fails closed too');
SELECT throws_ok(:'q_count', '42501', 'no tenant context', '... also when run serially');

SELECT tenant_iso.set_tenant('beta') \g /dev/null
SELECT ok(par_s.has_node(:'q_count', 'Seq Scan', true), 'pool in beta: count(*) uses a Parallel Seq Scan');
SELECT ok(par_s.scan_has(:'q_count', 'Filter', '= (\$0|\(InitPlan 1\)\.col1)'),
	'pool in beta: the tenant policy is in the Parallel Seq Scan');
:q_sum \gset p_
:q_groups \gset p_
:q_workers \gset p_
SELECT is(:'p_n'::text, '40000', 'pool in beta: parallel count(*) = 40 000');
SELECT is(:'p_s'::text, :'beta_sum'::text, 'pool in beta: parallel sum(id) is exactly beta''s');
SELECT is(:'p_g'::text, 'beta:40000', 'pool in beta: parallel GROUP BY sees only beta');
SELECT is(:'p_w'::text, 'rows=40000 tenants=1 tenant=beta all_in_workers=t',
	'pool in beta: the workers evaluate current_tenant() = beta, for beta''s rows only');

SELECT tenant_iso.set_tenant('acme') \g /dev/null
:q_sum \gset p2_
:q_workers \gset p2_
SELECT is(:'p2_n'::text, '60000', 'pool switched to acme: parallel count(*) = 60 000');
SELECT is(:'p2_w'::text, 'rows=60000 tenants=1 tenant=acme all_in_workers=t',
	'pool switched to acme: the workers see acme');

-- a prepared statement reused after a switch
PREPARE par_q AS SELECT count(*) AS n FROM public.par_data;
SELECT tenant_iso.set_tenant('acme') \g /dev/null
EXECUTE par_q \gset pq1_
SELECT tenant_iso.set_tenant('beta') \g /dev/null
EXECUTE par_q \gset pq2_
SELECT tenant_iso.set_tenant('acme') \g /dev/null
EXECUTE par_q \gset pq3_
SELECT is(:'pq1_n'::text, '60000', 'prepared parallel count in acme: 60 000');
SELECT is(:'pq2_n'::text, '40000', 'the same prepared statement after switching to beta: 40 000');
SELECT is(:'pq3_n'::text, '60000', '... and back in acme: 60 000');
SELECT tenant_iso.reset_tenant() \g /dev/null
\set ON_ERROR_STOP 0
EXECUTE par_q;
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text || ' ' || :'LAST_ERROR_MESSAGE'::text, '42501 no tenant context',
	'... and with no context, the cached parallel plan fails closed: 42501');
DEALLOCATE par_q;

-- a transaction-local context reaches the workers too
BEGIN;
SELECT tenant_iso.set_tenant('beta', true) \g /dev/null
:q_sum \gset l_
:q_workers \gset l_
SELECT par_s.has_node(:'q_count', 'Seq Scan', true) AS l_parallel \gset
COMMIT;
SELECT is(:'l_parallel'::text, 't', 'local context: the count still uses a Parallel Seq Scan');
SELECT is(:'l_n'::text, '40000', 'local context beta: parallel count(*) = 40 000');
SELECT is(:'l_w'::text, 'rows=40000 tenants=1 tenant=beta all_in_workers=t',
	'local context beta: the workers see beta');
\set ON_ERROR_STOP 0
:q_count;
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text || ' ' || :'LAST_ERROR_MESSAGE'::text, '42501 no tenant context',
	'after COMMIT the local context is gone, also for the workers');

-- a local context over a session context, and a savepoint rollback
SELECT tenant_iso.set_tenant('acme') \g /dev/null
BEGIN;
SAVEPOINT s;
SELECT tenant_iso.set_tenant('beta', true) \g /dev/null
:q_workers \gset sp1_
ROLLBACK TO SAVEPOINT s;
:q_workers \gset sp2_
COMMIT;
SELECT is(:'sp1_w'::text, 'rows=40000 tenants=1 tenant=beta all_in_workers=t',
	'savepoint: the workers see local beta after the savepoint');
SELECT is(:'sp2_w'::text, 'rows=60000 tenants=1 tenant=acme all_in_workers=t',
	'savepoint: after ROLLBACK TO SAVEPOINT the workers see acme again');
RESET ROLE;

-- ===================================================================
-- 3. Suspension reaches the workers
-- ===================================================================
SELECT tenant_iso.suspend_tenant('acme') \g /dev/null
SET ROLE par_pool;
\set ON_ERROR_STOP 0
:q_count;
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text || ' ' || :'LAST_ERROR_MESSAGE'::text, '42501 tenant "acme" is suspended',
	'pool in acme, acme suspended: the parallel scan is refused');
SET ROLE par_m;
\set ON_ERROR_STOP 0
:q_workers;
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text || ' ' || :'LAST_ERROR_MESSAGE'::text, '42501 tenant "acme" is suspended',
	'member of suspended acme: the parallel per-row query is refused');
RESET ROLE;
SELECT tenant_iso.resume_tenant('acme') \g /dev/null
SET ROLE par_m;
:q_sum \gset r_
SELECT is(:'r_n'::text, '60000', 'after resume_tenant the member reads acme again (in parallel)');
RESET ROLE;
SET ROLE par_pool;
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;

-- ===================================================================
-- 4. Parallel index scans
-- ===================================================================
CREATE INDEX par_data_tenant_id ON public.par_data (tenant_id, id);
ANALYZE public.par_data;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET min_parallel_index_scan_size = 0;
\set q_idx 'SELECT count(*) AS n, sum(id) AS s FROM public.par_data WHERE id > 0'
\set q_idx_other 'SELECT count(*) AS n FROM public.par_data WHERE tenant_id IN (''acme'', ''beta'')'
SET ROLE par_m;
SELECT ok(jsonb_path_exists(par_s.plan(:'q_idx'),
		'$.** ? (@."Parallel Aware" == true && @."Node Type" starts with "Index")'),
	'member: with the index, a parallel index scan is used');
:q_idx \gset i_
:q_idx_other \gset io_
SELECT is(:'i_n'::text || ' ' || :'i_s'::text, '60000 ' || :'acme_sum'::text,
	'member: the parallel index scan returns acme''s rows exactly');
SELECT is(:'io_n'::text, '60000', 'member: asking the index for both tenants'' keys returns acme''s rows only');
RESET ROLE;
SET ROLE par_pool;
SELECT tenant_iso.set_tenant('beta') \g /dev/null
:q_idx \gset pi_
:q_idx_other \gset pio_
SELECT is(:'pi_n'::text || ' ' || :'pi_s'::text, '40000 ' || :'beta_sum'::text,
	'pool in beta: the parallel index scan returns beta''s rows exactly');
SELECT is(:'pio_n'::text, '40000', 'pool in beta: asking the index for both tenants'' keys returns beta''s rows only');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
RESET enable_seqscan;
RESET enable_bitmapscan;

SELECT * FROM finish();

-- ===================================================================
-- cleanup (roles are cluster-wide)
-- ===================================================================
RESET ROLE;
SELECT tenant_iso.remove_member(member) FROM tenant_iso.members \g /dev/null
SELECT tenant_iso.revoke_switch(grantee) FROM tenant_iso.switchers \g /dev/null
DROP SCHEMA par_s CASCADE;
DROP TABLE public.par_data;
DROP OWNED BY par_m, par_pool;
DROP ROLE par_m, par_pool;
