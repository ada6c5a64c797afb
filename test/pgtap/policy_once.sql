-- test/pgtap/policy_once.sql
--
-- The tenant policy evaluates the context once per scan (an InitPlan), not
-- once per row, without losing index conditions, generic-plan correctness
-- across tenant switches, or fail-closed behaviour with no context.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['po_acme', 'po_pool'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;
CREATE ROLE po_acme;
CREATE ROLE po_pool;
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('acme');
	PERFORM tenant_iso.create_tenant('globex');
	PERFORM tenant_iso.add_member('po_acme', 'acme');
	PERFORM tenant_iso.grant_switch('po_pool');
END
$$;
CREATE SCHEMA po;
GRANT USAGE ON SCHEMA po TO PUBLIC;
CREATE FUNCTION po.plan(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	l text;
	r text := '';
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		r := r || l || E'\n';
	END LOOP;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;
CREATE FUNCTION po.val(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE q INTO r;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

CREATE TABLE po.big (tenant_id text NOT NULL, id int, v int);
INSERT INTO po.big SELECT CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, g, g FROM generate_series(1, 2000) g;
CREATE TABLE po.idx (tenant_id text NOT NULL, id int, v int, PRIMARY KEY (tenant_id, id));
INSERT INTO po.idx SELECT CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, g, g FROM generate_series(1, 20000) g;
SELECT tenant_iso.protect('po.big');
SELECT tenant_iso.protect('po.idx');
ANALYZE po.big;
ANALYZE po.idx;
GRANT SELECT, INSERT, UPDATE ON po.big, po.idx TO po_acme, po_pool;

SELECT plan(9);

SET ROLE po_acme;
SELECT matches(po.plan('SELECT count(*) FROM po.big'), 'InitPlan',
	'seq-scan aggregate: the context is an InitPlan, evaluated once per scan');
SELECT is(po.val('SELECT count(*) FROM po.big'), '1000', 'seq-scan aggregate: the member sees exactly its own rows');
SELECT matches(po.plan('SELECT v FROM po.idx WHERE id = 10'), 'Index Cond: \(\(tenant_id = (\$0|\(InitPlan 1\)\.col1)\) AND \(id = 10\)\)',
	'point select: the tenant column is still an index condition');
SELECT is(po.val('SELECT v FROM po.idx WHERE id = 10'), '10', 'point select: own row found');
SELECT is(po.val('SELECT v FROM po.idx WHERE id = 11'), NULL, 'point select: another tenant''s row is not');
SELECT is(po.val($$INSERT INTO po.big VALUES ('globex', 0, 0) RETURNING id$$), 'ERROR 42501',
	'WITH CHECK: the member cannot insert a row for another tenant');
RESET ROLE;

SET ROLE po_pool;
SET plan_cache_mode = force_generic_plan;
SELECT tenant_iso.set_tenant('acme');
PREPARE po_q AS SELECT string_agg(id::text, ',' ORDER BY id) FROM po.idx WHERE id BETWEEN 1 AND 4;
EXECUTE po_q \gset a_
SELECT tenant_iso.set_tenant('globex');
EXECUTE po_q \gset g_
SELECT is(:'a_string_agg' || ' then ' || :'g_string_agg', '2,4 then 1,3',
	'generic plan prepared under acme follows the switch to globex');
SELECT tenant_iso.reset_tenant();
SELECT throws_ok('EXECUTE po_q', '42501', NULL, 'generic plan with no tenant context fails closed');
SELECT throws_ok('SELECT count(*) FROM po.big', '42501', NULL, 'seq scan with no tenant context fails closed');
RESET plan_cache_mode;
DEALLOCATE po_q;
RESET ROLE;

SELECT * FROM finish();

SET client_min_messages = error;
DROP SCHEMA po CASCADE;
DO $$
BEGIN
	PERFORM tenant_iso.revoke_switch('po_pool');
END
$$;
DROP OWNED BY po_acme CASCADE;
DROP ROLE po_acme;
DROP OWNED BY po_pool CASCADE;
DROP ROLE po_pool;
