-- test/pgtap/upgrade_pending.sql
--
-- One library serves both script versions until ALTER EXTENSION UPDATE
-- runs (issue 12, part 2): with the 0.1.0 SQL objects installed and this
-- library loaded, what 0.1.0 did keeps working (context, isolation,
-- encryption, verify), and what needs the 0.2.0 objects (COPY into a
-- protected table uses tenant_iso._copy_check) refuses with 55000 and a
-- hint naming ALTER EXTENSION tenant_iso UPDATE, never with a bare
-- "function does not exist".  After the update it works.
-- Roles: prefix upp_.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP EXTENSION IF EXISTS tenant_iso CASCADE;
DROP SCHEMA IF EXISTS tenant_iso CASCADE;
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'upp_a') THEN
		EXECUTE 'DROP OWNED BY upp_a CASCADE';
		DROP ROLE upp_a;
	END IF;
END
$$;
CREATE ROLE upp_a;

CREATE EXTENSION tenant_iso VERSION '0.1.0';
SELECT tenant_iso.create_tenant('pa') \g /dev/null
SELECT tenant_iso.create_tenant('pb') \g /dev/null
SELECT tenant_iso.add_member('upp_a', 'pa') \g /dev/null
CREATE TABLE upp_t (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('upp_t') \g /dev/null
GRANT SELECT, INSERT ON upp_t TO upp_a;
SELECT tenant_iso.set_tenant('pb') \g /dev/null
INSERT INTO upp_t VALUES ('pb', 1, 'of pb');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT tenant_iso.track('upp_t') \g /dev/null

SELECT plan(12);

SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'tenant_iso'), '0.1.0',
	'the 0.1.0 SQL objects are installed with the newer library');

SET ROLE upp_a;
SELECT lives_ok($$INSERT INTO upp_t VALUES ('pa', 1, 'of pa')$$,
	'0.1.0 objects: a member inserts its own row');
SELECT is((SELECT string_agg(v, ',') FROM upp_t), 'of pa',
	'0.1.0 objects: the member sees only its own row');
SELECT throws_ok($$INSERT INTO upp_t VALUES ('pb', 2, 'forged')$$, '42501', NULL,
	'0.1.0 objects: a row for another tenant is refused');
SELECT is(tenant_iso.decrypt_text(tenant_iso.encrypt('s3cret', 'upp.v'), 'upp.v'), 's3cret',
	'0.1.0 objects: encrypt/decrypt round trip');

-- COPY into a protected table needs 0.2.0's tenant_iso._copy_check.  A
-- server file, so that the COPY runs inside a function and its error can
-- be caught (COPY FROM STDIN cannot run in PL/pgSQL).
RESET ROLE;
DO $$
BEGIN
	EXECUTE format('COPY (SELECT 3, %L) TO %L', 'copied',
				   current_setting('data_directory') || '/upp_copy.tsv');
END
$$;
GRANT pg_read_server_files TO upp_a;
SELECT current_setting('data_directory') || '/upp_copy.tsv' AS copyfile \gset
SET upp.copyfile = :'copyfile';
CREATE TEMP TABLE copy_result (state text, msg text, hint text);
GRANT INSERT, SELECT ON copy_result TO upp_a;
CREATE FUNCTION pg_temp.try_copy() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	s text; m text; h text;
BEGIN
	BEGIN
		EXECUTE format('COPY upp_t (id, v) FROM %L', current_setting('upp.copyfile'));
		s := 'none';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, h = PG_EXCEPTION_HINT;
	END;
	INSERT INTO copy_result VALUES (s, m, h);
END
$$;
SET ROLE upp_a;
SELECT pg_temp.try_copy() \g /dev/null
RESET ROLE;
SELECT is((SELECT state FROM copy_result), '55000',
	'0.1.0 objects: COPY into a protected table -> 55000 (object not in prerequisite state)');
SELECT matches((SELECT msg FROM copy_result), 'needs the tenant_iso [0-9.]+ SQL objects, but version 0\.1\.0 is installed',
	'its message says which version is installed and which is needed');
SELECT is((SELECT hint FROM copy_result), 'Run ALTER EXTENSION tenant_iso UPDATE.',
	'its hint names ALTER EXTENSION tenant_iso UPDATE');

SELECT lives_ok($$SELECT * FROM tenant_iso.verify('upp_t')$$,
	'0.1.0 objects: verify() runs');

ALTER EXTENSION tenant_iso UPDATE;
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'tenant_iso'),
	(SELECT default_version FROM pg_available_extensions WHERE name = 'tenant_iso'),
	'after ALTER EXTENSION UPDATE: the default version');
TRUNCATE copy_result;
SET ROLE upp_a;
SELECT pg_temp.try_copy() \g /dev/null
RESET ROLE;
SELECT is((SELECT state FROM copy_result), 'none',
	'after the update the same COPY succeeds');
SELECT is((SELECT string_agg(v, ',' ORDER BY id) FROM upp_t WHERE tenant_id = 'pa'), 'of pa,copied',
	'after the update a member''s COPY loads its rows, into its own tenant');

SELECT * FROM finish();
