-- The SQL surface of tenant_iso: functions, views, comments and privileges.
\set VERBOSITY terse
CREATE EXTENSION tenant_iso;

-- every function, with its signature
\df tenant_iso.*

-- every function and view explains itself
SELECT p.oid::regprocedure AS function, obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc p WHERE p.pronamespace = 'tenant_iso'::regnamespace
 ORDER BY p.oid::regprocedure::text;
SELECT c.relname, c.relkind, obj_description(c.oid, 'pg_class') IS NOT NULL AS commented
  FROM pg_class c WHERE c.relnamespace = 'tenant_iso'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY 1;

-- volatility and parallel safety of the hot-path functions
SELECT proname, provolatile, proparallel, prosecdef
  FROM pg_proc WHERE pronamespace = 'tenant_iso'::regnamespace
   AND proname IN ('current_tenant', '_enforced_tenant', 'set_tenant', 'set_tenant_token')
 ORDER BY 1;

-- what PUBLIC may execute, internal (_-prefixed) functions included: a
-- function newly executable by PUBLIC changes this list
SELECT p.oid::regprocedure AS function, p.prosecdef AS definer
  FROM pg_proc p
 WHERE p.pronamespace = 'tenant_iso'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;

-- SECURITY DEFINER functions all pin search_path
SELECT p.oid::regprocedure
  FROM pg_proc p
 WHERE p.pronamespace = 'tenant_iso'::regnamespace AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');

-- configuration tables are dumped by pg_dump
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'tenant_iso';

-- PUBLIC has no access to the configuration tables
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'tenant_iso'::regnamespace AND c.relkind = 'r'
   AND has_table_privilege('public', c.oid, 'SELECT');

-- settings
SELECT name, context, vartype FROM pg_settings WHERE name LIKE 'tenant\_iso.%' ORDER BY 1;

DROP EXTENSION tenant_iso;
