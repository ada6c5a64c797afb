-- test/pgtap/upgrade.sql
--
-- The upgrade path (issue 12, part 2): install 0.1.0, fill it (tenants,
-- members, a protected partitioned table, encrypted columns with blind
-- indexes, a tracked table with digests, a baseline), run ALTER EXTENSION
-- UPDATE, and check that isolation, decryption, verify() and drift() still
-- work on the old data.  Then compare the extension's objects with a fresh
-- install in another database: functions with their signatures,
-- volatility, parallel safety, security and proconfig, tables, columns,
-- indexes, constraints, triggers, grants and comments must be identical.
-- Roles: prefix up_.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public;
DROP EXTENSION IF EXISTS tenant_iso CASCADE;
DROP SCHEMA IF EXISTS tenant_iso CASCADE;

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'up_a') THEN
		EXECUTE 'DROP OWNED BY up_a CASCADE';
		DROP ROLE up_a;
	END IF;
END
$$;
CREATE ROLE up_a;

-- ---------------------------------------------------------------------
-- 0.1.0, filled
-- ---------------------------------------------------------------------
CREATE EXTENSION tenant_iso VERSION '0.1.0';
SELECT tenant_iso.create_tenant('ua') \g /dev/null
SELECT tenant_iso.create_tenant('ub') \g /dev/null
SELECT tenant_iso.add_member('up_a', 'ua') \g /dev/null
CREATE TABLE up_orders (tenant_id text NOT NULL, id int NOT NULL, secret bytea, secret_bi bytea,
						PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id);
CREATE TABLE up_orders_ua PARTITION OF up_orders FOR VALUES IN ('ua');
CREATE TABLE up_orders_ub PARTITION OF up_orders FOR VALUES IN ('ub');
SELECT tenant_iso.protect('up_orders') \g /dev/null
GRANT SELECT, INSERT ON up_orders TO up_a;
SELECT tenant_iso.set_tenant('ua') \g /dev/null
INSERT INTO up_orders VALUES ('ua', 1, tenant_iso.encrypt('secret of ua', 'orders.secret'),
							  tenant_iso.blind_index('secret of ua', 'orders.secret'));
SELECT tenant_iso.set_tenant('ub') \g /dev/null
INSERT INTO up_orders VALUES ('ub', 1, tenant_iso.encrypt('secret of ub', 'orders.secret'),
							  tenant_iso.blind_index('secret of ub', 'orders.secret'));
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT tenant_iso.track('up_orders') \g /dev/null
SELECT tenant_iso.baseline_save('before') \g /dev/null

ALTER EXTENSION tenant_iso UPDATE;

SELECT plan(12);

SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'tenant_iso'),
	(SELECT default_version FROM pg_available_extensions WHERE name = 'tenant_iso'),
	'ALTER EXTENSION UPDATE reaches the default version');
SET ROLE up_a;
SELECT is((SELECT string_agg(tenant_id || '/' || id, ' ') FROM up_orders), 'ua/1',
	'after the upgrade: the member still sees only its own row');
RESET ROLE;
SELECT tenant_iso.set_tenant('ua') \g /dev/null
SELECT is((SELECT tenant_iso.decrypt_text(secret, 'orders.secret') FROM up_orders WHERE tenant_id = 'ua'), 'secret of ua',
	'after the upgrade: a value encrypted under 0.1.0 decrypts');
SELECT is((SELECT count(*) FROM up_orders WHERE secret_bi = tenant_iso.blind_index('secret of ua', 'orders.secret')),
	1::bigint, 'after the upgrade: a 0.1.0 blind index still finds its row');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT is((SELECT string_agg(tenant_id || ':' || ok, ' ' ORDER BY tenant_id) FROM tenant_iso.verify('up_orders')),
	'ua:true ub:true', 'after the upgrade: 0.1.0 digests verify');
SELECT is((SELECT format FROM tenant_iso.tracked WHERE rel = 'up_orders'::regclass), 1::smallint,
	'after the upgrade: the table keeps digest format 1 until rebuild_digests()');
SELECT lives_ok($$SELECT * FROM tenant_iso.drift('before')$$,
	'after the upgrade: drift() against a 0.1.0 baseline works');
SELECT ok((SELECT count(*) FROM tenant_iso.validate()) >= 0,
	'after the upgrade: validate() runs');

-- the objects of the upgraded extension and of a fresh install
CREATE TEMP TABLE up_q AS SELECT $q$
	SELECT string_agg(x, E'\n' ORDER BY x) FROM (
		SELECT 'function ' || p.oid::regprocedure::text || '(' || pg_get_function_arguments(p.oid) || ') returns '
			   || pg_get_function_result(p.oid) || ' kind=' || p.prokind::text || ' lang=' || l.lanname
			   || ' ' || p.provolatile::text || p.proparallel::text || CASE WHEN p.prosecdef THEN ' definer' ELSE '' END
			   || ' strict=' || p.proisstrict || ' leakproof=' || p.proleakproof
			   || ' cost=' || p.procost || ' rows=' || p.prorows
			   || ' config=' || coalesce(p.proconfig::text, '-')
			   || ' acl=' || coalesce(p.proacl::text, '-') || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
			   || ' bin=' || coalesce(p.probin, '-') || ' src=' || md5(p.prosrc)
		  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
		 WHERE p.pronamespace = 'tenant_iso'::regnamespace
		UNION ALL
		SELECT 'function body ' || p.oid::regprocedure::text || E':\n' || p.prosrc
		  FROM pg_proc p WHERE p.pronamespace = 'tenant_iso'::regnamespace
		UNION ALL
		SELECT 'aggregate ' || a.aggfnoid::regprocedure::text || ' sfunc=' || a.aggtransfn::regproc::text
			   || ' stype=' || format_type(a.aggtranstype, NULL) || ' combine=' || a.aggcombinefn::regproc::text
		  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid WHERE p.pronamespace = 'tenant_iso'::regnamespace
		UNION ALL
		SELECT 'schema ' || n.nspname || ' owner=' || n.nspowner::regrole::text || ' acl=' || coalesce(n.nspacl::text, '-')
			   || ' comment=' || coalesce(obj_description(n.oid, 'pg_namespace'), '-')
		  FROM pg_namespace n WHERE n.nspname = 'tenant_iso'
		UNION ALL
		SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' persistence=' || c.relpersistence::text
			   || ' acl=' || coalesce(c.relacl::text, '-')
			   || ' replident=' || c.relreplident::text || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity
			   || ' options=' || coalesce(c.reloptions::text, '-')
			   || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '-')
		  FROM pg_class c WHERE c.relnamespace = 'tenant_iso'::regnamespace
		UNION ALL
		SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
		  FROM pg_class c WHERE c.relnamespace = 'tenant_iso'::regnamespace AND c.relkind IN ('v', 'm')
		UNION ALL
		SELECT 'sequence ' || s.seqrelid::regclass::text || ' ' || format_type(s.seqtypid, NULL)
			   || ' start=' || s.seqstart || ' inc=' || s.seqincrement || ' min=' || s.seqmin || ' max=' || s.seqmax
			   || ' cache=' || s.seqcache || ' cycle=' || s.seqcycle
		  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = 'tenant_iso'::regnamespace
		UNION ALL
		SELECT 'column ' || c.relname || '.' || a.attname || ' #' || a.attnum || ' ' || format_type(a.atttypid, a.atttypmod)
			   || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
			   || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
			   || ' collation=' || coalesce(a.attcollation::regcollation::text, '-')
			   || ' acl=' || coalesce(a.attacl::text, '-')
			   || ' comment=' || coalesce(col_description(c.oid, a.attnum), '-')
		  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
		 WHERE c.relnamespace = 'tenant_iso'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'm', 'f')
		UNION ALL
		SELECT 'index ' || pg_get_indexdef(i.indexrelid)
		  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'tenant_iso'::regnamespace
		UNION ALL
		SELECT 'constraint ' || c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
			   || ' comment=' || coalesce(obj_description(k.oid, 'pg_constraint'), '-')
		  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = 'tenant_iso'::regnamespace
		UNION ALL
		SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
			   || ' comment=' || coalesce(obj_description(t.oid, 'pg_trigger'), '-')
		  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		 WHERE c.relnamespace = 'tenant_iso'::regnamespace AND NOT t.tgisinternal
		UNION ALL
		SELECT 'policy ' || c.relname || '.' || po.polname || ' ' || po.polcmd::text || ' ' || po.polpermissive
			   || ' using=' || coalesce(pg_get_expr(po.polqual, po.polrelid), '-')
			   || ' check=' || coalesce(pg_get_expr(po.polwithcheck, po.polrelid), '-')
		  FROM pg_policy po JOIN pg_class c ON c.oid = po.polrelid WHERE c.relnamespace = 'tenant_iso'::regnamespace
		UNION ALL
		SELECT 'type ' || t.typname || ' ' || t.typtype::text FROM pg_type t WHERE t.typnamespace = 'tenant_iso'::regnamespace
		UNION ALL
		SELECT 'event trigger ' || e.evtname || ' ' || e.evtevent::text || ' ' || e.evtfoid::regproc::text
			   || ' tags=' || coalesce(e.evttags::text, '-') || ' enabled=' || e.evtenabled::text
			   || ' comment=' || coalesce(obj_description(e.oid, 'pg_event_trigger'), '-')
		  FROM pg_event_trigger e JOIN pg_depend d ON d.objid = e.oid AND d.classid = 'pg_event_trigger'::regclass
		   AND d.refclassid = 'pg_extension'::regclass
		UNION ALL
		SELECT 'dumped config ' || u.n || ' ' || u.rel::regclass::text || ' where=' || coalesce(u.c, '-')
		  FROM pg_extension x, unnest(x.extconfig, x.extcondition) WITH ORDINALITY AS u(rel, c, n)
		 WHERE x.extname = 'tenant_iso'
		UNION ALL
		SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
		  FROM pg_depend d JOIN pg_extension x ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = x.oid
		 WHERE x.extname = 'tenant_iso' AND d.deptype = 'e'
	) s(x)
$q$::text AS sql;
CREATE FUNCTION pg_temp.run(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE q INTO r;
	RETURN r;
END
$f$;
DROP DATABASE IF EXISTS up_fresh;
CREATE DATABASE up_fresh;
SELECT public.dblink_exec(format('host=127.0.0.1 port=%s dbname=up_fresh user=postgres sslmode=disable',
	current_setting('port')), 'CREATE EXTENSION tenant_iso') \g /dev/null
SELECT pg_temp.run((SELECT sql FROM up_q)) AS up_local \gset
SELECT x AS up_fresh FROM public.dblink(format('host=127.0.0.1 port=%s dbname=up_fresh user=postgres sslmode=disable',
	current_setting('port')), (SELECT sql FROM up_q)) AS t(x text) \gset
-- entries (one per object; a function body spans several lines) that only
-- one side has: none may exist
CREATE TEMP TABLE up_local AS SELECT unnest(regexp_split_to_array(:'up_local'::text, E'\n(?=[a-z])')) AS x;
CREATE TEMP TABLE up_fresh AS SELECT unnest(regexp_split_to_array(:'up_fresh'::text, E'\n(?=[a-z])')) AS x;
SELECT is((SELECT string_agg(d, E'\n' ORDER BY d) FROM (
			SELECT 'only after the upgrade: ' || x FROM (SELECT x FROM up_local EXCEPT SELECT x FROM up_fresh) l
			UNION ALL
			SELECT 'only in a fresh install: ' || x FROM (SELECT x FROM up_fresh EXCEPT SELECT x FROM up_local) f) s(d)),
	NULL,
	'the upgraded extension has exactly the objects of a fresh install (functions and their bodies, schema, tables, columns, indexes, constraints, triggers, policies, grants, comments)');
SELECT is(md5(:'up_local'::text), md5(:'up_fresh'::text), 'and the two descriptions are identical, byte for byte');
SELECT ok(length(:'up_local'::text) > 100000, 'control: the comparison covers the whole surface, function bodies included');
SELECT ok(:'up_local'::text ~ 'function tenant_iso\.uninstall\(\)' AND :'up_local'::text ~ 'schema tenant_iso .*acl='
		  AND :'up_local'::text ~ 'column tracked\.stale_since' AND :'up_local'::text ~ 'function body tenant_iso\.protect\(',
	'control: the comparison sees the 0.2.0 objects, the schema ACL and the function bodies');

SELECT * FROM finish();
SET client_min_messages = error;
DROP DATABASE IF EXISTS up_fresh;
DROP TABLE up_orders;
DROP OWNED BY up_a CASCADE;
DROP ROLE up_a;
