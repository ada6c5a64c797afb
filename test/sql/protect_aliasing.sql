-- One behaviour: protect() refuses a tenant column in which two registered
-- ids could compare equal, or an id could be truncated (42804).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE COLLATION rg_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE public.rg_short (tenant_id varchar(4) NOT NULL, v int);
CREATE TABLE public.rg_char (tenant_id char(8) NOT NULL, v int);
CREATE TABLE public.rg_folded (tenant_id text COLLATE rg_ci NOT NULL, v int);
CREATE TABLE public.rg_plain (tenant_id text NOT NULL, v int);
SELECT pg_temp.try($$SELECT tenant_iso.protect('public.rg_short')$$) AS rg_short;
SELECT pg_temp.try($$SELECT tenant_iso.protect('public.rg_char')$$) AS rg_char;
SELECT pg_temp.try($$SELECT tenant_iso.protect('public.rg_folded')$$) AS rg_folded;
SELECT pg_temp.try($$SELECT tenant_iso.protect('public.rg_plain')$$) AS rg_plain;
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
 WHERE relname IN ('rg_short', 'rg_char', 'rg_folded', 'rg_plain') ORDER BY 1;
DROP TABLE public.rg_short, public.rg_char, public.rg_folded, public.rg_plain;
DROP COLLATION rg_ci;
DROP EXTENSION tenant_iso;
