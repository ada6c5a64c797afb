-- test/pgtap/attack_history_owner.sql
--
-- Raised rights in row history (issue 13, THREATS.md class 10): the
-- history table of a table is owned by the extension's owner (a
-- superuser), and the extension's own DDL and writes on it run as that
-- owner (the ALTER TABLE event trigger that keeps its columns in step, the
-- BEFORE TRUNCATE trigger that keeps what a TRUNCATE removes).  A hostile
-- table owner (not a superuser, not a tenant member: the application's
-- owner role) gives its protected, history-enabled table columns of a
-- domain whose CHECK calls the owner's own function, which records
-- current_user and tries to make the owner superuser.  A member of the
-- tenant writes and restores the rows.  A domain CHECK runs wherever a
-- value is coerced to the domain: if history stored the domain, the
-- superuser's ADD COLUMN (which checks NULL against the domain for every
-- existing history row) and INSERT would run it.  History stores the
-- domain's base type, so the function may run only as the member itself.
-- Each step also has its positive control: the history is kept and the
-- restore brings the domain values back (as the member, through the
-- domain, which is checked then).
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aho_evil') THEN
		EXECUTE 'DROP OWNED BY aho_evil CASCADE';
		EXECUTE 'DROP ROLE aho_evil';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aho_m') THEN
		EXECUTE 'DROP OWNED BY aho_m CASCADE';
		EXECUTE 'DROP ROLE aho_m';
	END IF;
END
$$;
DROP TABLE IF EXISTS public.aho_log;

SELECT plan(12);

CREATE ROLE aho_evil;
CREATE ROLE aho_m;
SELECT tenant_iso.create_tenant('aho_t') \g /dev/null
SELECT tenant_iso.add_member('aho_m', 'aho_t') \g /dev/null
CREATE SCHEMA aho AUTHORIZATION aho_evil;
CREATE TABLE public.aho_log (who text, what text);
GRANT INSERT, SELECT ON public.aho_log TO PUBLIC;

SET ROLE aho_evil;
CREATE FUNCTION aho.trap(v int) RETURNS boolean LANGUAGE plpgsql AS $b$
BEGIN
	INSERT INTO public.aho_log VALUES (current_user, 'domain check');
	BEGIN
		EXECUTE 'ALTER ROLE aho_evil SUPERUSER';
	EXCEPTION WHEN OTHERS THEN NULL;
	END;
	RETURN true;
END $b$;
CREATE DOMAIN aho.evil AS int CHECK (aho.trap(VALUE));
CREATE TABLE aho.t (tenant_id text NOT NULL, id int, v aho.evil, PRIMARY KEY (tenant_id, id));
GRANT USAGE ON SCHEMA aho TO aho_m;
GRANT SELECT, INSERT, UPDATE, DELETE ON aho.t TO aho_m;
-- protect() and enable_history(): the table's owner may
SELECT tenant_iso.protect('aho.t') \g /dev/null
SELECT tenant_iso.enable_history('aho.t') \g /dev/null
RESET ROLE;
SET ROLE aho_m;
INSERT INTO aho.t (id, v) VALUES (1, 10), (2, 20);
SELECT clock_timestamp() AS t0 \gset
UPDATE aho.t SET v = v + 1;
RESET ROLE;

SELECT is((SELECT format_type(atttypid, atttypmod) FROM pg_attribute
			WHERE attrelid = 'tenant_iso_history."aho.t"'::regclass AND attname = 'v'),
		  'integer', 'the history table stores the domain column as its base type');
SELECT is((SELECT count(*)::int FROM tenant_iso_history."aho.t"), 4,
		  'control: the member''s inserts and updates are in its history (2 I, 2 U)');

-- 1. ALTER TABLE ... ADD COLUMN of the domain: the event trigger adds it to
--    the history table (4 rows) as the extension's owner
TRUNCATE public.aho_log;
SET ROLE aho_evil;
ALTER TABLE aho.t ADD COLUMN w aho.evil;
RESET ROLE;
SELECT is((SELECT count(*)::int FROM public.aho_log WHERE who <> 'aho_evil'), 0,
		  'ADD COLUMN of a domain type: the domain CHECK never ran as anyone but the owner');
SELECT is((SELECT format_type(atttypid, atttypmod) FROM pg_attribute
			WHERE attrelid = 'tenant_iso_history."aho.t"'::regclass AND attname = 'w'),
		  'integer', 'control: the history table has the new column, as the base type');

-- 2. ALTER COLUMN ... TYPE to the domain: the old values move to text, the
--    column starts anew in the (base) type
TRUNCATE public.aho_log;
SET ROLE aho_evil;
ALTER TABLE aho.t ADD COLUMN u int;
RESET ROLE;
SET ROLE aho_m;
UPDATE aho.t SET u = 5;
RESET ROLE;
SET ROLE aho_evil;
ALTER TABLE aho.t ALTER COLUMN u TYPE aho.evil;
RESET ROLE;
SELECT is((SELECT count(*)::int FROM public.aho_log WHERE who NOT IN ('aho_evil', 'aho_m')), 0,
		  'ALTER COLUMN TYPE to a domain: the domain CHECK ran as the owner or the member only');

-- 3. TRUNCATE: the BEFORE TRUNCATE trigger copies the rows into history as
--    the extension's owner
TRUNCATE public.aho_log;
SET ROLE aho_evil;
TRUNCATE aho.t;	-- the owner's, outside any tenant context (in one TRUNCATE is refused)
RESET ROLE;
SELECT is((SELECT count(*)::int FROM public.aho_log WHERE who <> 'aho_evil'), 0,
		  'TRUNCATE: keeping the removed rows ran no domain CHECK as the extension''s owner');
SELECT is((SELECT count(*)::int FROM tenant_iso_history."aho.t" WHERE op = 'T'), 2,
		  'control: the two truncated rows are in history as T');

-- 4. the restore runs as the member: the domain is checked then, as the member
TRUNCATE public.aho_log;
SET ROLE aho_m;
SELECT is((SELECT inserted::int FROM tenant_iso.restore_rows('aho.t', :'t0')), 2,
		  'control: the member rewinds its table: the two rows come back');
SELECT is((SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM aho.t), '1=10,2=20',
		  'control: with their values at t0 (through the domain)');
RESET ROLE;
SELECT ok((SELECT count(*) FROM public.aho_log) > 0 AND
		  (SELECT count(*) FROM public.aho_log WHERE who <> 'aho_m') = 0,
		  'the restore checked the domain, as the member and only as the member');

SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'aho_evil'), false,
		  'the owner is not superuser after all of it');
SELECT is((SELECT count(*)::int FROM pg_roles WHERE rolname = 'aho_evil' AND (rolcreaterole OR rolcreatedb OR rolbypassrls)), 0,
		  'and gained no other role attribute');

SELECT * FROM finish();

SELECT tenant_iso.disable_history('aho.t') \g /dev/null
DROP OWNED BY aho_evil CASCADE;
DROP OWNED BY aho_m CASCADE;
DROP ROLE aho_evil;
DROP ROLE aho_m;
DROP TABLE public.aho_log;
