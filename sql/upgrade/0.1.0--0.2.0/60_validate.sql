-- 60_validate: part of tenant_iso--0.1.0--0.2.0.sql (issue 10)
--
-- validate() checks for the exposures an extension cannot close, only
-- flag: TEMP for pool roles, schemas writable by PUBLIC, large objects
-- reachable by pool roles.  Same style as the 0.1.0 checks: set-based,
-- search_path pinned, every object schema-qualified.

/* 12. Pool roles (switchers) that may create temporary objects. */
CREATE FUNCTION tenant_iso._v_temp_for_switchers()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH sw AS (
		SELECT DISTINCT r.oid, r.rolname
		  FROM tenant_iso.switchers s JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.grantee::oid
		 WHERE NOT r.rolsuper),
	discard AS (
		SELECT coalesce(pg_catalog.current_setting('tenant_iso.discard_temp_on_switch', true), 'off')
			   OPERATOR(pg_catalog.=) ANY (ARRAY['on', 'true', 'yes', '1']) AS on_)
	SELECT CASE WHEN d.on_ THEN 'low' ELSE 'medium' END,
		   'temp_for_switcher', sw.oid::regrole::text,
		   pg_catalog.format('switcher role %I has the TEMP privilege on database %I%s: temporary tables, functions and operators it creates under one tenant''s context stay on the pooled connection for the next tenant; tenant_iso refuses statements under another context while they exist (SQLSTATE 55000)%s',
				  sw.rolname, pg_catalog.current_database(),
				  CASE WHEN pg_catalog.has_database_privilege('public', pg_catalog.current_database(), 'TEMP')
					   THEN ' (through PUBLIC, which has TEMP by default)' ELSE '' END,
				  CASE WHEN d.on_ THEN ', and tenant_iso.discard_temp_on_switch discards them on each switch'
					   ELSE ', and a later tenant''s statement that meets them fails until the pool runs DISCARD TEMP' END),
		   pg_catalog.format('REVOKE TEMP ON DATABASE %I FROM PUBLIC;  -- then GRANT TEMP ON DATABASE %I TO <the roles that need it>, not to %I',
				  pg_catalog.current_database(), pg_catalog.current_database(), sw.rolname),
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM sw CROSS JOIN discard d
	 WHERE pg_catalog.has_database_privilege(sw.oid, pg_catalog.current_database(), 'TEMP')
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_temp_for_switchers() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_temp_for_switchers() IS
	'Internal (validate check temp_for_switcher): switcher (pool) roles with the TEMP privilege on the current database';

/* 13. Schemas in which PUBLIC may create objects. */
CREATE FUNCTION tenant_iso._v_public_writable_schemas()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'high', 'public_writable_schema', pg_catalog.quote_ident(n.nspname),
		   pg_catalog.format('every role may create objects in schema %I (CREATE granted to PUBLIC, as in databases created before PostgreSQL 15): a tenant can plant functions, operators and tables there that shadow the ones other roles find through their search_path',
				  n.nspname),
		   pg_catalog.format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC;  -- grant CREATE only to the roles that own the schema''s objects',
				  n.nspname),
		   ARRAY['tenant-isolation', 'least-privilege']
	  FROM pg_catalog.pg_namespace n
	 WHERE n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema', 'tenant_iso'])
	   AND n.nspname OPERATOR(pg_catalog.!~) '^pg_(toast|temp_|toast_temp_)'
	   AND EXISTS (SELECT 1
					 FROM pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
					WHERE a.grantee OPERATOR(pg_catalog.=) 0::oid
					  AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE')
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_public_writable_schemas() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_public_writable_schemas() IS
	'Internal (validate check public_writable_schema): schemas in which PUBLIC has the CREATE privilege';

/* 14. Large objects owned by a pool role (or a role whose rights it has). */
CREATE FUNCTION tenant_iso._v_switcher_large_objects()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH sw AS (
		SELECT DISTINCT r.oid, r.rolname
		  FROM tenant_iso.switchers s JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.grantee::oid
		 WHERE NOT r.rolsuper),
	owners AS (
		SELECT l.lomowner AS owner, pg_catalog.count(*) AS n, pg_catalog.min(l.oid) AS example
		  FROM pg_catalog.pg_largeobject_metadata l
		 GROUP BY l.lomowner)
	SELECT 'high', 'switcher_large_objects', sw.oid::regrole::text,
		   pg_catalog.format('switcher role %I %s %s large object(s), for example %s: large objects have no row security, so one pool role that reads them serves every tenant''s to every tenant',
				  sw.rolname,
				  CASE WHEN o.owner OPERATOR(pg_catalog.=) sw.oid THEN 'owns'
					   ELSE pg_catalog.format('has the rights of role %I, which owns', o.owner::regrole::text) END,
				  o.n, o.example),
		   pg_catalog.format('ALTER LARGE OBJECT %s OWNER TO <a role that no pool role is a member of>;  -- for each of them; better, keep tenant data in protected tables (bytea) instead of large objects',
				  o.example),
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM sw
	  JOIN owners o ON o.owner OPERATOR(pg_catalog.=) sw.oid
					OR pg_catalog.pg_has_role(sw.oid, o.owner, 'USAGE')
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_switcher_large_objects() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_switcher_large_objects() IS
	'Internal (validate check switcher_large_objects): large objects owned by a switcher (pool) role or by a role whose rights it has';

/* validate(): the 0.1.0 checks and the three above. */
CREATE OR REPLACE FUNCTION tenant_iso.validate()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET jit = off  -- catalog queries: compiling them costs more than it saves
AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT f.severity, f.check_id, f.object, f.detail, f.remedy, f.controls
	  FROM (SELECT * FROM tenant_iso._v_unprotected_tables()
			UNION ALL SELECT * FROM tenant_iso._v_weakened_protection()
			UNION ALL SELECT * FROM tenant_iso._v_cross_tenant_keys()
			UNION ALL SELECT * FROM tenant_iso._v_overpowered_members()
			UNION ALL SELECT * FROM tenant_iso._v_switchers_without_tls()
			UNION ALL SELECT * FROM tenant_iso._v_bypassing_views()
			UNION ALL SELECT * FROM tenant_iso._v_bypassing_functions()
			UNION ALL SELECT * FROM tenant_iso._v_unapproved_connections()
			UNION ALL SELECT * FROM tenant_iso._v_leaky_settings()
			UNION ALL SELECT * FROM tenant_iso._v_crypto_posture()
			UNION ALL SELECT * FROM tenant_iso._v_integrity_posture()
			UNION ALL SELECT * FROM tenant_iso._v_subscriber_digests()
			UNION ALL SELECT * FROM tenant_iso._v_temp_for_switchers()
			UNION ALL SELECT * FROM tenant_iso._v_public_writable_schemas()
			UNION ALL SELECT * FROM tenant_iso._v_switcher_large_objects()) f
	 ORDER BY pg_catalog.array_position(ARRAY['critical', 'high', 'medium', 'low', 'info'], f.severity),
			  f.check_id, f.object, f.detail;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.validate() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.validate() IS
	'Report weaknesses of the tenant isolation architecture: one row per finding with severity (critical, high, medium, low, info), check, object, detail, remedy and compliance controls';
