/*
 * Replication integrity: per-tenant additive digests, verification,
 * divergence located against a peer and repaired from it.
 *
 * Digest format 2: keyed (per-tenant key derived from the master key) and
 * canonical (no session setting, no node-local OID).  Tables tracked under
 * 0.1.0 keep format 1 until rebuild_digests() moves them on; tables tracked
 * from now on start in format 2.  ALTER TABLE that changes what rows encode
 * rebuilds automatically, and tracked records when and why.  Format 2 needs
 * the master key: without it, writes stay possible, and the table's digests
 * are marked stale (stale_since) until rebuild_digests().
 */
CREATE TABLE tenant_iso.tracked (
	rel regclass PRIMARY KEY,
	relname text NOT NULL UNIQUE,
	tracked_at timestamptz NOT NULL DEFAULT now(),
	format smallint NOT NULL DEFAULT 2 CHECK (format IN (1, 2)),
	rebuilt_at timestamptz,
	rebuilt_reason text,
	stale_since timestamptz
);
COMMENT ON TABLE tenant_iso.tracked IS
	'Tables whose per-tenant digests are maintained; relname (schema-qualified) is the key digests use on every node';
COMMENT ON COLUMN tenant_iso.tracked.format IS
	'Digest format: 1 = 0.1.0 (unkeyed BLAKE2b), 2 = keyed BLAKE2b over the canonical encoding';
COMMENT ON COLUMN tenant_iso.tracked.rebuilt_at IS
	'When the digests were last rebuilt from the rows (by rebuild_digests() or after ALTER TABLE)';
COMMENT ON COLUMN tenant_iso.tracked.rebuilt_reason IS
	'Why they were rebuilt: rebuild_digests(), or the ALTER TABLE that changed the row encoding';
COMMENT ON COLUMN tenant_iso.tracked.stale_since IS
	'Set when a write went untracked because the master key was not available; rebuild_digests() clears it';
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
-- compact_digests() deletes: with a FOR ALL TABLES publication, a table
-- without a replica identity cannot publish deletes.
ALTER TABLE tenant_iso.digests REPLICA IDENTITY FULL;
ALTER TABLE tenant_iso.verify_runs REPLICA IDENTITY FULL;

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
REVOKE ALL ON FUNCTION tenant_iso._lanes_sum(bytea) FROM PUBLIC;

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

/*
 * Digest triggers: four statement triggers, and the row trigger tenant_iso_digest_row:
 * created disabled, and enabled ALWAYS on a logical subscriber, it counts
 * the changes of the apply worker (which fires no statement trigger; the
 * row trigger does nothing in any other process).
 */
CREATE FUNCTION tenant_iso._digest_triggers(rel regclass, relname text, create_them boolean) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t regclass;
	kind "char";
BEGIN
	FOR t IN SELECT rel UNION SELECT * FROM tenant_iso._descendants(rel) LOOP
		kind := (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) t);
		IF kind NOT IN ('r', 'p') THEN
			CONTINUE;
		END IF;
		IF create_them THEN
			IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) t
							  AND g.tgname OPERATOR(pg_catalog.=) 'tenant_iso_digest_ins') THEN
				EXECUTE pg_catalog.format('CREATE TRIGGER tenant_iso_digest_ins AFTER INSERT ON %s REFERENCING NEW TABLE AS ti_new '
							   'FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._digest_trigger(%L)', t, relname);
				EXECUTE pg_catalog.format('CREATE TRIGGER tenant_iso_digest_upd AFTER UPDATE ON %s REFERENCING OLD TABLE AS ti_old NEW TABLE AS ti_new '
							   'FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._digest_trigger(%L)', t, relname);
				EXECUTE pg_catalog.format('CREATE TRIGGER tenant_iso_digest_del AFTER DELETE ON %s REFERENCING OLD TABLE AS ti_old '
							   'FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._digest_trigger(%L)', t, relname);
				EXECUTE pg_catalog.format('CREATE TRIGGER tenant_iso_digest_trunc BEFORE TRUNCATE ON %s '
							   'FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._digest_trigger(%L)', t, relname);
			END IF;
			IF kind OPERATOR(pg_catalog.=) 'r' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
					WHERE g.tgrelid OPERATOR(pg_catalog.=) t AND g.tgname OPERATOR(pg_catalog.=) 'tenant_iso_digest_row') THEN
				EXECUTE pg_catalog.format('CREATE TRIGGER tenant_iso_digest_row AFTER INSERT OR UPDATE OR DELETE ON %s '
							   'FOR EACH ROW EXECUTE FUNCTION tenant_iso._digest_trigger(%L)', t, relname);
				EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER tenant_iso_digest_row', t);
			END IF;
		ELSE
			EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS tenant_iso_digest_ins ON %s', t);
			EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS tenant_iso_digest_upd ON %s', t);
			EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS tenant_iso_digest_del ON %s', t);
			EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS tenant_iso_digest_trunc ON %s', t);
			EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS tenant_iso_digest_row ON %s', t);
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._digest_triggers(regclass, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._digest_triggers(regclass, text, boolean) IS
	'Internal: create or drop the digest triggers on a table and its partitions (statement triggers, and a disabled row trigger for logical subscribers)';

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
REVOKE ALL ON FUNCTION tenant_iso._peer_bytes() FROM PUBLIC;

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
