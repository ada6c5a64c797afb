-- The tenant-id syntax is written three times: in C (ti_tenant_id_valid(),
-- src/token.h, used by set_tenant() and the tokens) and in SQL (the
-- function tenant_iso._check_tenant_id() and the CHECK constraint on
-- tenant_iso.tenants.tenant_id).  All three must accept the same ids.
\set VERBOSITY terse
CREATE EXTENSION tenant_iso;

CREATE FUNCTION pg_temp.c_accepts(id text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	-- set_tenant() checks the syntax first; any other outcome means "valid"
	PERFORM tenant_iso.set_tenant(id, true);
	RAISE EXCEPTION 'accepted' USING ERRCODE = 'P0001';
EXCEPTION
	WHEN invalid_parameter_value THEN
		RETURN SQLERRM <> 'invalid tenant id';
	WHEN OTHERS THEN
		RETURN true;
END
$$;

CREATE FUNCTION pg_temp.sql_accepts(id text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM tenant_iso._check_tenant_id(id);
	RETURN true;
EXCEPTION
	WHEN invalid_parameter_value THEN
		RETURN false;
END
$$;

CREATE TEMP TABLE ids(label text, id text);
INSERT INTO ids VALUES
	('empty', ''), ('one letter', 'a'), ('every class', 'Az09_.:-'),
	('63 bytes', repeat('x', 63)), ('64 bytes', repeat('x', 64)),
	('dash', '-'), ('dot', '.'), ('colon', ':'), ('underscore', '_'),
	('space', 'a b'), ('slash', 'a/b'), ('quote', 'a''b'), ('percent', 'a%'),
	('semicolon', 'a;'), ('plus', 'a+b'), ('dollar', 'a$'), ('newline', E'a\nb'),
	('non-ASCII', 'caf' || chr(233)), ('62 + non-ASCII', repeat('x', 62) || chr(233));

-- the regular expression of the CHECK constraint on tenants.tenant_id
SELECT (regexp_match(pg_get_constraintdef(oid), $$~ '([^']*)'$$))[1] AS check_regex
  FROM pg_constraint
 WHERE conrelid = 'tenant_iso.tenants'::regclass AND contype = 'c'
   AND pg_get_constraintdef(oid) LIKE '%tenant_id ~%' \gset
SELECT :'check_regex' AS check_regex;

SELECT label, pg_temp.c_accepts(id) AS c, pg_temp.sql_accepts(id) AS sql_function,
       id ~ :'check_regex' AS sql_check,
       pg_temp.c_accepts(id) = pg_temp.sql_accepts(id)
         AND pg_temp.sql_accepts(id) = (id ~ :'check_regex') AS agree
  FROM ids ORDER BY label;

DROP EXTENSION tenant_iso;
