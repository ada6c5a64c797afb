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

CREATE FUNCTION tenant_iso._needs_reencrypt(tenant_id text, data bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ti_needs_reencrypt'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso._needs_reencrypt(text, bytea) IS
	'Internal: true when a ciphertext is under an older, still usable key version of its tenant';
REVOKE ALL ON FUNCTION tenant_iso._needs_reencrypt(text, bytea) FROM PUBLIC;

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

CREATE FUNCTION tenant_iso._bucket_digests(relname text, tenant_id text, nbuckets int)
	RETURNS TABLE (tenant_id text, bucket int, rows bigint, fingerprint text)
	AS 'MODULE_PATHNAME', 'ti_bucket_digests'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._bucket_digests(text, text, int) IS
	'Internal (called by a peer): live digests of a table per (tenant, bucket)';
CREATE FUNCTION tenant_iso._bucket_rows(relname text, tenant_id text, nbuckets int, buckets int[])
	RETURNS TABLE (tenant_id text, bucket int, leaf oid, tid tid, rowhash bytea)
	AS 'MODULE_PATHNAME', 'ti_bucket_rows'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._bucket_rows(text, text, int, int[]) IS
	'Internal (called by a peer): the rows of some buckets with their row hashes';
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
REVOKE ALL ON FUNCTION tenant_iso._bucket_digests(text, text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._bucket_rows(text, text, int, int[]) FROM PUBLIC;
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
