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
