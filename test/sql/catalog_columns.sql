-- The column order of the configuration tables that C reads or writes by
-- position (src/catalog.h).  Moving a column in an install or upgrade
-- script changes this output; change src/catalog.h with it.
\set VERBOSITY terse
CREATE EXTENSION tenant_iso;

SELECT c.relname, a.attnum, a.attname, a.atttypid::regtype AS type
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'tenant_iso'::regnamespace
   AND c.relname IN ('tenants', 'members', 'switchers', 'protected', 'data_keys',
                     'tracked', 'digests', 'token_keys', 'token_revocations',
                     'history_tables')
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, a.attnum;

DROP EXTENSION tenant_iso;
