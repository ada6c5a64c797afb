-- test/pgtap/include/parallel_guc.sql: sets the psql variable parallel_guc
-- to the name of the setting that forces parallel plans, which PostgreSQL
-- 16 renamed from force_parallel_mode to debug_parallel_query.  Use it as
--   SET :"parallel_guc" = on;   ...   RESET :"parallel_guc";
SELECT CASE WHEN pg_catalog.current_setting('server_version_num')::int >= 160000
	THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END AS parallel_guc \gset
