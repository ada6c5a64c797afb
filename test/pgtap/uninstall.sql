-- test/pgtap/uninstall.sql
--
-- tenant_iso.uninstall() (issue 12, part 3): it unprotects and untracks
-- every table and lists what remains, so that DROP EXTENSION afterwards
-- leaves the tables as they were: readable by their grantees, no triggers,
-- no defaults of ours.  Roles: prefix un_.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'un_reader') THEN
		EXECUTE 'DROP OWNED BY un_reader CASCADE';
		DROP ROLE un_reader;
	END IF;
END
$$;
CREATE ROLE un_reader;

SELECT tenant_iso.create_tenant('ua') \g /dev/null
CREATE TABLE un_t (tenant_id text, id int, v text, PRIMARY KEY (tenant_id, id));
INSERT INTO un_t VALUES ('ua', 1, 'x'), ('ub', 2, 'y');
CREATE TABLE un_p (tenant_id text, id int, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id);
CREATE TABLE un_p1 PARTITION OF un_p FOR VALUES IN ('ua');
INSERT INTO un_p VALUES ('ua', 1);
SELECT tenant_iso.protect('un_t') \g /dev/null
SELECT tenant_iso.protect('un_p') \g /dev/null
SELECT tenant_iso.track('un_t') \g /dev/null
GRANT SELECT ON un_t, un_p TO un_reader;

SELECT plan(10);

SET ROLE un_reader;
SELECT throws_ok('SELECT count(*) FROM un_t', '42501', NULL, 'control: protected before (a reader without context fails closed)');
RESET ROLE;

SET ROLE un_reader;
SELECT throws_ok('SELECT tenant_iso.uninstall()', '42501', NULL, 'uninstall() is refused to a non-superuser');
RESET ROLE;

SELECT is((SELECT string_agg(object, ', ' ORDER BY object) FROM tenant_iso.uninstall()),
	'data keys, history, next steps, protected tables, registry, tracked tables', 'uninstall() lists what it did and what remains');
SELECT is((SELECT count(*) FROM tenant_iso.protected), 0::bigint, 'nothing is protected any more');
SELECT is((SELECT count(*) FROM tenant_iso.tracked), 0::bigint, 'nothing is tracked any more');
SELECT is((SELECT count(*) FROM pg_class WHERE relname IN ('un_t', 'un_p', 'un_p1') AND (relrowsecurity OR relforcerowsecurity)),
	0::bigint, 'row security is off again on the tables and the partition');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'un_t'::regclass AND tgname LIKE 'tenant_iso%'),
	0::bigint, 'the digest triggers are gone');

-- no table is protected any more: role settings are still refused in a tenant context
SELECT tenant_iso.set_tenant('ua') \g /dev/null
SELECT throws_ok($$ALTER ROLE un_reader SET work_mem = '1MB'$$, '42501', NULL,
	'ALTER ROLE ... SET in a tenant context is refused even when no table is protected');
SELECT tenant_iso.reset_tenant() \g /dev/null

DROP EXTENSION tenant_iso CASCADE;
SET ROLE un_reader;
SELECT is((SELECT count(*) FROM un_t), 2::bigint, 'after DROP EXTENSION the reader sees every row of the plain table again');
RESET ROLE;
SELECT is((SELECT count(*) FROM pg_attrdef WHERE adrelid = 'un_t'::regclass), 0::bigint,
	'no tenant default of ours is left on the table');

SELECT * FROM finish();
DROP SCHEMA IF EXISTS tenant_iso CASCADE;
DROP OWNED BY un_reader CASCADE;
DROP ROLE un_reader;
