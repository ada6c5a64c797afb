-- 90_digests: part of tenant_iso--0.1.0--0.2.0.sql (issue 11, part 3)
--
-- Digest format 2: keyed (per-tenant key derived from the master key) and
-- canonical (no session setting, no node-local OID).  Tables tracked under
-- 0.1.0 keep format 1 until rebuild_digests() moves them on; tables tracked
-- from now on start in format 2.  ALTER TABLE that changes what rows encode
-- to rebuilds automatically, and tracked records when and why.

ALTER TABLE tenant_iso.tracked ADD COLUMN format smallint NOT NULL DEFAULT 1;
ALTER TABLE tenant_iso.tracked ALTER COLUMN format SET DEFAULT 2;
ALTER TABLE tenant_iso.tracked ADD CONSTRAINT tracked_format_check CHECK (format IN (1, 2));
ALTER TABLE tenant_iso.tracked ADD COLUMN rebuilt_at timestamptz;
ALTER TABLE tenant_iso.tracked ADD COLUMN rebuilt_reason text;
COMMENT ON COLUMN tenant_iso.tracked.format IS
	'Digest format: 1 = 0.1.0 (unkeyed BLAKE2b), 2 = keyed BLAKE2b over the canonical encoding';
COMMENT ON COLUMN tenant_iso.tracked.rebuilt_at IS
	'When the digests were last rebuilt from the rows (by rebuild_digests() or after ALTER TABLE)';
COMMENT ON COLUMN tenant_iso.tracked.rebuilt_reason IS
	'Why they were rebuilt: rebuild_digests(), or the ALTER TABLE that changed the row encoding';

-- compact_digests() deletes: with a FOR ALL TABLES publication, a table
-- without a replica identity cannot publish deletes.
ALTER TABLE tenant_iso.digests REPLICA IDENTITY FULL;
ALTER TABLE tenant_iso.verify_runs REPLICA IDENTITY FULL;

CREATE FUNCTION tenant_iso._rebuild_digests(rel regclass, reason text) RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_rebuild_digests'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_iso._rebuild_digests(regclass, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._rebuild_digests(regclass, text) IS
	'Internal: replace a table''s stored digests with format-2 ones computed from its rows, recording why';

CREATE FUNCTION tenant_iso.rebuild_digests(rel regclass DEFAULT NULL) RETURNS bigint
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t regclass;
	n bigint := 0;
BEGIN
	IF rel IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tenant_iso.tracked k WHERE k.rel OPERATOR(pg_catalog.=) rebuild_digests.rel) THEN
		RAISE EXCEPTION 'table % is not tracked', rel
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Call tenant_iso.track() first.';
	END IF;
	FOR t IN SELECT k.rel FROM tenant_iso.tracked k
			  WHERE rebuild_digests.rel IS NULL OR k.rel OPERATOR(pg_catalog.=) rebuild_digests.rel
			  ORDER BY k.relname LOOP
		n := n OPERATOR(pg_catalog.+) tenant_iso._rebuild_digests(t, 'rebuild_digests()');
	END LOOP;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.rebuild_digests(regclass) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.rebuild_digests(regclass) IS
	'Rebuild the stored digests of one tracked table (or all) from their rows, in the current format (2); returns the number of (tenant, bucket) digests written';

-- Format 2 needs the master key.  Without it, writes stay possible, and the
-- table's digests are marked stale until rebuild_digests().
ALTER TABLE tenant_iso.tracked ADD COLUMN stale_since timestamptz;
COMMENT ON COLUMN tenant_iso.tracked.stale_since IS
	'Set when a write went untracked because the master key was not available; rebuild_digests() clears it';
