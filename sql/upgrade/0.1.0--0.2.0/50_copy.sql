-- 50_copy: part of tenant_iso--0.1.0--0.2.0.sql (issue 10)
--
-- The fast COPY FROM path (src/copy.c) runs PostgreSQL's own COPY into a
-- protected table with this function in its WHERE list: it raises, with the
-- message of a WITH CHECK violation, instead of skipping a foreign row.
-- IMMUTABLE (it returns true or raises, for its arguments alone): COPY then
-- keeps its batched inserts, which a volatile WHERE would turn off.
CREATE FUNCTION tenant_iso._copy_check(ok boolean, relname text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ti_copy_check'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso._copy_check(boolean, text) IS
	'Internal (COPY FROM into a protected table): true, or 42501 for a row of another tenant';
GRANT EXECUTE ON FUNCTION tenant_iso._copy_check(boolean, text) TO PUBLIC;
