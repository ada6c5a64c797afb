/*
 * Architecture validation: validate(), approved external connections,
 * security baselines and drift().
 *
 * The checks are SQL over the catalogs, one internal function per check
 * (_v_*), each returning the columns of validate().  validate() is SECURITY
 * DEFINER, owned by the extension owner (a superuser), because some sources
 * are superuser-only: pg_hba_file_rules, pg_subscription,
 * master_key_loadable().  Everything here is revoked from PUBLIC.
 *
 * The checks read tenant_iso.tracked and tenant_iso.verify_runs (replication
 * integrity) only from PL/pgSQL, guarded by to_regclass(), so this part does
 * not depend on where those tables are created in the install script.
 *
 * Every query is set-based (no per-table loops): validate() and drift() stay
 * well under 2 s with 5,000 protected tables and 1,000 roles (bench/validate).
 */

/* Approved external connections (check unapproved_connection). */
CREATE TABLE tenant_iso.approved_connections (
	kind text NOT NULL
		CHECK (kind IN ('foreign_server', 'subscription', 'replication_slot', 'extension')),
	name text NOT NULL,
	note text,
	approved_at timestamptz NOT NULL DEFAULT now(),
	approved_by text NOT NULL DEFAULT current_user,
	PRIMARY KEY (kind, name)
);
COMMENT ON TABLE tenant_iso.approved_connections IS
	'External connections (foreign servers, subscriptions, replication slots, cross-database extensions) approved with allow_connection()';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.approved_connections', '');
REVOKE ALL ON tenant_iso.approved_connections FROM PUBLIC;

CREATE VIEW tenant_iso.allowed_connections AS
	SELECT kind, name, note, approved_at, approved_by FROM tenant_iso.approved_connections;
COMMENT ON VIEW tenant_iso.allowed_connections IS
	'External connections approved with allow_connection(): validate() does not report them';
REVOKE ALL ON tenant_iso.allowed_connections FROM PUBLIC;

/* Saved security baselines (baseline_save(), drift()). */
CREATE TABLE tenant_iso.baselines (
	name text NOT NULL,
	object_type text NOT NULL,
	object text NOT NULL,
	state text,
	saved_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (name, object_type, object)
);
COMMENT ON TABLE tenant_iso.baselines IS
	'Security baselines saved with baseline_save(): one row per security-relevant object and its state';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.baselines', '');
REVOKE ALL ON tenant_iso.baselines FROM PUBLIC;

/*
 * Helpers.
 */
CREATE FUNCTION tenant_iso._tenant_columns() RETURNS SETOF name
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT DISTINCT CASE WHEN t ~ '^".*"$'
						 THEN replace(substr(t, 2, length(t) - 2), '""', '"')
						 ELSE t END::name
	  FROM unnest(string_to_array(coalesce(current_setting('tenant_iso.tenant_columns', true), ''), ',')) AS s(raw),
		   LATERAL btrim(raw) AS t
	 WHERE t <> ''
$$;
REVOKE ALL ON FUNCTION tenant_iso._tenant_columns() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._tenant_columns() IS
	'Internal: the column names listed in tenant_iso.tenant_columns';

CREATE FUNCTION tenant_iso._interval_setting(setting text) RETURNS interval
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v text := btrim(coalesce(current_setting(setting, true), ''));
BEGIN
	IF v = '' THEN
		RETURN NULL;
	END IF;
	RETURN v::interval;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
	RAISE EXCEPTION 'invalid interval in %', setting USING ERRCODE = 'invalid_parameter_value';
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._interval_setting(text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._interval_setting(text) IS
	'Internal: an interval setting (NULL when empty); raises 22023 when it is not an interval';

/* Whether a pg_hba address only admits connections from the server's own host. */
CREATE FUNCTION tenant_iso._hba_local(address text, netmask text) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE
		WHEN address IS NULL THEN false
		WHEN netmask IS NULL THEN lower(address) IN ('samehost', 'localhost')
		WHEN family(address::inet) = 4 AND family(netmask::inet) = 4 THEN
			host(address::inet & '255.0.0.0'::inet) = '127.0.0.0'
			AND host(netmask::inet & '255.0.0.0'::inet) = '255.0.0.0'
		WHEN family(address::inet) = 6 AND family(netmask::inet) = 6 THEN
			host(address::inet) = '::1'
			AND host(netmask::inet) = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'
		ELSE false
	END
$$;
REVOKE ALL ON FUNCTION tenant_iso._hba_local(text, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._hba_local(text, text) IS
	'Internal: true when a pg_hba address (and netmask) admits only loopback connections';

/* Whether pg_hba address a/amask covers every address of b/bmask. */
CREATE FUNCTION tenant_iso._hba_covers(a text, amask text, b text, bmask text) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE
		WHEN a = 'all' THEN true
		WHEN amask IS NULL OR bmask IS NULL THEN a IS NOT DISTINCT FROM b AND amask IS NOT DISTINCT FROM bmask
		WHEN family(a::inet) <> family(b::inet) OR family(amask::inet) <> family(bmask::inet)
			 OR family(a::inet) <> family(amask::inet) THEN false
		ELSE host(b::inet & amask::inet) = host(a::inet & amask::inet)
			 AND host(amask::inet & bmask::inet) = host(amask::inet)
	END
$$;
REVOKE ALL ON FUNCTION tenant_iso._hba_covers(text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._hba_covers(text, text, text, text) IS
	'Internal: true when the first pg_hba address range contains the second';

/* Whether a pg_hba rule's database and user columns match a role connecting to this database. */
CREATE FUNCTION tenant_iso._hba_matches(role oid, database text[], user_name text[]) RETURNS boolean
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT (
		'all' = ANY (database) OR current_database() = ANY (database)
		OR ('sameuser' = ANY (database) AND current_database() = (SELECT rolname FROM pg_roles WHERE oid = role))
		OR (('samerole' = ANY (database) OR 'samegroup' = ANY (database))
			AND EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = current_database()
						 AND pg_has_role(role, g.oid, 'MEMBER')))
	) AND (
		'all' = ANY (user_name)
		OR (SELECT rolname FROM pg_roles WHERE oid = role) = ANY (user_name)
		OR EXISTS (SELECT 1 FROM unnest(user_name) u JOIN pg_roles g ON '+' || g.rolname = u
					WHERE pg_has_role(role, g.oid, 'MEMBER'))
	)
$$;
REVOKE ALL ON FUNCTION tenant_iso._hba_matches(oid, text[], text[]) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._hba_matches(oid, text[], text[]) IS
	'Internal: true when a pg_hba rule''s database and user fields match a role connecting to this database';

/*
 * Tenant-facing roles (members and switchers that are neither superuser nor
 * BYPASSRLS: those see every row anyway) and every role each of them belongs
 * to, directly or not (it may use their privileges, or SET ROLE to them).
 */
CREATE FUNCTION tenant_iso._tenant_facing_roles()
	RETURNS TABLE (role oid, kind text, via oid)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE t(role, kind) AS (
		SELECT r.oid, 'member' FROM tenant_iso.members m JOIN pg_roles r ON r.oid = m.member::oid
		 WHERE NOT r.rolsuper AND NOT r.rolbypassrls
		UNION
		SELECT r.oid, 'switcher' FROM tenant_iso.switchers s JOIN pg_roles r ON r.oid = s.grantee::oid
		 WHERE NOT r.rolsuper AND NOT r.rolbypassrls),
	up(role, kind, via) AS (
		SELECT role, kind, role FROM t
		UNION
		SELECT up.role, up.kind, a.roleid FROM up JOIN pg_auth_members a ON a.member = up.via)
	SELECT role, kind, via FROM up
$$;
REVOKE ALL ON FUNCTION tenant_iso._tenant_facing_roles() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._tenant_facing_roles() IS
	'Internal: members and switchers without superuser or BYPASSRLS, with every role they belong to (recursively)';

/* Every registered table's unprotected descendants (partitions, children). */
CREATE FUNCTION tenant_iso._unprotected_descendants()
	RETURNS TABLE (rel oid, ancestor regclass, tenant_column name)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE d(rel, ancestor, tenant_column) AS (
		SELECT i.inhrelid, p.rel, p.tenant_column
		  FROM tenant_iso.protected p JOIN pg_inherits i ON i.inhparent = p.rel::oid
		UNION
		SELECT i.inhrelid, d.ancestor, d.tenant_column
		  FROM d JOIN pg_inherits i ON i.inhparent = d.rel)
	SELECT DISTINCT ON (d.rel) d.rel, d.ancestor, d.tenant_column
	  FROM d
	 WHERE NOT EXISTS (SELECT 1 FROM tenant_iso.protected p WHERE p.rel::oid = d.rel)
	 ORDER BY d.rel, d.ancestor
$$;
REVOKE ALL ON FUNCTION tenant_iso._unprotected_descendants() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._unprotected_descendants() IS
	'Internal: partitions and inheritance children of protected tables that are not themselves registered';

/*
 * The checks.  Each returns (severity, check_id, object, detail, remedy,
 * controls) like validate().  Objects are schema-qualified: every function
 * here runs with search_path = pg_catalog, pg_temp.
 */

/* 1. Tables with a tenant column that are not protected. */
CREATE FUNCTION tenant_iso._v_unprotected_tables()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT DISTINCT ON (c.oid)
		   'critical', 'unprotected_table', c.oid::regclass::text,
		   format('table %s has the tenant column %I but is not protected: every role with access to it sees and changes every tenant''s rows',
				  c.oid::regclass, a.attname),
		   format('SELECT tenant_iso.protect(%L, %L);', c.oid::regclass::text, a.attname),
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM pg_class c
	  JOIN pg_namespace n ON n.oid = c.relnamespace
	  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	 WHERE c.relkind IN ('r', 'p')
	   AND c.relpersistence <> 't'
	   AND a.attname IN (SELECT tenant_iso._tenant_columns())
	   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_iso')
	   AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
	   AND NOT EXISTS (SELECT 1 FROM tenant_iso.protected p WHERE p.rel::oid = c.oid)
	   -- tables of extensions (pg_cron's, ...) belong to those extensions
	   AND NOT EXISTS (SELECT 1 FROM pg_depend d
					   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
	   -- under a protected ancestor: reported by check weakened_protection
	   AND NOT EXISTS (SELECT 1 FROM tenant_iso._unprotected_descendants() u WHERE u.rel = c.oid)
	 ORDER BY c.oid, a.attnum
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_unprotected_tables() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_unprotected_tables() IS
	'Internal (validate check unprotected_table): tables in user schemas with a tenant column that are not protected';

/* 2. Protection that was weakened after protect(). */
CREATE FUNCTION tenant_iso._v_weakened_protection()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH p AS (
		SELECT p.rel::oid AS relid, p.tenant_column, c.oid IS NOT NULL AS present,
			   c.relrowsecurity, c.relforcerowsecurity, c.relkind,
			   a.attnum, a.atttypid
		  FROM tenant_iso.protected p
		  LEFT JOIN pg_class c ON c.oid = p.rel::oid
		  LEFT JOIN pg_attribute a ON a.attrelid = p.rel::oid AND a.attname = p.tenant_column
								  AND a.attnum > 0 AND NOT a.attisdropped)
	-- a registry row for a table that no longer exists
	SELECT 'critical', 'weakened_protection', p.relid::text,
		   format('tenant_iso.protected has a row for relation OID %s, which no longer exists: a table that later gets this OID would be treated as protected under a stale registration',
				  p.relid),
		   format('DELETE FROM tenant_iso.protected WHERE rel = %s::oid;', p.relid),
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM p WHERE NOT p.present
	UNION ALL
	-- row security switched off or un-forced
	SELECT 'critical', 'weakened_protection', p.relid::regclass::text,
		   format('protected table %s has row security %s: %s',
				  p.relid::regclass,
				  concat_ws(' and ', CASE WHEN NOT p.relrowsecurity THEN 'disabled' END,
									 CASE WHEN NOT p.relforcerowsecurity THEN 'not forced' END),
				  CASE WHEN NOT p.relrowsecurity THEN 'no tenant filter applies to it'
					   ELSE 'its owner is not filtered' END),
		   format('ALTER TABLE ONLY %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;', p.relid::regclass),
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM p WHERE p.present AND NOT (p.relrowsecurity AND p.relforcerowsecurity)
	UNION ALL
	-- the registered tenant column is gone (dropped or renamed)
	SELECT 'critical', 'weakened_protection', p.relid::regclass::text,
		   format('the registered tenant column %I of protected table %s no longer exists%s',
				  p.tenant_column, p.relid::regclass,
				  coalesce(' (column ' || quote_ident(r.attname) || ' carries the tenant_iso default: renamed?)',
						   ' (dropped or renamed)')),
		   CASE WHEN r.attname IS NOT NULL
				THEN format('ALTER TABLE %s RENAME COLUMN %I TO %I;', p.relid::regclass, r.attname, p.tenant_column)
				ELSE format('SELECT tenant_iso.unprotect(%L); SELECT tenant_iso.protect(%L, ''<tenant column>'');',
							p.relid::regclass::text, p.relid::regclass::text) END,
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM p
	  LEFT JOIN LATERAL (
			SELECT a.attname FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
			 WHERE a.attrelid = p.relid AND a.attnum > 0 AND NOT a.attisdropped
			   AND pg_get_expr(d.adbin, d.adrelid) LIKE '%tenant_iso.current_tenant()%'
			 ORDER BY a.attnum LIMIT 1) r ON true
	 WHERE p.present AND p.attnum IS NULL
	UNION ALL
	-- the tenant column was retyped to a type the policy cannot compare with
	SELECT 'critical', 'weakened_protection', p.relid::regclass::text,
		   format('the tenant column %I of protected table %s now has type %s, which tenant_iso does not support',
				  p.tenant_column, p.relid::regclass, format_type(p.atttypid, NULL)),
		   format('ALTER TABLE %s ALTER COLUMN %I TYPE text;', p.relid::regclass, p.tenant_column),
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM p
	 WHERE p.present AND p.attnum IS NOT NULL
	   AND p.atttypid NOT IN ('text'::regtype, 'varchar'::regtype, 'uuid'::regtype,
							  'int2'::regtype, 'int4'::regtype, 'int8'::regtype)
	UNION ALL
	-- a partition or child of a protected table that is not protected
	SELECT 'critical', 'weakened_protection', u.rel::regclass::text,
		   format('%s is a partition or child of protected table %s but is not protected itself: queried directly, it shows every tenant''s rows',
				  u.rel::regclass, u.ancestor),
		   format('ALTER TABLE ONLY %s ENABLE ROW LEVEL SECURITY;  -- the tenant_iso event trigger then registers it under %s',
				  u.rel::regclass, u.ancestor),
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM tenant_iso._unprotected_descendants() u
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_weakened_protection() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_weakened_protection() IS
	'Internal (validate check weakened_protection): row security off or not forced, stale or mismatched registrations, unprotected partitions';

/* 3. Unique keys and foreign keys that let one tenant probe another's keys. */
CREATE FUNCTION tenant_iso._v_cross_tenant_keys()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH p AS (
		SELECT p.rel::oid AS relid, p.tenant_column, a.attnum
		  FROM tenant_iso.protected p
		  JOIN pg_attribute a ON a.attrelid = p.rel::oid AND a.attname = p.tenant_column
							 AND a.attnum > 0 AND NOT a.attisdropped)
	SELECT 'high', 'cross_tenant_key', i.indexrelid::regclass::text,
		   format('%s %s on %s does not include the tenant column %I: a tenant learns whether another tenant''s key exists from a unique violation',
				  CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique constraint' ELSE 'unique index' END,
				  coalesce(quote_ident(k.conname), i.indexrelid::regclass::text), p.relid::regclass, p.tenant_column),
		   CASE WHEN k.contype IS NOT NULL
				THEN format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I %s (%I, %s);',
							p.relid::regclass, k.conname, k.conname,
							CASE k.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
							p.tenant_column, cols.list)
				ELSE format('DROP INDEX %s; CREATE UNIQUE INDEX %I ON %s (%I, %s)%s;',
							i.indexrelid::regclass, ic.relname, p.relid::regclass, p.tenant_column, cols.list,
							coalesce(' WHERE ' || pg_get_expr(i.indpred, i.indrelid), '')) END,
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM p
	  JOIN pg_index i ON i.indrelid = p.relid AND i.indisunique
	  JOIN pg_class ic ON ic.oid = i.indexrelid
	  LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = p.relid AND k.contype IN ('p', 'u')
	  CROSS JOIN LATERAL (
			SELECT string_agg(pg_get_indexdef(i.indexrelid, n, true), ', ' ORDER BY n) AS list
			  FROM generate_series(1, i.indnkeyatts) n) cols
	 WHERE NOT (p.attnum = ANY (i.indkey))
	   -- the partitions' copies of a partitioned index: reported once, on the parent
	   AND NOT EXISTS (SELECT 1 FROM pg_inherits h
						 JOIN pg_index pi ON pi.indexrelid = h.inhparent
						 JOIN p pp ON pp.relid = pi.indrelid
						WHERE h.inhrelid = i.indexrelid)
	UNION ALL
	SELECT 'high', 'cross_tenant_key', format('%s.%I', c.conrelid::regclass, c.conname),
		   format('foreign key %I from %s to %s does not carry the tenant column on both sides: a tenant learns whether another tenant''s key exists from the foreign-key check',
				  c.conname, c.conrelid::regclass, c.confrelid::regclass),
		   format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I FOREIGN KEY (%I, %s) REFERENCES %s (%I, %s);  -- needs a unique key on %s (%I, %s)',
				  c.conrelid::regclass, c.conname, c.conname,
				  coalesce(pl.tenant_column, pr.tenant_column), fk.lcols,
				  c.confrelid::regclass, coalesce(pr.tenant_column, pl.tenant_column), fk.rcols,
				  c.confrelid::regclass, coalesce(pr.tenant_column, pl.tenant_column), fk.rcols),
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM pg_constraint c
	  LEFT JOIN p pl ON pl.relid = c.conrelid
	  LEFT JOIN p pr ON pr.relid = c.confrelid
	  CROSS JOIN LATERAL (
			SELECT string_agg(quote_ident(la.attname), ', ' ORDER BY k.n) AS lcols,
				   string_agg(quote_ident(ra.attname), ', ' ORDER BY k.n) AS rcols
			  FROM unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(l, r, n)
			  JOIN pg_attribute la ON la.attrelid = c.conrelid AND la.attnum = k.l
			  JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.r) fk
	 WHERE c.contype = 'f' AND c.conparentid = 0
	   AND (pl.relid IS NOT NULL OR pr.relid IS NOT NULL)
	   AND NOT EXISTS (
			SELECT 1
			  FROM unnest(c.conkey, c.confkey) AS k(l, r)
			  JOIN pg_attribute la ON la.attrelid = c.conrelid AND la.attnum = k.l
			  JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.r
			 WHERE la.attname = coalesce(pl.tenant_column, pr.tenant_column)
			   AND ra.attname = coalesce(pr.tenant_column, pl.tenant_column))
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_cross_tenant_keys() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_cross_tenant_keys() IS
	'Internal (validate check cross_tenant_key): unique keys and foreign keys of protected tables that leave out the tenant column';

/* 4. Tenant member roles with powers beyond their tenant. */
CREATE FUNCTION tenant_iso._v_overpowered_members()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE m AS (
		SELECT r.oid AS member, r.rolname, m.tenant_id, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolreplication
		  FROM tenant_iso.members m JOIN pg_roles r ON r.oid = m.member::oid),
	up(member, role) AS (
		SELECT member, member FROM m
		UNION
		SELECT up.member, a.roleid FROM up JOIN pg_auth_members a ON a.member = up.role),
	attr(member, rolname, tenant_id, severity, what, remedy) AS (
		SELECT member, rolname, tenant_id, 'critical', 'is SUPERUSER: it bypasses row security and can turn every protection off',
			   format('ALTER ROLE %I NOSUPERUSER;', rolname) FROM m WHERE rolsuper
		UNION ALL
		SELECT member, rolname, tenant_id, 'critical', 'has BYPASSRLS: it sees and changes every tenant''s rows',
			   format('ALTER ROLE %I NOBYPASSRLS;', rolname) FROM m WHERE rolbypassrls
		UNION ALL
		SELECT member, rolname, tenant_id, 'high', 'has CREATEROLE: it can create and grant roles, and change other roles',
			   format('ALTER ROLE %I NOCREATEROLE;', rolname) FROM m WHERE rolcreaterole
		UNION ALL
		SELECT member, rolname, tenant_id, 'high', 'has REPLICATION: it can stream every tenant''s data out of the WAL',
			   format('ALTER ROLE %I NOREPLICATION;', rolname) FROM m WHERE rolreplication),
	via(member, role, why) AS (
		SELECT up.member, up.role,
			   CASE WHEN g.rolsuper THEN 'a superuser role'
					WHEN g.rolbypassrls THEN 'a BYPASSRLS role'
					WHEN EXISTS (SELECT 1 FROM tenant_iso.switchers s WHERE s.grantee::oid = g.oid) THEN 'a switcher role'
					WHEN g.rolname = 'pg_execute_server_program' THEN 'a role that runs programs on the server'
					WHEN g.rolname IN ('pg_read_server_files', 'pg_write_server_files') THEN 'a role that accesses the server''s files'
					WHEN g.rolname IN ('pg_read_all_data', 'pg_write_all_data') THEN 'a role with access to every table, tenant_iso''s registry included'
					WHEN g.rolname = 'pg_read_all_stats' THEN 'a role that sees other sessions'' statements'
			   END
		  FROM up JOIN pg_roles g ON g.oid = up.role
		 WHERE up.role <> up.member),
	owned(member, n, example) AS (
		SELECT up.member, count(*), min(c.oid::regclass::text)
		  FROM up
		  JOIN pg_class c ON c.relowner = up.role
		  JOIN tenant_iso.protected p ON p.rel::oid = c.oid
		 GROUP BY up.member)
	SELECT a.severity, 'overpowered_member', a.member::regrole::text,
		   format('tenant member role %I (tenant %s) %s', a.rolname, a.tenant_id, a.what),
		   a.remedy, ARRAY['tenant-isolation']
	  FROM attr a
	UNION ALL
	SELECT 'high', 'overpowered_member', m.member::regrole::text,
		   format('tenant member role %I (tenant %s) is a member of %s, %I',
				  m.rolname, m.tenant_id, v.why, g.rolname),
		   format('REVOKE %I FROM %I;  -- or, for an indirect membership, the grant that leads to it', g.rolname, m.rolname),
		   ARRAY['tenant-isolation']
	  FROM via v JOIN m ON m.member = v.member JOIN pg_roles g ON g.oid = v.role
	 WHERE v.why IS NOT NULL
	UNION ALL
	SELECT 'high', 'overpowered_member', m.member::regrole::text,
		   format('tenant member role %I (tenant %s) owns %s protected table(s), for example %s: an owner can grant privileges on them and alter them',
				  m.rolname, m.tenant_id, o.n, o.example),
		   format('ALTER TABLE %s OWNER TO <a role that is not a tenant member>;', o.example),
		   ARRAY['tenant-isolation']
	  FROM owned o JOIN m ON m.member = o.member
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_overpowered_members() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_overpowered_members() IS
	'Internal (validate check overpowered_member): member roles that are superuser, BYPASSRLS, CREATEROLE or REPLICATION, members of switchers or powerful roles, or owners of protected tables';

/* 5. Switchers that pg_hba.conf lets in without TLS. */
CREATE FUNCTION tenant_iso._v_switchers_without_tls()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH sw AS (
		SELECT r.oid, r.rolname FROM tenant_iso.switchers s JOIN pg_roles r ON r.oid = s.grantee::oid),
	-- login roles that are a switcher, or can SET ROLE to one
	conn(role, rolname, switcher) AS (
		SELECT sw.oid, sw.rolname, sw.rolname FROM sw JOIN pg_roles r ON r.oid = sw.oid WHERE r.rolcanlogin
		UNION
		SELECT r.oid, r.rolname, sw.rolname
		  FROM pg_roles r CROSS JOIN sw
		 WHERE r.rolcanlogin AND NOT r.rolsuper AND r.oid <> sw.oid
		   AND pg_has_role(r.oid, sw.oid, 'MEMBER')),
	rules AS (
		SELECT * FROM pg_hba_file_rules WHERE error IS NULL),
	exposed AS (
		SELECT c.role, c.rolname, c.switcher, r.line_number, r.type, r.auth_method,
			   tenant_iso._hba_local(r.address, r.netmask) AS local,
			   coalesce(r.address, '') || coalesce('/' || r.netmask, '') AS addr
		  FROM conn c
		  JOIN rules r ON r.type IN ('host', 'hostnossl', 'hostnogssenc')
					  AND r.auth_method <> 'reject'
					  AND tenant_iso._hba_matches(c.role, r.database, r.user_name)
		 WHERE NOT EXISTS (
				-- an earlier reject rule takes every such connection first
				SELECT 1 FROM rules e
				 WHERE e.line_number < r.line_number
				   AND e.type IN ('host', 'hostnossl') AND e.auth_method = 'reject'
				   AND tenant_iso._hba_covers(e.address, e.netmask, r.address, r.netmask)
				   AND tenant_iso._hba_matches(c.role, e.database, e.user_name)))
	SELECT CASE WHEN bool_and(x.local) THEN 'low' ELSE 'high' END,
		   'switcher_without_tls', x.role::regrole::text,
		   format('%s may connect without TLS by pg_hba.conf %s: %s%s',
				  CASE WHEN x.rolname = x.switcher THEN format('switcher role %I', x.rolname)
					   ELSE format('role %I (member of switcher role %I)', x.rolname, x.switcher) END,
				  CASE WHEN count(*) > 1 THEN 'lines' ELSE 'line' END,
				  string_agg(format('%s (%s %s %s)', x.line_number, x.type, x.addr, x.auth_method), ', ' ORDER BY x.line_number),
				  CASE WHEN bool_and(x.local) THEN '; loopback only, so the traffic never leaves the host' ELSE '' END),
		   format('in pg_hba.conf, use hostssl for role %I (or put "hostnossl all %I 0.0.0.0/0 reject" and "hostnossl all %I ::/0 reject" first), then SELECT pg_reload_conf();',
				  x.rolname, x.rolname, x.rolname),
		   ARRAY['encryption-in-transit', 'boundary-protection']
	  FROM exposed x
	 GROUP BY x.role, x.rolname, x.switcher
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_switchers_without_tls() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_switchers_without_tls() IS
	'Internal (validate check switcher_without_tls): switcher roles that a pg_hba.conf rule admits over TCP without TLS';

/* 6. Views (and materialized views) that read protected tables with a bypassing owner's rights. */
CREATE FUNCTION tenant_iso._v_bypassing_views()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE v AS (
		SELECT c.oid, c.relkind, c.relowner, c.relacl,
			   coalesce((SELECT o.option_value::boolean FROM pg_options_to_table(c.reloptions) o
						  WHERE o.option_name = 'security_invoker'), false) AS invoker
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')),
	direct(view, rel) AS (
		SELECT DISTINCT r.ev_class, d.refobjid
		  FROM pg_rewrite r
		  JOIN v ON v.oid = r.ev_class
		  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
						  AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'n'
		 WHERE d.refobjid <> r.ev_class),
	-- what a view reads with its own (owner's) rights: through security_invoker views too
	reach(view, rel) AS (
		SELECT view, rel FROM direct
		UNION
		SELECT reach.view, d.rel
		  FROM reach JOIN v ON v.oid = reach.rel AND v.relkind = 'v' AND v.invoker
		  JOIN direct d ON d.view = reach.rel),
	bad AS (
		SELECT v.oid, v.relkind, v.relowner, v.relacl, min(p.rel::oid::regclass::text) AS example, count(*) AS n
		  FROM v
		  JOIN pg_roles o ON o.oid = v.relowner AND (o.rolsuper OR o.rolbypassrls)
		  JOIN reach ON reach.view = v.oid
		  JOIN tenant_iso.protected p ON p.rel::oid = reach.rel
		 WHERE v.relkind = 'm' OR NOT v.invoker
		 GROUP BY v.oid, v.relkind, v.relowner, v.relacl),
	tf AS (SELECT DISTINCT via FROM tenant_iso._tenant_facing_roles()),
	exposed AS (
		SELECT b.oid,
			   EXISTS (SELECT 1 FROM aclexplode(b.relacl) x
						WHERE x.privilege_type = 'SELECT'
						  AND (x.grantee = 0 OR x.grantee IN (SELECT via FROM tf))) AS tenant_readable
		  FROM bad b)
	SELECT CASE WHEN e.tenant_readable THEN 'high' ELSE 'medium' END,
		   'bypassing_view', b.oid::regclass::text,
		   format('%s %s reads protected table %s%s with the rights of its owner %I, a %s, so it returns every tenant''s rows%s',
				  CASE b.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END,
				  b.oid::regclass, b.example,
				  CASE WHEN b.n > 1 THEN format(' (and %s more)', b.n - 1) ELSE '' END,
				  pg_get_userbyid(b.relowner),
				  CASE WHEN o.rolsuper THEN 'superuser' ELSE 'BYPASSRLS role' END,
				  CASE WHEN e.tenant_readable THEN '; PUBLIC, a tenant member or a switcher may read it'
					   ELSE '; no tenant-facing role may read it yet' END),
		   CASE b.relkind
				WHEN 'm' THEN format('DROP MATERIALIZED VIEW %s;  -- or keep it away from tenant-facing roles and protect() a table copy instead', b.oid::regclass)
				ELSE format('ALTER VIEW %s SET (security_invoker = true);', b.oid::regclass) END,
		   ARRAY['tenant-isolation', 'data-segregation']
	  FROM bad b JOIN exposed e ON e.oid = b.oid JOIN pg_roles o ON o.oid = b.relowner
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_bypassing_views() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_bypassing_views() IS
	'Internal (validate check bypassing_view): views over protected tables owned by a superuser or BYPASSRLS role and not security_invoker';

/* 7. SECURITY DEFINER functions that run with a bypassing owner's rights for tenant-facing roles. */
CREATE FUNCTION tenant_iso._v_bypassing_functions()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH f AS (
		SELECT p.oid, p.proowner, o.rolsuper,
			   coalesce(p.proacl, acldefault('f', p.proowner)) AS acl,
			   (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
				 WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
				   AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' LIMIT 1) AS extname
		  FROM pg_proc p
		  JOIN pg_namespace n ON n.oid = p.pronamespace
		  JOIN pg_roles o ON o.oid = p.proowner AND (o.rolsuper OR o.rolbypassrls)
		 WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')),
	tf AS (SELECT * FROM tenant_iso._tenant_facing_roles()),
	g AS (
		SELECT f.*,
			   EXISTS (SELECT 1 FROM aclexplode(f.acl) x WHERE x.grantee = 0 AND x.privilege_type = 'EXECUTE') AS public_exec,
			   (SELECT min(pg_get_userbyid(tf.role)::text) FROM aclexplode(f.acl) x JOIN tf ON tf.via = x.grantee
				 WHERE x.privilege_type = 'EXECUTE' AND tf.kind = 'member') AS member_exec,
			   (SELECT min(pg_get_userbyid(tf.role)::text) FROM aclexplode(f.acl) x JOIN tf ON tf.via = x.grantee
				 WHERE x.privilege_type = 'EXECUTE' AND tf.kind = 'switcher') AS switcher_exec
		  FROM f
		 WHERE f.extname IS DISTINCT FROM 'tenant_iso')
	SELECT CASE WHEN g.extname IS NOT NULL THEN 'low' ELSE 'high' END,
		   'bypassing_definer_function', g.oid::regprocedure::text,
		   format('SECURITY DEFINER function %s runs as %I, a %s, and %s may call it: anything it reads or writes escapes row isolation%s',
				  g.oid::regprocedure, pg_get_userbyid(g.proowner),
				  CASE WHEN g.rolsuper THEN 'superuser' ELSE 'BYPASSRLS role' END,
				  CASE WHEN g.public_exec THEN 'PUBLIC'
					   WHEN g.member_exec IS NOT NULL THEN format('tenant member role %I', g.member_exec)
					   ELSE format('switcher role %I', g.switcher_exec) END,
				  CASE WHEN g.extname IS NOT NULL THEN format(' (it belongs to extension %s)', g.extname) ELSE '' END),
		   format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC;  -- and from tenant-facing roles; or ALTER FUNCTION %s OWNER TO <a role without BYPASSRLS>',
				  g.oid::regprocedure, g.oid::regprocedure),
		   ARRAY['tenant-isolation']
	  FROM g
	 WHERE g.public_exec OR g.member_exec IS NOT NULL OR g.switcher_exec IS NOT NULL
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_bypassing_functions() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_bypassing_functions() IS
	'Internal (validate check bypassing_definer_function): SECURITY DEFINER functions owned by a superuser or BYPASSRLS role that PUBLIC, a member or a switcher may call';

/* 8. External connections nobody approved. */
CREATE FUNCTION tenant_iso._v_unapproved_connections()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH c(kind, name, what) AS (
		SELECT 'foreign_server', s.srvname::text,
			   format('foreign server %I (wrapper %I) connects this database to another data source', s.srvname, w.fdwname)
		  FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
		UNION ALL
		SELECT 'subscription', s.subname::text,
			   format('subscription %I replicates another server''s data into this database', s.subname)
		  FROM pg_subscription s WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		UNION ALL
		SELECT 'replication_slot', s.slot_name::text,
			   CASE WHEN s.database IS NULL
					THEN format('physical replication slot %I streams the whole cluster''s WAL, every tenant''s data included', s.slot_name)
					ELSE format('logical replication slot %I (plugin %s) streams this database''s changes', s.slot_name, s.plugin) END
		  FROM pg_replication_slots s WHERE s.database IS NULL OR s.database = current_database()
		UNION ALL
		SELECT 'extension', e.extname::text,
			   format('extension %I lets sessions open connections to other databases', e.extname)
		  FROM pg_extension e WHERE e.extname IN ('dblink', 'postgres_fdw'))
	SELECT 'medium', 'unapproved_connection', c.name,
		   c.what || ', and nobody approved it with tenant_iso.allow_connection()',
		   format('SELECT tenant_iso.allow_connection(%L, %L, ''<why it is needed>'');  -- or remove it', c.kind, c.name),
		   ARRAY['boundary-protection', 'data-segregation']
	  FROM c
	 WHERE NOT EXISTS (SELECT 1 FROM tenant_iso.approved_connections a
					   WHERE a.kind = c.kind AND a.name = c.name)
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_unapproved_connections() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_unapproved_connections() IS
	'Internal (validate check unapproved_connection): foreign servers, subscriptions, replication slots and dblink/postgres_fdw not approved with allow_connection()';

/* 9. Settings that copy statements (with plaintexts and tokens in them) into logs. */
CREATE FUNCTION tenant_iso._v_leaky_settings()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	-- the settings in effect, and those that ALTER ROLE / ALTER DATABASE ... SET
	-- give sessions of this database (with where they come from, and how to undo them)
	WITH s(name, setting, object, scope, undo) AS (
		SELECT name, lower(setting), name::text, '',
			   format('ALTER SYSTEM RESET %s; SELECT pg_reload_conf();', name)
		  FROM pg_settings
		UNION ALL
		SELECT split_part(c, '=', 1), lower(substr(c, strpos(c, '=') + 1)),
			   split_part(c, '=', 1) || w.scope, w.scope,
			   format('ALTER %s RESET %s;', w.target, split_part(c, '=', 1))
		  FROM pg_db_role_setting d
		  CROSS JOIN LATERAL (
				SELECT concat(CASE WHEN d.setrole <> 0 THEN format(' for role %I', pg_get_userbyid(d.setrole)) END,
							  CASE WHEN d.setdatabase <> 0 THEN format(' in database %I', current_database()) END) AS scope,
					   CASE WHEN d.setrole = 0 THEN format('DATABASE %I', current_database())
							WHEN d.setdatabase = 0 THEN format('ROLE %I', pg_get_userbyid(d.setrole))
							ELSE format('ROLE %I IN DATABASE %I', pg_get_userbyid(d.setrole), current_database()) END AS target) w
		  CROSS JOIN LATERAL unnest(d.setconfig) c
		 WHERE d.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))),
	f(severity, name, object, scope, undo, what) AS (
		SELECT 'medium', name, object, scope, undo,
			   format('log_statement = %s writes the text of %s statements to the server log', setting,
					  CASE setting WHEN 'all' THEN 'all' ELSE 'all data-modifying' END)
		  FROM s WHERE name = 'log_statement' AND setting IN ('all', 'mod')
		UNION ALL
		SELECT 'medium', name, object, scope, undo,
			   'log_min_duration_statement = 0 writes the text of every statement to the server log'
		  FROM s WHERE name = 'log_min_duration_statement' AND setting ~ '^0+\s*(us|ms|s|min|h|d)?$'
		UNION ALL
		SELECT 'low', name, object, scope, undo,
			   format('log_min_error_statement = %s logs the statement text of every message at that level and above, not only of errors', setting)
		  FROM s WHERE name = 'log_min_error_statement'
				   AND setting IN ('debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'debug', 'info')
		UNION ALL
		SELECT 'low', name, object, scope, undo,
			   format('auto_explain.log_min_duration = 0 writes every statement and its plan, constants included%s, to the server log',
					  CASE WHEN coalesce(current_setting('auto_explain.log_analyze', true), 'off') = 'on'
						   THEN ' (with actual row counts: log_analyze is on)' ELSE '' END)
		  FROM s WHERE name = 'auto_explain.log_min_duration' AND setting ~ '^0+\s*(us|ms|s|min|h|d)?$'
		UNION ALL
		SELECT 'low', name, object, scope, undo,
			   format('%s = %s writes the parse tree or plan of every statement, constants included, to the server log', name, setting)
		  FROM s WHERE name IN ('debug_print_parse', 'debug_print_rewritten', 'debug_print_plan')
				   AND setting IN ('on', 'true', 'yes', '1', 't', 'y'))
	SELECT f.severity, 'log_leak_setting', f.object,
		   f.what || f.scope || ': plaintexts, tokens and tenant values written inline end up in the log',
		   CASE WHEN f.scope <> '' THEN f.undo
				WHEN f.name = 'log_statement' THEN 'ALTER SYSTEM SET log_statement = ''ddl''; SELECT pg_reload_conf();'
				WHEN f.name = 'log_min_duration_statement'
					THEN 'ALTER SYSTEM SET log_min_duration_statement = -1; SELECT pg_reload_conf();  -- or a threshold that only catches slow statements'
				WHEN f.name = 'auto_explain.log_min_duration'
					THEN 'ALTER SYSTEM SET auto_explain.log_min_duration = -1; SELECT pg_reload_conf();'
				ELSE f.undo END,
		   ARRAY['data-segregation', 'encryption-at-rest']
	  FROM f
	UNION ALL
	SELECT 'info', 'log_leak_setting', 'pg_stat_statements',
		   'pg_stat_statements is loaded: it keeps normalised statement texts (constants replaced by $n) that pg_read_all_stats can read; utility statements can still carry values',
		   'pass secrets as bind parameters; keep pg_read_all_stats away from tenant-facing roles; or ALTER SYSTEM SET pg_stat_statements.track = ''none''',
		   ARRAY['data-segregation', 'encryption-at-rest']
	  FROM pg_settings WHERE name = 'pg_stat_statements.track' AND setting <> 'none'
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_leaky_settings() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_leaky_settings() IS
	'Internal (validate check log_leak_setting): settings (server-wide, or per role or database) that copy statement texts, and the values in them, into logs';

/* 10. Crypto posture: the master key and the age of data keys. */
CREATE FUNCTION tenant_iso._v_crypto_posture()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	loadable boolean;
	max_age interval;
BEGIN
	BEGIN
		loadable := tenant_iso.master_key_loadable();
	EXCEPTION WHEN OTHERS THEN
		loadable := false;
	END;
	IF NOT coalesce(loadable, false) THEN
		RETURN QUERY SELECT 'high'::text, 'crypto_posture'::text, 'tenant_iso.master_key_command'::text,
			'the master key cannot be loaded: encrypt(), decrypt(), tokens and key rotation fail (39000)'::text,
			'set tenant_iso.master_key_command to a command that prints the 64-hex-digit master key, then SELECT pg_reload_conf(); check with SELECT tenant_iso.master_key_loadable();'::text,
			ARRAY['encryption-at-rest'];
	END IF;

	BEGIN
		max_age := tenant_iso._interval_setting('tenant_iso.key_max_age');
	EXCEPTION WHEN invalid_parameter_value THEN
		RETURN QUERY SELECT 'low'::text, 'crypto_posture'::text, 'tenant_iso.key_max_age'::text,
			'tenant_iso.key_max_age is not a valid interval, so data key age is not checked'::text,
			'ALTER SYSTEM SET tenant_iso.key_max_age = ''90 days''; SELECT pg_reload_conf();'::text,
			ARRAY['encryption-at-rest'];
		max_age := NULL;
	END;
	IF max_age IS NOT NULL THEN
		RETURN QUERY
		SELECT 'medium'::text, 'crypto_posture'::text, k.tenant_id,
			   format('the active data key of tenant %s (version %s) was created %s ago, longer than tenant_iso.key_max_age (%s)',
					  k.tenant_id, k.version, date_trunc('second', now() - k.created_at), max_age),
			   format('SELECT tenant_iso.rotate_tenant_key(%L);  -- then tenant_iso.reencrypt() each encrypted column', k.tenant_id),
			   ARRAY['encryption-at-rest']
		  FROM tenant_iso.data_keys k
		 WHERE k.state = 'active' AND k.created_at < now() - max_age;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_crypto_posture() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_crypto_posture() IS
	'Internal (validate check crypto_posture): master key not loadable; active data keys older than tenant_iso.key_max_age';

/* 11. Integrity posture: tracked tables not verified recently, or whose last verify() failed. */
CREATE FUNCTION tenant_iso._v_integrity_posture()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	max_age interval;
BEGIN
	IF to_regclass('tenant_iso.tracked') IS NULL OR to_regclass('tenant_iso.verify_runs') IS NULL THEN
		RETURN;
	END IF;
	BEGIN
		max_age := tenant_iso._interval_setting('tenant_iso.verify_max_age');
	EXCEPTION WHEN invalid_parameter_value THEN
		RETURN QUERY SELECT 'low'::text, 'integrity_posture'::text, 'tenant_iso.verify_max_age'::text,
			'tenant_iso.verify_max_age is not a valid interval, so verification age is not checked'::text,
			'ALTER SYSTEM SET tenant_iso.verify_max_age = ''7 days''; SELECT pg_reload_conf();'::text,
			ARRAY['replication-integrity'];
		max_age := NULL;
	END;
	RETURN QUERY
	WITH last AS (
		SELECT r.relname, max(r.verified_at) AS at
		  FROM tenant_iso.verify_runs r GROUP BY r.relname),
	failed AS (
		SELECT r.relname, count(*) AS tenants
		  FROM tenant_iso.verify_runs r JOIN last l ON l.relname = r.relname AND r.verified_at = l.at
		 WHERE NOT r.ok GROUP BY r.relname)
	SELECT 'high'::text, 'integrity_posture'::text, t.relname,
		   format('the last verify() of tracked table %s (at %s) failed for %s tenant(s): its copies differ',
				  t.relname, date_trunc('second', l.at), f.tenants),
		   format('SELECT * FROM tenant_iso.verify(%L);  -- locate the differing tenants, repair them (repair_from_peer), verify again', t.relname),
		   ARRAY['replication-integrity']
	  FROM tenant_iso.tracked t JOIN last l ON l.relname = t.relname JOIN failed f ON f.relname = t.relname
	UNION ALL
	SELECT 'medium'::text, 'integrity_posture'::text, t.relname,
		   CASE WHEN l.at IS NULL THEN format('tracked table %s has never been verified', t.relname)
				ELSE format('tracked table %s was last verified at %s, longer ago than tenant_iso.verify_max_age (%s)',
							t.relname, date_trunc('second', l.at), max_age) END,
		   format('SELECT * FROM tenant_iso.verify(%L);  -- and schedule verify() with pg_cron (README)', t.relname),
		   ARRAY['replication-integrity']
	  FROM tenant_iso.tracked t LEFT JOIN last l ON l.relname = t.relname
	 WHERE max_age IS NOT NULL AND (l.at IS NULL OR l.at < now() - max_age);
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_integrity_posture() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_integrity_posture() IS
	'Internal (validate check integrity_posture): tracked tables not verified within tenant_iso.verify_max_age, or whose last verify() failed';

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

/*
 * validate()
 */
CREATE FUNCTION tenant_iso.validate()
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

/*
 * Approved external connections.
 */
CREATE FUNCTION tenant_iso._check_connection(kind text, name text) RETURNS void
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF kind IS NULL OR name IS NULL THEN
		RAISE EXCEPTION 'connection kind and name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF kind NOT IN ('foreign_server', 'subscription', 'replication_slot', 'extension') THEN
		RAISE EXCEPTION 'invalid connection kind "%"', kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The kind is one of foreign_server, subscription, replication_slot, extension.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._check_connection(text, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._check_connection(text, text) IS
	'Internal: raise 22023 for an unknown connection kind, 22004 for NULL';

CREATE FUNCTION tenant_iso.allow_connection(kind text, name text, note text DEFAULT NULL) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_iso._check_connection(kind, name);
	INSERT INTO tenant_iso.approved_connections AS a (kind, name, note, approved_by)
		VALUES (allow_connection.kind, allow_connection.name, allow_connection.note, tenant_iso._caller()::text)
		ON CONFLICT ON CONSTRAINT approved_connections_pkey DO UPDATE SET note = EXCLUDED.note;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.allow_connection(text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.allow_connection(text, text, text) IS
	'Approve an external connection (kind foreign_server, subscription, replication_slot or extension) so that validate() no longer reports it; again updates the note';

CREATE FUNCTION tenant_iso.disallow_connection(kind text, name text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_iso._check_connection(kind, name);
	DELETE FROM tenant_iso.approved_connections a
	 WHERE a.kind = disallow_connection.kind AND a.name = disallow_connection.name;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.disallow_connection(text, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.disallow_connection(text, text) IS
	'Withdraw the approval of an external connection (no-op if it was not approved)';

/*
 * Baselines and drift.
 */
CREATE FUNCTION tenant_iso._security_state()
	RETURNS TABLE (object_type text, object text, state text)
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	-- protected tables, their tenant column and row-security flags
	SELECT 'protected_table', p.rel::text,
		   CASE WHEN c.oid IS NULL THEN 'missing'
				ELSE format('column=%s type=%s rls=%s force=%s via=%s', p.tenant_column,
							coalesce(format_type(a.atttypid, a.atttypmod), '(missing)'),
							c.relrowsecurity::text, c.relforcerowsecurity::text, coalesce(p.via::text, '-')) END
	  FROM tenant_iso.protected p
	  LEFT JOIN pg_class c ON c.oid = p.rel::oid
	  LEFT JOIN pg_attribute a ON a.attrelid = p.rel::oid AND a.attname = p.tenant_column
							  AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	-- owner and grants on protected tables
	SELECT 'table_privileges', c.oid::regclass::text,
		   format('owner=%s acl=%s', pg_get_userbyid(c.relowner),
				  coalesce((SELECT string_agg(x::text, ' ' ORDER BY x::text) FROM unnest(c.relacl) x), 'default'))
	  FROM tenant_iso.protected p JOIN pg_class c ON c.oid = p.rel::oid
	UNION ALL
	SELECT 'tenant', t.tenant_id, t.status FROM tenant_iso.tenants t
	UNION ALL
	SELECT 'tenant_member', m.member::text, m.tenant_id FROM tenant_iso.members m
	UNION ALL
	SELECT 'switcher', s.grantee::text, 'switcher' FROM tenant_iso.switchers s
	UNION ALL
	-- non-system roles: attributes and memberships
	SELECT 'role', r.rolname::text,
		   format('superuser=%s bypassrls=%s createrole=%s createdb=%s login=%s replication=%s inherit=%s member_of=%s',
				  r.rolsuper::text, r.rolbypassrls::text, r.rolcreaterole::text, r.rolcreatedb::text,
				  r.rolcanlogin::text, r.rolreplication::text, r.rolinherit::text,
				  coalesce(g.list, ''))
	  FROM pg_roles r
	  LEFT JOIN (SELECT am.member, string_agg(gr.rolname || CASE WHEN am.admin_option THEN '(admin)' ELSE '' END,
											  ',' ORDER BY gr.rolname) AS list
				   FROM pg_auth_members am JOIN pg_roles gr ON gr.oid = am.roleid
				  GROUP BY am.member) g ON g.member = r.oid
	 WHERE r.rolname !~ '^pg_'
	UNION ALL
	-- SECURITY DEFINER functions: owner and grants
	SELECT 'security_definer_function', p.oid::regprocedure::text,
		   format('owner=%s acl=%s', pg_get_userbyid(p.proowner),
				  coalesce((SELECT string_agg(x::text, ' ' ORDER BY x::text) FROM unnest(p.proacl) x), 'default'))
	  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	 WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
	UNION ALL
	-- external connections
	SELECT 'foreign_server', s.srvname::text,
		   format('wrapper=%s owner=%s options=%s', w.fdwname, pg_get_userbyid(s.srvowner),
				  coalesce((SELECT string_agg(o, ',' ORDER BY o) FROM unnest(s.srvoptions) o
							 WHERE o !~* '^[^=]*(password|secret|key)'), ''))
	  FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
	UNION ALL
	SELECT 'subscription', s.subname::text,
		   format('enabled=%s owner=%s publications=%s', s.subenabled::text, pg_get_userbyid(s.subowner),
				  array_to_string(s.subpublications, ','))
	  FROM pg_subscription s WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
	UNION ALL
	SELECT 'replication_slot', s.slot_name::text,
		   format('type=%s plugin=%s database=%s', s.slot_type, coalesce(s.plugin::text, '-'), coalesce(s.database::text, '-'))
	  FROM pg_replication_slots s WHERE s.database IS NULL OR s.database = current_database()
	UNION ALL
	SELECT 'extension', e.extname::text, e.extversion FROM pg_extension e
	UNION ALL
	SELECT 'approved_connection', a.kind || ':' || a.name, coalesce(a.note, '') FROM tenant_iso.approved_connections a
	UNION ALL
	-- who may connect how (pg_hba.conf), keyed by the rule's match fields
	SELECT 'hba_rule', h.key, string_agg(h.method, '; ' ORDER BY h.line_number)
	  FROM (SELECT r.line_number,
				   concat_ws(' ', r.type, array_to_string(r.database, ','), array_to_string(r.user_name, ','),
							 coalesce(r.address, '') || coalesce('/' || r.netmask, '')) AS key,
				   r.auth_method || coalesce(' ' || array_to_string(r.options, ' '), '') AS method
			  FROM pg_hba_file_rules r WHERE r.error IS NULL) h
	 GROUP BY h.key
	UNION ALL
	-- settings: logging (see log_leak_setting), TLS, preloading, tenant_iso.*
	SELECT 'setting', s.name,
		   CASE WHEN s.name LIKE 'tenant_iso.%master_key_command' AND s.setting <> ''
				THEN 'sha256:' || encode(sha256(convert_to(s.setting, 'UTF8')), 'hex')  -- never the command itself
				ELSE s.setting END
	  FROM pg_settings s
	 WHERE (s.name LIKE 'tenant_iso.%' AND s.name <> 'tenant_iso.tenant')
		OR s.name LIKE 'auto_explain.%'
		OR s.name IN ('log_statement', 'log_min_duration_statement', 'log_min_error_statement',
					  'log_parameter_max_length', 'log_parameter_max_length_on_error',
					  'debug_print_parse', 'debug_print_rewritten', 'debug_print_plan',
					  'pg_stat_statements.track', 'shared_preload_libraries', 'session_preload_libraries',
					  'local_preload_libraries', 'ssl', 'ssl_min_protocol_version', 'listen_addresses',
					  'password_encryption', 'row_security');

	-- ALTER ROLE / ALTER DATABASE ... SET for this database
	RETURN QUERY
	SELECT 'role_setting',
		   concat_ws(' ', CASE WHEN d.setrole <> 0 THEN 'role ' || quote_ident(pg_get_userbyid(d.setrole)) END,
						  CASE WHEN d.setdatabase <> 0 THEN 'database ' || quote_ident(current_database()) END),
		   (SELECT string_agg(CASE WHEN c ~* '^tenant_iso\.[a-z_]*master_key_command='
								   THEN split_part(c, '=', 1) || '=sha256:' || encode(sha256(convert_to(c, 'UTF8')), 'hex')
								   ELSE c END, ' ' ORDER BY c)
			  FROM unnest(d.setconfig) c)
	  FROM pg_db_role_setting d
	 WHERE d.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()));

	IF to_regclass('tenant_iso.tracked') IS NOT NULL THEN
		RETURN QUERY
		SELECT 'tracked_table', t.relname,
			   CASE WHEN c.oid IS NULL THEN 'missing'
					ELSE format('rls=%s force=%s', c.relrowsecurity::text, c.relforcerowsecurity::text) END
		  FROM tenant_iso.tracked t LEFT JOIN pg_class c ON c.oid = t.rel::oid;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._security_state() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._security_state() IS
	'Internal: the security-relevant state of the database, one row per object, as baseline_save() stores it and drift() compares it';

CREATE FUNCTION tenant_iso.baseline_save(name text DEFAULT 'default') RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET jit = off  -- catalog queries: compiling them costs more than it saves
AS $$
BEGIN
	IF name IS NULL THEN
		RAISE EXCEPTION 'baseline name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- two saves of one name at once: the second waits, then replaces
	PERFORM pg_advisory_xact_lock(hashtext('tenant_iso.baseline_save'), hashtext(baseline_save.name));
	DELETE FROM tenant_iso.baselines b WHERE b.name = baseline_save.name;
	INSERT INTO tenant_iso.baselines (name, object_type, object, state, saved_at)
		SELECT baseline_save.name, s.object_type, s.object, s.state, now()
		  FROM tenant_iso._security_state() s;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.baseline_save(text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.baseline_save(text) IS
	'Record the security-relevant state (protected and tracked tables, tenants, members, roles, grants, SECURITY DEFINER functions, external connections, settings) as a named baseline, replacing any baseline of that name';

CREATE FUNCTION tenant_iso.drift(name text DEFAULT 'default')
	RETURNS TABLE (change text, object_type text, object text, before text, after text)
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET jit = off  -- catalog queries: compiling them costs more than it saves
AS $$
#variable_conflict use_column
BEGIN
	IF drift.name IS NULL THEN
		RAISE EXCEPTION 'baseline name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM tenant_iso.baselines b WHERE b.name = drift.name) THEN
		RAISE EXCEPTION 'baseline "%" does not exist', drift.name
			USING ERRCODE = 'undefined_object',
				  HINT = 'Save one with tenant_iso.baseline_save().';
	END IF;
	RETURN QUERY
	SELECT CASE WHEN b.object IS NULL THEN 'added' WHEN s.object IS NULL THEN 'removed' ELSE 'changed' END,
		   coalesce(b.object_type, s.object_type), coalesce(b.object, s.object), b.state, s.state
	  FROM (SELECT x.object_type, x.object, x.state FROM tenant_iso.baselines x WHERE x.name = drift.name) b
	  FULL JOIN tenant_iso._security_state() s ON s.object_type = b.object_type AND s.object = b.object
	 WHERE b.object IS NULL OR s.object IS NULL OR b.state IS DISTINCT FROM s.state
	 ORDER BY 2, 3;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.drift(text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.drift(text) IS
	'What changed since a baseline: one row per added, removed or changed security-relevant object, with its state before and after';
