/*
 * Tokens (0.2.0), after the other configuration tables: the order of
 * pg_extension.extconfig is the upgrade's.
 * Tokens are bound to their audience (this cluster and database, or
 * tenant_iso.token_audience), carry a key id and an issue time, live at
 * most tenant_iso.token_max_ttl, and can be revoked per tenant.  The C side
 * (src/context.c, src/tokenkeys.c) caches both tables per backend; the
 * _config_changed trigger tells it when they change.  0.1.0 tokens ("ti1.")
 * are no longer accepted.
 */

/*
 * The token key ring.  No row: the implicit first key, kid 1.
 * rotate_token_key() writes the rows; a retired key's tokens are accepted
 * until accept_until; deleting a row refuses its tokens at once.
 */
CREATE TABLE tenant_iso.token_keys (
	kid integer PRIMARY KEY CHECK (kid OPERATOR(pg_catalog.>) 0),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	retired_at timestamptz,
	accept_until timestamptz,
	CHECK ((retired_at IS NULL) OPERATOR(pg_catalog.=) (accept_until IS NULL))
);
COMMENT ON TABLE tenant_iso.token_keys IS
	'Token key ids: the current one (retired_at NULL) signs new tokens; a retired one is accepted until accept_until';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.token_keys', '');

/*
 * Revocations: tokens of a tenant issued before revoked_before are refused.
 * Every tenant gets a row when it is created and whenever its status
 * changes (trigger below), so a token survives neither a suspension nor
 * the deletion and re-creation of its tenant.  Not dumped: a restore
 * re-creates the tenants, and with them a revocation at restore time,
 * which is stricter than any dumped one.
 */
CREATE TABLE tenant_iso.token_revocations (
	tenant_id text PRIMARY KEY REFERENCES tenant_iso.tenants ON UPDATE CASCADE ON DELETE CASCADE,
	revoked_before timestamptz NOT NULL
);
COMMENT ON TABLE tenant_iso.token_revocations IS
	'Per tenant: tokens issued before revoked_before are refused';
REVOKE ALL ON tenant_iso.token_keys, tenant_iso.token_revocations FROM PUBLIC;

CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON tenant_iso.token_keys FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON tenant_iso.token_revocations FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._config_changed();

CREATE FUNCTION tenant_iso._revoke_tokens_before(tenant_id text, issued_before timestamptz) RETURNS void
	LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	INSERT INTO tenant_iso.token_revocations AS r (tenant_id, revoked_before)
		VALUES (_revoke_tokens_before.tenant_id, _revoke_tokens_before.issued_before)
		ON CONFLICT (tenant_id) DO UPDATE
		-- GREATEST is syntax, not a function: it uses the type's default
		-- btree ordering and cannot be shadowed through search_path
		SET revoked_before = GREATEST(r.revoked_before, excluded.revoked_before)
$$;
REVOKE ALL ON FUNCTION tenant_iso._revoke_tokens_before(text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._revoke_tokens_before(text, timestamptz) IS
	'Internal: record that a tenant''s tokens issued before a time are revoked (never moves the time back)';

/*
 * A tenant created, suspended or resumed: every token issued until now is
 * revoked.  Recording it at the resume as well as the suspension also
 * covers a token issued by another session while the suspension was not
 * yet committed.  clock_timestamp(), not now(): a token issued earlier in
 * the same transaction is before it.
 */
CREATE FUNCTION tenant_iso._tenant_tokens_revoked() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_iso._revoke_tokens_before(NEW.tenant_id, pg_catalog.clock_timestamp());
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._tenant_tokens_revoked() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._tenant_tokens_revoked() IS
	'Internal: trigger that revokes a tenant''s earlier tokens when it is created, suspended or resumed';
CREATE TRIGGER tokens_revoked_on_create AFTER INSERT ON tenant_iso.tenants
	FOR EACH ROW EXECUTE FUNCTION tenant_iso._tenant_tokens_revoked();
CREATE TRIGGER tokens_revoked_on_status AFTER UPDATE OF status ON tenant_iso.tenants
	FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
	EXECUTE FUNCTION tenant_iso._tenant_tokens_revoked();

CREATE FUNCTION tenant_iso.revoke_tokens(tenant text, issued_before timestamptz DEFAULT pg_catalog.now())
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF issued_before IS NULL THEN
		RAISE EXCEPTION 'issued_before must not be null' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM tenant_iso._require_tenant(tenant);
	PERFORM tenant_iso._revoke_tokens_before(tenant, issued_before);
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.revoke_tokens(text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.revoke_tokens(text, timestamptz) IS
	'Refuse one tenant''s tokens issued before issued_before (default: the start of this transaction) without suspending it';

CREATE FUNCTION tenant_iso.rotate_token_key(overlap interval DEFAULT NULL) RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ov pg_catalog.interval := coalesce(overlap,
		pg_catalog.current_setting('tenant_iso.token_max_ttl')::pg_catalog.interval);
	t timestamptz := pg_catalog.clock_timestamp();
	new_kid integer;
BEGIN
	IF ov OPERATOR(pg_catalog.<) '0'::pg_catalog.interval THEN
		RAISE EXCEPTION 'overlap must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	LOCK TABLE tenant_iso.token_keys IN EXCLUSIVE MODE;
	-- the implicit first key becomes explicit, so that it can be retired
	INSERT INTO tenant_iso.token_keys (kid, created_at) VALUES (1, '-infinity')
		ON CONFLICT (kid) DO NOTHING;
	UPDATE tenant_iso.token_keys k
	   SET retired_at = t, accept_until = t OPERATOR(pg_catalog.+) ov
	 WHERE k.retired_at IS NULL;
	SELECT pg_catalog.max(k.kid) OPERATOR(pg_catalog.+) 1 INTO new_kid FROM tenant_iso.token_keys k;
	INSERT INTO tenant_iso.token_keys (kid, created_at) VALUES (new_kid, t);
	RETURN new_kid;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.rotate_token_key(interval) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.rotate_token_key(interval) IS
	'Sign new tokens with a new token key id; the previous key''s tokens are accepted for overlap more (default: tenant_iso.token_max_ttl); the master key is unchanged';
