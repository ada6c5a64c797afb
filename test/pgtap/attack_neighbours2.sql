-- test/pgtap/attack_neighbours2.sql
--
-- Attacker ta (issue 14): a cursor opened by PL/pgSQL (here in a DO block)
-- and FETCHed at top level must count for its tenant (rows_read) like a
-- DECLAREd cursor (its first top-level run makes it a top-level statement:
-- admitted, rate-limited and counted from then on).
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;
SELECT tenant_iso.create_tenant('an2_a')
 WHERE NOT EXISTS (SELECT 1 FROM tenant_iso.tenants WHERE tenant_id = 'an2_a') \g /dev/null
SELECT tenant_iso.reset_tenant_stats('an2_a') \g /dev/null
SELECT tenant_iso.set_tenant('an2_a') \g /dev/null
SELECT plan(1);
CREATE TEMP TABLE an2_before AS SELECT rows_read FROM tenant_iso.tenant_stats;
BEGIN;
DO $$DECLARE c refcursor := 'an2_c'; BEGIN OPEN c FOR SELECT g FROM generate_series(1, 1000) g; END$$;
FETCH 100 FROM an2_c \g /dev/null
FETCH 100 FROM an2_c \g /dev/null
COMMIT;
SELECT cmp_ok((SELECT rows_read FROM tenant_iso.tenant_stats)
              - (SELECT rows_read FROM an2_before), '>=', 200::bigint,
	'the rows FETCHed from a cursor opened in a DO block count for the tenant');
SELECT * FROM finish();
SELECT tenant_iso.reset_tenant() \g /dev/null
