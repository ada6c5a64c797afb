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
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso.decrypt(bytea, text) IS
	'Open a value sealed by encrypt() for the current tenant and the same context';
CREATE FUNCTION tenant_iso.decrypt_text(data bytea, context text DEFAULT '') RETURNS text
	AS 'MODULE_PATHNAME', 'ti_decrypt_text'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
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
	-- the tenant's row history goes too: its old images are its data
	PERFORM tenant_iso._purge_history(NULL, shred_tenant.tenant_id, true);
	RETURN n;
END
$$;
COMMENT ON FUNCTION tenant_iso.shred_tenant(text) IS
	'Destroy every data key of a tenant, irreversibly (its ciphertexts can never be opened again), and erase its row history';

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
 * Key work that one tenant cannot stall.  decrypt() and decrypt_text() are
 * PARALLEL RESTRICTED: key caches are per process, and a parallel worker
 * that opens a value would load the master key (master_key_command, a KMS
 * call) and unwrap the data key again, once per worker per query.
 */

/*
 * reencrypt() skips the values that do not open instead of stopping, and
 * reports them: a WARNING with the count, and this list (the first 1000) of
 * the session's last run.  Values are never listed, only where they are.
 */
CREATE FUNCTION tenant_iso.reencrypt_failures()
	RETURNS TABLE (rel regclass, row_ctid tid, tenant_id text, reason text)
	AS 'MODULE_PATHNAME', 'ti_reencrypt_failures'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso.reencrypt_failures() IS
	'The values the last reencrypt() of this session skipped because they do not open (the first 1000): table, ctid and tenant, never the value';

/*
 * Row binding: the three-argument forms put row_id into the associated
 * data, so a ciphertext copied into another row (another row_id) does not
 * open (39000).  Values sealed by the two-argument forms are not bound to a
 * row, as before, and open only without a row_id.
 */
CREATE FUNCTION tenant_iso.encrypt(data bytea, context text, row_id text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_encrypt'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.encrypt(bytea, text, text) IS
	'Seal a value for the current tenant, a context and one row (row_id, bound as associated data), under the tenant''s active key';
CREATE FUNCTION tenant_iso.encrypt(data text, context text, row_id text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_encrypt'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso.encrypt(text, text, text) IS
	'Seal a text value for the current tenant, a context and one row (row_id, bound as associated data), under the tenant''s active key';
CREATE FUNCTION tenant_iso.decrypt(data bytea, context text, row_id text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ti_decrypt'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso.decrypt(bytea, text, text) IS
	'Open a value sealed by encrypt(data, context, row_id) for the current tenant, the same context and the same row_id';
CREATE FUNCTION tenant_iso.decrypt_text(data bytea, context text, row_id text) RETURNS text
	AS 'MODULE_PATHNAME', 'ti_decrypt_text'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso.decrypt_text(bytea, text, text) IS
	'Open a text value sealed by encrypt(data, context, row_id) for the current tenant, the same context and the same row_id';

/*
 * This backend's data-key cache: LRU, bounded, filled by index lookups.
 * Counters only (no key material), for tests and diagnosis.
 */
CREATE FUNCTION tenant_iso._key_cache_stats(
		OUT entries int, OUT capacity int, OUT hits bigint, OUT misses bigint,
		OUT evictions bigint, OUT rows_read bigint, OUT pool_address text, OUT pool_dontdump boolean)
	AS 'MODULE_PATHNAME', 'ti_key_cache_stats'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._key_cache_stats() IS
	'Internal: this backend''s data-key cache (entries, capacity, hits, misses, LRU evictions, data_keys rows read on misses, the address of its MADV_DONTDUMP pool)';
REVOKE ALL ON FUNCTION tenant_iso._key_cache_stats() FROM PUBLIC;
