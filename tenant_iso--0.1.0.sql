/* tenant_iso--0.1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION tenant_iso" to load this file. \quit

/*
 * Configuration tables.  They are owned by the extension and registered
 * with pg_extension_config_dump so that pg_dump carries their rows.  Every
 * change to them sends a relcache invalidation (trigger _config_changed),
 * which is how each backend's caches learn about it.
 */
CREATE TABLE tenant_iso.tenants (
	tenant_id text PRIMARY KEY
		CHECK (tenant_id ~ '^[A-Za-z0-9_.:-]{1,63}$'),
	display_name text,
	status text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'suspended')),
	created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tenant_iso.tenants IS
	'Registered tenants: id, display name, status (active or suspended) and creation time';

CREATE TABLE tenant_iso.members (
	member regrole PRIMARY KEY,
	tenant_id text NOT NULL REFERENCES tenant_iso.tenants ON UPDATE CASCADE,
	added_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tenant_iso.members IS
	'Tenant member roles: each role belongs to exactly one tenant';

CREATE TABLE tenant_iso.switchers (
	grantee regrole PRIMARY KEY,
	granted_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tenant_iso.switchers IS
	'Pool roles allowed to enter any active tenant with set_tenant()';

CREATE TABLE tenant_iso.protected (
	rel regclass PRIMARY KEY,
	tenant_column name NOT NULL,
	via regclass,
	protected_at timestamptz NOT NULL DEFAULT now(),
	default_set boolean NOT NULL DEFAULT false,
	prior_rls boolean NOT NULL DEFAULT false,
	prior_force boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE tenant_iso.protected IS
	'Protected tables; via names the ancestor a partition or child inherited protection from';

SELECT pg_catalog.pg_extension_config_dump('tenant_iso.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.members', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.switchers', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.protected', '');

CREATE FUNCTION tenant_iso._config_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ti_config_changed' LANGUAGE C;
COMMENT ON FUNCTION tenant_iso._config_changed() IS
	'Internal: trigger that tells every backend to reload its cached copy of a configuration table';
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON tenant_iso.tenants FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON tenant_iso.members FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON tenant_iso.switchers FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON tenant_iso.protected FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._config_changed();

REVOKE ALL ON ALL TABLES IN SCHEMA tenant_iso FROM PUBLIC;
GRANT USAGE ON SCHEMA tenant_iso TO PUBLIC;

/*
 * Tenant context (C).
 */
CREATE FUNCTION tenant_iso.current_tenant() RETURNS text
	AS 'MODULE_PATHNAME', 'ti_current_tenant'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso.current_tenant() IS
	'The tenant of this session: the member role''s tenant, or the context a switcher or token entered; NULL when there is none';

CREATE FUNCTION tenant_iso._enforced_tenant() RETURNS text
	AS 'MODULE_PATHNAME', 'ti_enforced_tenant'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso._enforced_tenant() IS
	'Internal: the tenant that row policies compare with; raises 42501 when there is no usable tenant context';

CREATE FUNCTION tenant_iso.set_tenant(tenant_id text, local boolean DEFAULT false) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_set_tenant'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.set_tenant(text, boolean) IS
	'Enter an active tenant''s context (switcher roles only); local => true lasts until the end of the transaction';

CREATE FUNCTION tenant_iso.reset_tenant() RETURNS void
	AS 'MODULE_PATHNAME', 'ti_reset_tenant'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.reset_tenant() IS
	'Leave the tenant context a switcher or token entered; a member role''s tenant still applies';

CREATE FUNCTION tenant_iso.issue_token(tenant_id text, ttl interval DEFAULT '5 minutes') RETURNS text
	AS 'MODULE_PATHNAME', 'ti_issue_token'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.issue_token(text, interval) IS
	'Issue a signed token (HMAC-SHA256 under a key derived from the master key) that lets any role enter one tenant until it expires';

CREATE FUNCTION tenant_iso.set_tenant_token(token text, local boolean DEFAULT false) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_set_tenant_token'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.set_tenant_token(text, boolean) IS
	'Enter the tenant named by a token from issue_token(); the token is the capability';

CREATE FUNCTION tenant_iso.master_key_loadable() RETURNS boolean
	AS 'MODULE_PATHNAME', 'ti_master_key_loadable'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso.master_key_loadable() IS
	'True when tenant_iso.master_key_command yields a well-formed master key (the key itself is never shown)';

CREATE FUNCTION tenant_iso._caller() RETURNS regrole
	AS 'MODULE_PATHNAME', 'ti_caller'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso._caller() IS
	'Internal: the role that called the current SECURITY DEFINER function (the outer role)';

/*
 * Tenant registry administration.  SECURITY DEFINER, revoked from PUBLIC:
 * superusers and roles granted EXECUTE may use them.
 */
CREATE FUNCTION tenant_iso._check_tenant_id(tenant_id text) RETURNS void
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF tenant_id IS NULL OR tenant_id !~ '^[A-Za-z0-9_.:-]{1,63}$' THEN
		RAISE EXCEPTION 'invalid tenant id'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A tenant id is 1 to 63 characters from A-Z, a-z, 0-9, "_", ".", ":" and "-".';
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso._check_tenant_id(text) IS
	'Internal: raise 22023 unless the argument is a valid tenant id';

CREATE FUNCTION tenant_iso._require_tenant(tenant_id text) RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_iso._check_tenant_id(tenant_id);
	PERFORM 1 FROM tenant_iso.tenants t WHERE t.tenant_id = _require_tenant.tenant_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant "%" does not exist', tenant_id
			USING ERRCODE = 'undefined_object';
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso._require_tenant(text) IS
	'Internal: raise unless the tenant exists';

CREATE FUNCTION tenant_iso.create_tenant(tenant_id text, display_name text DEFAULT NULL) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_iso._check_tenant_id(tenant_id);
	BEGIN
		INSERT INTO tenant_iso.tenants (tenant_id, display_name)
			VALUES (create_tenant.tenant_id, create_tenant.display_name);
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'tenant "%" already exists', tenant_id
			USING ERRCODE = 'unique_violation';
	END;
END
$$;
COMMENT ON FUNCTION tenant_iso.create_tenant(text, text) IS
	'Register a tenant; ids are 1 to 63 characters from [A-Za-z0-9_.:-]';

CREATE FUNCTION tenant_iso._set_tenant_status(tenant_id text, new_status text) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_iso._require_tenant(tenant_id);
	UPDATE tenant_iso.tenants t SET status = new_status
		WHERE t.tenant_id = _set_tenant_status.tenant_id AND t.status <> new_status;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._set_tenant_status(text, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._set_tenant_status(text, text) IS
	'Internal: change a tenant''s status';

CREATE FUNCTION tenant_iso.suspend_tenant(tenant_id text) RETURNS void
	LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	BEGIN ATOMIC SELECT tenant_iso._set_tenant_status(tenant_id, 'suspended'); END;
COMMENT ON FUNCTION tenant_iso.suspend_tenant(text) IS
	'Suspend a tenant: its context can no longer be entered, and sessions in it are refused at their next statement on tenant data';

CREATE FUNCTION tenant_iso.resume_tenant(tenant_id text) RETURNS void
	LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	BEGIN ATOMIC SELECT tenant_iso._set_tenant_status(tenant_id, 'active'); END;
COMMENT ON FUNCTION tenant_iso.resume_tenant(text) IS
	'Make a suspended tenant active again';

CREATE FUNCTION tenant_iso.add_member(member regrole, tenant_id text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	current text;
BEGIN
	IF member IS NULL THEN
		RAISE EXCEPTION 'member role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM tenant_iso._require_tenant(tenant_id);
	SELECT m.tenant_id INTO current FROM tenant_iso.members m WHERE m.member = add_member.member;
	IF FOUND AND current = tenant_id THEN
		RETURN;
	ELSIF FOUND THEN
		RAISE EXCEPTION 'role "%" is already a member of tenant "%"', member, current
			USING ERRCODE = 'unique_violation',
				  HINT = 'A role belongs to exactly one tenant; call remove_member() first.';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_iso.switchers s WHERE s.grantee = add_member.member) THEN
		RAISE EXCEPTION 'role "%" is a switcher and cannot be a tenant member', member
			USING ERRCODE = 'invalid_grant_operation';
	END IF;
	INSERT INTO tenant_iso.members (member, tenant_id) VALUES (add_member.member, add_member.tenant_id);
END
$$;
COMMENT ON FUNCTION tenant_iso.add_member(regrole, text) IS
	'Make a role a member of a tenant: every session running as it is in that tenant''s context';

CREATE FUNCTION tenant_iso.remove_member(member regrole) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM tenant_iso.members m WHERE m.member = remove_member.member;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'role "%" is not a tenant member', member USING ERRCODE = 'undefined_object';
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso.remove_member(regrole) IS
	'Remove a role''s tenant membership';

CREATE FUNCTION tenant_iso.grant_switch(grantee regrole) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF grantee IS NULL THEN
		RAISE EXCEPTION 'grantee role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_iso.members m WHERE m.member = grant_switch.grantee) THEN
		RAISE EXCEPTION 'role "%" is a tenant member and cannot be a switcher', grantee
			USING ERRCODE = 'invalid_grant_operation';
	END IF;
	INSERT INTO tenant_iso.switchers (grantee) VALUES (grant_switch.grantee)
		ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION tenant_iso.grant_switch(regrole) IS
	'Let a role (an application''s pool role) enter any active tenant with set_tenant()';

CREATE FUNCTION tenant_iso.revoke_switch(grantee regrole) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM tenant_iso.switchers s WHERE s.grantee = revoke_switch.grantee;
END
$$;
COMMENT ON FUNCTION tenant_iso.revoke_switch(regrole) IS
	'Take back a role''s right to switch tenants';

REVOKE ALL ON FUNCTION tenant_iso.create_tenant(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.suspend_tenant(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.resume_tenant(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.add_member(regrole, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.remove_member(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.grant_switch(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.revoke_switch(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.issue_token(text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.master_key_loadable() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._config_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._require_tenant(text) FROM PUBLIC;

/*
 * Row isolation.
 */
CREATE FUNCTION tenant_iso._assert_no_tenant_context(what text, rel regclass DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_assert_no_tenant_context'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._assert_no_tenant_context(text, regclass) IS
	'Internal: raise 42501 when the session is in a tenant context';

CREATE VIEW tenant_iso.protected_tables AS
	SELECT rel, tenant_column, protected_at FROM tenant_iso.protected;
COMMENT ON VIEW tenant_iso.protected_tables IS
	'Tables under tenant isolation, with their tenant column';

/* Covert channels: unique keys and foreign keys that leave out the tenant column. */
CREATE FUNCTION tenant_iso._leaky_constraints(rel regclass, tenant_column name)
	RETURNS TABLE (object text, detail text)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT format('index %s', i.indexrelid::regclass),
		   format('unique index %s on %s does not include the tenant column %I',
				  i.indexrelid::regclass, rel, tenant_column)
	  FROM pg_index i
	 WHERE i.indrelid = rel AND i.indisunique
	   AND NOT EXISTS (SELECT 1 FROM pg_attribute a
					   WHERE a.attrelid = rel AND a.attname = tenant_column
					     AND a.attnum = ANY (i.indkey))
	UNION ALL
	SELECT format('constraint %I on %s', c.conname, c.conrelid::regclass),
		   format('foreign key %I from %s to %s does not carry the tenant column on both sides',
				  c.conname, c.conrelid::regclass, c.confrelid::regclass)
	  FROM pg_constraint c
	 WHERE c.contype = 'f' AND (c.conrelid = rel OR c.confrelid = rel)
	   AND NOT EXISTS (
			SELECT 1
			  FROM unnest(c.conkey, c.confkey) AS k(l, r)
			  JOIN pg_attribute la ON la.attrelid = c.conrelid AND la.attnum = k.l
			  JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.r
			 WHERE la.attname = coalesce((SELECT p.tenant_column FROM tenant_iso.protected p
										   WHERE p.rel = c.conrelid), tenant_column)
			   AND ra.attname = coalesce((SELECT p.tenant_column FROM tenant_iso.protected p
										   WHERE p.rel = c.confrelid), tenant_column))
$$;
REVOKE ALL ON FUNCTION tenant_iso._leaky_constraints(regclass, name) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._leaky_constraints(regclass, name) IS
	'Internal: unique and foreign keys on a table that let one tenant probe another''s keys';

/* Protect one table (no checks: callers check). */
CREATE FUNCTION tenant_iso._protect_one(rel regclass, tenant_column name, via regclass) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c pg_class%ROWTYPE;
	typ text;
	has_default boolean;
	ours boolean;
BEGIN
	IF EXISTS (SELECT 1 FROM tenant_iso.protected p WHERE p.rel = _protect_one.rel) THEN
		RETURN;
	END IF;
	SELECT * INTO c FROM pg_class WHERE oid = rel;
	SELECT format_type(a.atttypid, a.atttypmod), a.atthasdef,
		   coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE '%tenant_iso.current_tenant()%', false)
	  INTO typ, has_default, ours
	  FROM pg_attribute a
	  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	 WHERE a.attrelid = rel AND a.attname = tenant_column AND NOT a.attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', tenant_column, rel
			USING ERRCODE = 'undefined_column';
	END IF;
	-- a partition created later inherits our default: it is still ours
	IF ours THEN
		has_default := false;
	END IF;
	-- record first: the ALTERs below fire the event trigger, which must see it
	INSERT INTO tenant_iso.protected (rel, tenant_column, via, default_set, prior_rls, prior_force)
		VALUES (rel, tenant_column, via, NOT has_default, c.relrowsecurity, c.relforcerowsecurity);
	EXECUTE format('ALTER TABLE ONLY %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', rel);
	IF NOT has_default AND NOT ours THEN
		EXECUTE format('ALTER TABLE ONLY %s ALTER COLUMN %I SET DEFAULT (tenant_iso.current_tenant())::%s',
					   rel, tenant_column, typ);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._protect_one(regclass, name, regclass) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._protect_one(regclass, name, regclass) IS
	'Internal: enable and force row security on one table, set the tenant default, record it';

/* Every descendant (partitions and inheritance children, at any depth). */
CREATE FUNCTION tenant_iso._descendants(rel regclass) RETURNS SETOF regclass
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE d(oid) AS (
		SELECT inhrelid FROM pg_inherits WHERE inhparent = rel
		UNION
		SELECT i.inhrelid FROM pg_inherits i JOIN d ON i.inhparent = d.oid)
	SELECT oid::regclass FROM d
$$;
COMMENT ON FUNCTION tenant_iso._descendants(regclass) IS
	'Internal: all partitions and inheritance children of a table';

CREATE FUNCTION tenant_iso.protect(rel regclass, tenant_column name DEFAULT 'tenant_id',
								   strict boolean DEFAULT false) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c pg_class%ROWTYPE;
	typ regtype;
	existing name;
	leak record;
	kid regclass;
BEGIN
	IF rel IS NULL OR tenant_column IS NULL THEN
		RAISE EXCEPTION 'table and tenant column must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO c FROM pg_class WHERE oid = rel;
	IF c.relkind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '% is not a table', rel USING ERRCODE = 'wrong_object_type';
	END IF;
	IF NOT pg_has_role(tenant_iso._caller(), c.relowner, 'USAGE') THEN
		RAISE EXCEPTION 'must be owner of table %', rel USING ERRCODE = 'insufficient_privilege';
	END IF;
	SELECT a.atttypid INTO typ FROM pg_attribute a
	 WHERE a.attrelid = rel AND a.attname = tenant_column AND a.attnum > 0 AND NOT a.attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', tenant_column, rel
			USING ERRCODE = 'undefined_column';
	END IF;
	IF typ NOT IN ('text'::regtype, 'varchar'::regtype, 'uuid'::regtype,
				   'int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
		RAISE EXCEPTION 'tenant column "%" has unsupported type %', tenant_column, typ
			USING ERRCODE = 'datatype_mismatch',
				  HINT = 'The tenant column must be text, varchar, uuid, smallint, integer or bigint.';
	END IF;
	SELECT p.tenant_column INTO existing FROM tenant_iso.protected p WHERE p.rel = protect.rel;
	IF FOUND THEN
		IF existing <> tenant_column THEN
			RAISE EXCEPTION 'table % is already protected on column "%"', rel, existing
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
		RETURN;
	END IF;

	FOR leak IN SELECT * FROM tenant_iso._leaky_constraints(rel, tenant_column) LOOP
		IF strict THEN
			RAISE EXCEPTION '%', leak.detail
				USING ERRCODE = 'invalid_table_definition',
					  DETAIL = 'One tenant could learn whether another tenant''s key exists.',
					  HINT = 'Include the tenant column in the key, for example PRIMARY KEY (tenant_id, id).';
		END IF;
		RAISE WARNING '%', leak.detail
			USING DETAIL = 'One tenant could learn whether another tenant''s key exists.',
				  HINT = 'Include the tenant column in the key, for example PRIMARY KEY (tenant_id, id).';
	END LOOP;

	PERFORM tenant_iso._protect_one(rel, tenant_column, NULL);
	FOR kid IN SELECT * FROM tenant_iso._descendants(rel) LOOP
		PERFORM tenant_iso._protect_one(kid, tenant_column, rel);
	END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_iso.protect(regclass, name, boolean) IS
	'Put a table, its partitions and its inheritance children under tenant isolation (owner or superuser)';

CREATE FUNCTION tenant_iso.unprotect(rel regclass) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	owner oid;
	p record;
BEGIN
	SELECT relowner INTO owner FROM pg_class WHERE oid = rel;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'relation does not exist' USING ERRCODE = 'undefined_table';
	END IF;
	IF NOT pg_has_role(tenant_iso._caller(), owner, 'USAGE') THEN
		RAISE EXCEPTION 'must be owner of table %', rel USING ERRCODE = 'insufficient_privilege';
	END IF;
	PERFORM tenant_iso._assert_no_tenant_context('unprotect()', rel);
	IF NOT EXISTS (SELECT 1 FROM tenant_iso.protected x WHERE x.rel = unprotect.rel) THEN
		RETURN;
	END IF;
	FOR p IN SELECT x.* FROM tenant_iso.protected x
			  WHERE x.rel = unprotect.rel OR x.via = unprotect.rel LOOP
		IF NOT p.prior_force THEN
			EXECUTE format('ALTER TABLE ONLY %s NO FORCE ROW LEVEL SECURITY', p.rel);
		END IF;
		IF NOT p.prior_rls THEN
			EXECUTE format('ALTER TABLE ONLY %s DISABLE ROW LEVEL SECURITY', p.rel);
		END IF;
		IF p.default_set AND EXISTS (
				SELECT 1 FROM pg_attrdef d JOIN pg_attribute a
					ON a.attrelid = d.adrelid AND a.attnum = d.adnum
				 WHERE d.adrelid = p.rel AND a.attname = p.tenant_column
				   AND pg_get_expr(d.adbin, d.adrelid) LIKE '%tenant_iso.current_tenant()%') THEN
			EXECUTE format('ALTER TABLE ONLY %s ALTER COLUMN %I DROP DEFAULT', p.rel, p.tenant_column);
		END IF;
		DELETE FROM tenant_iso.protected x WHERE x.rel = p.rel;
	END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_iso.unprotect(regclass) IS
	'Take a table (and the partitions and children it protected) out of tenant isolation (owner or superuser, outside any tenant context)';

/* New partitions and children of protected tables are protected as they appear. */
CREATE FUNCTION tenant_iso._on_ddl() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cmd record;
	anc record;
	kid regclass;
BEGIN
	FOR cmd IN SELECT DISTINCT objid FROM pg_event_trigger_ddl_commands()
				WHERE object_type IN ('table', 'table column') AND classid = 'pg_class'::regclass LOOP
		-- the table itself, under a protected ancestor
		IF NOT EXISTS (SELECT 1 FROM tenant_iso.protected p WHERE p.rel = cmd.objid) THEN
			WITH RECURSIVE a(oid, depth) AS (
				SELECT inhparent, 1 FROM pg_inherits WHERE inhrelid = cmd.objid
				UNION
				SELECT i.inhparent, a.depth + 1 FROM pg_inherits i JOIN a ON i.inhrelid = a.oid)
			SELECT p.rel, p.tenant_column INTO anc
			  FROM a JOIN tenant_iso.protected p ON p.rel = a.oid::regclass
			 ORDER BY a.depth LIMIT 1;
			IF FOUND THEN
				PERFORM tenant_iso._protect_one(cmd.objid::regclass, anc.tenant_column, anc.rel);
			END IF;
		END IF;
		-- children attached to it
		FOR anc IN SELECT p.rel, p.tenant_column FROM tenant_iso.protected p WHERE p.rel = cmd.objid LOOP
			FOR kid IN SELECT * FROM tenant_iso._descendants(anc.rel) LOOP
				PERFORM tenant_iso._protect_one(kid, anc.tenant_column, anc.rel);
			END LOOP;
		END LOOP;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._on_ddl() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._on_ddl() IS
	'Internal: event trigger that protects new partitions and children of protected tables';

CREATE EVENT TRIGGER tenant_iso_protect_children ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
	EXECUTE FUNCTION tenant_iso._on_ddl();

/*
 * Column-level encryption with per-tenant data keys.
 */
CREATE TABLE tenant_iso.data_keys (
	tenant_id text NOT NULL REFERENCES tenant_iso.tenants ON UPDATE CASCADE,
	version int NOT NULL CHECK (version > 0),
	state text NOT NULL DEFAULT 'active'
		CHECK (state IN ('active', 'retired', 'destroyed')),
	wrapped bytea CHECK ((state = 'destroyed') = (wrapped IS NULL)),
	created_at timestamptz NOT NULL DEFAULT now(),
	retired_at timestamptz,
	destroyed_at timestamptz,
	PRIMARY KEY (tenant_id, version)
);
CREATE UNIQUE INDEX data_keys_one_active ON tenant_iso.data_keys (tenant_id) WHERE state = 'active';
COMMENT ON TABLE tenant_iso.data_keys IS
	'Per-tenant data keys, each stored only wrapped (AES-256-GCM) under a key derived from the master key';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.data_keys', '');
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON tenant_iso.data_keys FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._config_changed();
REVOKE ALL ON tenant_iso.data_keys FROM PUBLIC;

CREATE VIEW tenant_iso.keys AS
	SELECT tenant_id, version, state, created_at, retired_at FROM tenant_iso.data_keys;
COMMENT ON VIEW tenant_iso.keys IS
	'Data key versions per tenant and their state (active, retired, destroyed); no key material';

CREATE FUNCTION tenant_iso.encrypt(data bytea, context text DEFAULT '') RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_encrypt'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.encrypt(bytea, text) IS
	'Seal a value with the current tenant''s active data key (AES-256-GCM, bound to tenant and context)';
CREATE FUNCTION tenant_iso.encrypt(data text, context text DEFAULT '') RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_encrypt'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.encrypt(text, text) IS
	'Seal a text value with the current tenant''s active data key (AES-256-GCM, bound to tenant and context)';
CREATE FUNCTION tenant_iso.decrypt(data bytea, context text DEFAULT '') RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_decrypt'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso.decrypt(bytea, text) IS
	'Open a value sealed by encrypt() for the current tenant and the same context';
CREATE FUNCTION tenant_iso.decrypt_text(data bytea, context text DEFAULT '') RETURNS text
	AS 'MODULE_PATHNAME', 'ti_decrypt_text'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso.decrypt_text(bytea, text) IS
	'Open a text value sealed by encrypt() for the current tenant and the same context';
CREATE FUNCTION tenant_iso.blind_index(data text, context text DEFAULT '', bytes int DEFAULT 16) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_blind_index'
	LANGUAGE C STABLE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.blind_index(text, text, int) IS
	'Keyed HMAC-SHA256 of a value under a per-tenant, per-context key, truncated: equality search without decrypting; fixed within a key version';
CREATE FUNCTION tenant_iso.blind_index(data bytea, context text DEFAULT '', bytes int DEFAULT 16) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_blind_index'
	LANGUAGE C STABLE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.blind_index(bytea, text, int) IS
	'Keyed HMAC-SHA256 of a value under a per-tenant, per-context key, truncated: equality search without decrypting; fixed within a key version';

CREATE FUNCTION tenant_iso.key_version(data bytea) RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_key_version'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso.key_version(bytea) IS
	'The data key version an envelope was sealed with (NULL if the value is not an envelope)';

CREATE FUNCTION tenant_iso.rotate_tenant_key(tenant_id text) RETURNS int
	AS 'MODULE_PATHNAME', 'ti_rotate_tenant_key'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.rotate_tenant_key(text) IS
	'Create a new active data key version for a tenant; older versions stay usable for decryption';

CREATE FUNCTION tenant_iso.rewrap_keys() RETURNS int
	AS 'MODULE_PATHNAME', 'ti_rewrap_keys'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.rewrap_keys() IS
	'Rewrap every data key still under the previous master key (tenant_iso.previous_master_key_command) with the current one; table data is not rewritten';

CREATE FUNCTION tenant_iso.shred_tenant(tenant_id text) RETURNS int
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n int;
BEGIN
	PERFORM tenant_iso._require_tenant(tenant_id);
	UPDATE tenant_iso.data_keys k
	   SET state = 'destroyed', wrapped = NULL, destroyed_at = now(),
		   retired_at = coalesce(k.retired_at, now())
	 WHERE k.tenant_id = shred_tenant.tenant_id AND k.state <> 'destroyed';
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION tenant_iso.shred_tenant(text) IS
	'Destroy every data key of a tenant, irreversibly: its ciphertexts can never be opened again';

REVOKE ALL ON FUNCTION tenant_iso.rotate_tenant_key(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.rewrap_keys() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.shred_tenant(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.key_version(bytea) FROM PUBLIC;


CREATE FUNCTION tenant_iso.reencrypt(rel regclass, col name, context text DEFAULT '',
									 batch_size int DEFAULT 1000) RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_reencrypt'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.reencrypt(regclass, name, text, int) IS
	'Rewrite every ciphertext of a column that is not under its tenant''s active key version, across all tenants, in committed batches; safe to rerun';
REVOKE ALL ON FUNCTION tenant_iso.reencrypt(regclass, name, text, int) FROM PUBLIC;



/*
 * Replication integrity: per-tenant additive digests, verification,
 * divergence located against a peer and repaired from it.
 */
CREATE TABLE tenant_iso.tracked (
	rel regclass PRIMARY KEY,
	relname text NOT NULL UNIQUE,
	tracked_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tenant_iso.tracked IS
	'Tables whose per-tenant digests are maintained; relname (schema-qualified) is the key digests use on every node';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.tracked', '');

-- Deltas, appended by the digest triggers; no index, by design (see digest.c).
CREATE TABLE tenant_iso.digests (
	relname text NOT NULL,
	tenant_id text NOT NULL,
	bucket int NOT NULL,
	nrows bigint NOT NULL,
	lanes bytea NOT NULL
);
COMMENT ON TABLE tenant_iso.digests IS
	'Digest deltas per (table, tenant, bucket): row count and 8 lanes summed modulo 2^64; compact_digests() folds them';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.digests', '');

CREATE TABLE tenant_iso.verify_runs (
	relname text NOT NULL,
	tenant_id text NOT NULL,
	ok boolean NOT NULL,
	verified_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tenant_iso.verify_runs IS
	'One row per (table, tenant) for each verify() run on a writable node; validate() reads it';
REVOKE ALL ON tenant_iso.tracked, tenant_iso.digests, tenant_iso.verify_runs FROM PUBLIC;

CREATE FUNCTION tenant_iso._lanes_sum_step(bytea, bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_lanes_sum'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso._lanes_sum_step(bytea, bytea) IS
	'Internal: lane-wise sum modulo 2^64 of packed digest lanes';
CREATE AGGREGATE tenant_iso._lanes_sum(bytea) (
	SFUNC = tenant_iso._lanes_sum_step,
	STYPE = bytea,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE tenant_iso._lanes_sum(bytea) IS
	'Internal: lane-wise sum of digest lanes';

CREATE FUNCTION tenant_iso._digest_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ti_digest_trigger'
	LANGUAGE C;
COMMENT ON FUNCTION tenant_iso._digest_trigger() IS
	'Internal: statement trigger that appends digest deltas for the rows a statement changed';

CREATE FUNCTION tenant_iso._rebuild_digests(rel regclass) RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_rebuild_digests'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso._rebuild_digests(regclass) IS
	'Internal: replace a table''s stored digests with ones computed from its rows';

CREATE FUNCTION tenant_iso._digest_triggers(rel regclass, relname text, create_them boolean) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t regclass;
BEGIN
	FOR t IN SELECT rel UNION SELECT * FROM tenant_iso._descendants(rel) LOOP
		IF (SELECT relkind FROM pg_class WHERE oid = t) NOT IN ('r', 'p') THEN
			CONTINUE;
		END IF;
		IF create_them THEN
			IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = t AND tgname = 'tenant_iso_digest_ins') THEN
				CONTINUE;
			END IF;
			EXECUTE format('CREATE TRIGGER tenant_iso_digest_ins AFTER INSERT ON %s REFERENCING NEW TABLE AS ti_new '
						   'FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._digest_trigger(%L)', t, relname);
			EXECUTE format('CREATE TRIGGER tenant_iso_digest_upd AFTER UPDATE ON %s REFERENCING OLD TABLE AS ti_old NEW TABLE AS ti_new '
						   'FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._digest_trigger(%L)', t, relname);
			EXECUTE format('CREATE TRIGGER tenant_iso_digest_del AFTER DELETE ON %s REFERENCING OLD TABLE AS ti_old '
						   'FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._digest_trigger(%L)', t, relname);
			EXECUTE format('CREATE TRIGGER tenant_iso_digest_trunc BEFORE TRUNCATE ON %s '
						   'FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._digest_trigger(%L)', t, relname);
		ELSE
			EXECUTE format('DROP TRIGGER IF EXISTS tenant_iso_digest_ins ON %s', t);
			EXECUTE format('DROP TRIGGER IF EXISTS tenant_iso_digest_upd ON %s', t);
			EXECUTE format('DROP TRIGGER IF EXISTS tenant_iso_digest_del ON %s', t);
			EXECUTE format('DROP TRIGGER IF EXISTS tenant_iso_digest_trunc ON %s', t);
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._digest_triggers(regclass, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._digest_triggers(regclass, text, boolean) IS
	'Internal: create or drop the digest triggers on a table and its partitions';

CREATE FUNCTION tenant_iso.track(rel regclass) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c pg_class%ROWTYPE;
	name text;
BEGIN
	SELECT * INTO c FROM pg_class WHERE oid = rel;
	IF NOT FOUND OR c.relkind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '% is not a table', rel USING ERRCODE = 'wrong_object_type';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = rel AND indisprimary) THEN
		RAISE EXCEPTION 'table % has no primary key', rel
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Digests locate rows by primary key; add one.';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_iso.tracked t WHERE t.rel = track.rel) THEN
		-- partitions added since get their triggers
		PERFORM tenant_iso._digest_triggers(rel, (SELECT t.relname FROM tenant_iso.tracked t WHERE t.rel = track.rel), true);
		RETURN;
	END IF;
	name := format('%I.%I', (SELECT nspname FROM pg_namespace WHERE oid = c.relnamespace), c.relname);
	INSERT INTO tenant_iso.tracked (rel, relname) VALUES (rel, name);
	PERFORM tenant_iso._digest_triggers(rel, name, true);
	PERFORM tenant_iso._rebuild_digests(rel);
END
$$;
COMMENT ON FUNCTION tenant_iso.track(regclass) IS
	'Maintain per-tenant digests of a table (it needs a primary key) from now on, starting from its current rows';

CREATE FUNCTION tenant_iso.untrack(rel regclass) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	name text;
BEGIN
	SELECT t.relname INTO name FROM tenant_iso.tracked t WHERE t.rel = untrack.rel;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	PERFORM tenant_iso._digest_triggers(rel, name, false);
	DELETE FROM tenant_iso.digests d WHERE d.relname = name;
	DELETE FROM tenant_iso.tracked t WHERE t.rel = untrack.rel;
END
$$;
COMMENT ON FUNCTION tenant_iso.untrack(regclass) IS
	'Stop maintaining a table''s digests and drop them';

CREATE FUNCTION tenant_iso.verify(rel regclass DEFAULT NULL, tenant_id text DEFAULT NULL)
	RETURNS TABLE (rel regclass, tenant_id text, rows bigint, ok boolean, expected text, actual text)
	AS 'MODULE_PATHNAME', 'ti_verify'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.verify(regclass, text) IS
	'Recompute the digests of tracked tables from their rows and compare them with the stored digests, in one snapshot; works on a hot standby';

CREATE FUNCTION tenant_iso.compact_digests() RETURNS bigint
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH d AS (DELETE FROM tenant_iso.digests RETURNING *),
	s AS (SELECT relname, tenant_id, bucket, sum(nrows)::bigint AS n, tenant_iso._lanes_sum(lanes) AS l
			FROM d GROUP BY 1, 2, 3),
	ins AS (INSERT INTO tenant_iso.digests
			SELECT relname, tenant_id, bucket, n, l FROM s
			 WHERE n <> 0 OR l <> decode(repeat('00', 64), 'hex')
			RETURNING 1)
	SELECT (SELECT count(*) FROM d) - (SELECT count(*) FROM ins)
$$;
COMMENT ON FUNCTION tenant_iso.compact_digests() IS
	'Fold the appended digest deltas into one row per (table, tenant, bucket); returns the number of rows removed';

CREATE FUNCTION tenant_iso._bucket_digests(relname text, tenants text[], nbuckets int)
	RETURNS TABLE (tenant_id text, bucket int, rows bigint, fingerprint text)
	AS 'MODULE_PATHNAME', 'ti_bucket_digests'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._bucket_digests(text, text[], int) IS
	'Internal (called by a peer): live digest fingerprints of a table per (tenant, bucket), for some tenants or all (NULL)';
CREATE FUNCTION tenant_iso._bucket_rows(relname text, tenants text[], nbuckets int, buckets int[])
	RETURNS TABLE (tenant_id text, bucket int, leaf oid, tid tid, rowhash bytea)
	AS 'MODULE_PATHNAME', 'ti_bucket_rows'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._bucket_rows(text, text[], int, int[]) IS
	'Internal (called by a peer): the rows of some (tenants[i], buckets[i]) buckets with their row hashes';
CREATE FUNCTION tenant_iso._peer_bytes() RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_peer_bytes'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tenant_iso._peer_bytes() IS
	'Internal: bytes received from the peer by the last diff_peer() or repair_from_peer() of this session';

CREATE FUNCTION tenant_iso.diff_peer(rel regclass, peer text, tenant_id text DEFAULT NULL)
	RETURNS TABLE (tenant_id text, key text, status text)
	AS 'MODULE_PATHNAME', 'ti_diff_peer'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.diff_peer(regclass, text, text) IS
	'Rows that differ between this node and a peer (libpq conninfo): missing_here, missing_on_peer or differs';

CREATE FUNCTION tenant_iso.repair_from_peer(rel regclass, peer text, tenant_id text DEFAULT NULL,
											dry_run boolean DEFAULT true)
	RETURNS TABLE (tenant_id text, key text, action text)
	AS 'MODULE_PATHNAME', 'ti_repair_from_peer'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.repair_from_peer(regclass, text, text, boolean) IS
	'Make the local rows equal to the peer''s for every difference diff_peer() finds, in one transaction (dry_run => true only reports)';

REVOKE ALL ON FUNCTION tenant_iso._lanes_sum_step(bytea, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._digest_trigger() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._rebuild_digests(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.track(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.untrack(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.verify(regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.compact_digests() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._bucket_digests(text, text[], int) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._bucket_rows(text, text[], int, int[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.diff_peer(regclass, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso.repair_from_peer(regclass, text, text, boolean) FROM PUBLIC;

/* A dropped table leaves the registries, and its digests go with it. */
CREATE FUNCTION tenant_iso._on_drop() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	dropped oid[];
BEGIN
	SELECT array_agg(objid) INTO dropped FROM pg_event_trigger_dropped_objects()
	 WHERE classid = 'pg_class'::regclass AND objsubid = 0;
	IF dropped IS NULL THEN
		RETURN;
	END IF;
	DELETE FROM tenant_iso.protected p WHERE p.rel::oid = ANY (dropped);
	DELETE FROM tenant_iso.digests d
	 WHERE d.relname IN (SELECT t.relname FROM tenant_iso.tracked t WHERE t.rel::oid = ANY (dropped));
	DELETE FROM tenant_iso.tracked t WHERE t.rel::oid = ANY (dropped);
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._on_drop() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._on_drop() IS
	'Internal: event trigger that removes dropped tables from the registries';
CREATE EVENT TRIGGER tenant_iso_forget_dropped ON sql_drop
	EXECUTE FUNCTION tenant_iso._on_drop();

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
			UNION ALL SELECT * FROM tenant_iso._v_integrity_posture()) f
	 ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low', 'info'], f.severity),
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
