-- 80_keys: part of tenant_iso--0.1.0--0.2.0.sql (issue 11 §4)
--
-- Key work that one tenant cannot stall.

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
 * Key caches are per process: a parallel worker that opens a value loads
 * the master key (master_key_command, a KMS call) and unwraps the data key
 * again, once per worker per query.  PARALLEL RESTRICTED keeps the opening
 * in the leader, whose cache is warm.
 */
ALTER FUNCTION tenant_iso.decrypt(bytea, text) PARALLEL RESTRICTED;
ALTER FUNCTION tenant_iso.decrypt_text(bytea, text) PARALLEL RESTRICTED;

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
