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
REVOKE ALL ON FUNCTION tenant_iso._check_tenant_id(text) FROM PUBLIC;

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
REVOKE ALL ON FUNCTION tenant_iso._config_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._require_tenant(text) FROM PUBLIC;
