-- test/pgtap/attack_elevated.sql
--
-- Raised rights (THREATS.md class 10): the first data key of a tenant is
-- created, and rotate_tenant_key() stores a new one, through SPI as the key
-- table's owner (a superuser).  A hostile member puts shadows of every
-- function and operator that SQL uses in a schema first in its search_path
-- (and in a PUBLIC-writable public, as in databases upgraded from PG 14).
-- Each shadow records current_user and tries to make the attacker
-- superuser.  No shadow may run, and the path must still do its job.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ae_evil') THEN
		EXECUTE 'DROP OWNED BY ae_evil CASCADE';
		EXECUTE 'DROP ROLE ae_evil';
	END IF;
END
$$;

SELECT plan(7);

CREATE ROLE ae_evil;
SELECT tenant_iso.create_tenant('ae_t');
SELECT tenant_iso.add_member('ae_evil', 'ae_t');
GRANT CREATE ON SCHEMA public TO PUBLIC;
CREATE SCHEMA ae_shadow AUTHORIZATION ae_evil;
CREATE TABLE public.ae_log (who text, fn text);
GRANT INSERT, SELECT ON public.ae_log TO PUBLIC;

SET ROLE ae_evil;
-- shadows in the attacker's own schema (and now() in public too)
CREATE FUNCTION ae_shadow.ae_trap(fn text) RETURNS void LANGUAGE plpgsql AS $b$
BEGIN
	INSERT INTO public.ae_log VALUES (current_user, fn);
	BEGIN
		EXECUTE 'ALTER ROLE ae_evil SUPERUSER';
	EXCEPTION WHEN OTHERS THEN NULL;
	END;
END $b$;
CREATE FUNCTION ae_shadow.ae_larger(int, int) RETURNS int LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('max'); RETURN pg_catalog.int4larger($1, $2); END $b$;
CREATE AGGREGATE ae_shadow.max(int) (sfunc = ae_shadow.ae_larger, stype = int);
CREATE FUNCTION ae_shadow.now() RETURNS timestamptz LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('now'); RETURN pg_catalog.now(); END $b$;
CREATE FUNCTION ae_shadow.ae_texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('text ='); RETURN pg_catalog.texteq($1, $2); END $b$;
CREATE OPERATOR ae_shadow.= (LEFTARG = text, RIGHTARG = text, FUNCTION = ae_shadow.ae_texteq);
CREATE FUNCTION ae_shadow.ae_int4eq(int, int) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('int ='); RETURN pg_catalog.int4eq($1, $2); END $b$;
CREATE OPERATOR ae_shadow.= (LEFTARG = int, RIGHTARG = int, FUNCTION = ae_shadow.ae_int4eq);
CREATE FUNCTION ae_shadow.ae_int4pl(int, int) RETURNS int LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('int +'); RETURN pg_catalog.int4pl($1, $2); END $b$;
CREATE OPERATOR ae_shadow.+ (LEFTARG = int, RIGHTARG = int, FUNCTION = ae_shadow.ae_int4pl);
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('public.now'); RETURN pg_catalog.now(); END $b$;

-- the shadows work when called directly (positive control for the traps)
SET search_path = ae_shadow, pg_catalog, public;
SELECT is((SELECT 'a'::text = 'a'::text), true, 'the shadow = operator is live for the attacker');
SELECT ok((SELECT count(*) FROM public.ae_log WHERE who = 'ae_evil') >= 1,
	'a shadow records its caller when it runs');
RESET ROLE;
DELETE FROM public.ae_log;
SET ROLE ae_evil;

-- elevated path 1: the first data key of a brand-new tenant.  The
-- statement runs under the hostile search_path; the assertions run after
-- it is reset (pgTAP's own functions resolve names through search_path).
CREATE TABLE public.ae_out (step text, val text);
GRANT INSERT, SELECT ON public.ae_out TO PUBLIC;
INSERT INTO public.ae_out SELECT 'first', pg_catalog.encode(tenant_iso.encrypt('hello'::text), 'base64');
RESET search_path;
SELECT is((SELECT tenant_iso.decrypt_text(pg_catalog.decode(val, 'base64')) FROM public.ae_out WHERE step = 'first'),
	'hello', 'the member''s first encrypt() under the hostile search_path created a working key');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM public.ae_log), 0,
	'no shadow ran while the first data key was created as the key table''s owner');

-- elevated path 2: rotate_tenant_key() by a careless administrator whose
-- search_path puts the tenant-writable schemas first
SET search_path = ae_shadow, public, pg_catalog;
INSERT INTO public.ae_out SELECT 'rotate', tenant_iso.rotate_tenant_key('ae_t')::text;
RESET search_path;
SELECT is((SELECT val FROM public.ae_out WHERE step = 'rotate'), '2', 'rotate_tenant_key() stored version 2');
SELECT is((SELECT count(*)::int FROM public.ae_log), 0,
	'no shadow ran during rotate_tenant_key()');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'ae_evil'), false,
	'the attacker did not become superuser');

SELECT * FROM finish();

DROP OWNED BY ae_evil CASCADE;
DROP TABLE public.ae_log;
SELECT tenant_iso.remove_member('ae_evil');
DROP ROLE ae_evil;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DELETE FROM tenant_iso.data_keys WHERE tenant_id = 'ae_t';
DELETE FROM tenant_iso.tenants WHERE tenant_id = 'ae_t';
