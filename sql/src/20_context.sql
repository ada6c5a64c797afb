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
REVOKE ALL ON FUNCTION tenant_iso.issue_token(text, interval) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.issue_token(text, interval) IS
	'Issue a signed token for one tenant, bound to this cluster and database (or tenant_iso.token_audience), valid for ttl (at most tenant_iso.token_max_ttl)';

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
REVOKE ALL ON FUNCTION tenant_iso.master_key_loadable() FROM PUBLIC;

CREATE FUNCTION tenant_iso._caller() RETURNS regrole
	AS 'MODULE_PATHNAME', 'ti_caller'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso._caller() IS
	'Internal: the role that called the current SECURITY DEFINER function (the outer role)';
REVOKE ALL ON FUNCTION tenant_iso._caller() FROM PUBLIC;
