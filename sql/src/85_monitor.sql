/*
 * Self-healing integrity: the peers, the integrity monitor's decision
 * rules, and what it records (docs/design/monitor.md).
 *
 * The worker (monitor.c) calls tenant_iso._monitor_check(rel) for each
 * tracked table every tenant_iso.verify_interval; monitor_run() does the
 * same at once.  Everything here runs as a superuser (the worker, or the
 * administrator who calls monitor_run()), with
 * SET search_path = pg_catalog, pg_temp, and names every object of the
 * extension with its schema; the SQL sent to peers is schema-qualified too
 * (and the peer session runs with search_path = pg_catalog, see peer.c).
 * No row value and no key reaches a message, a log line or an event: events
 * carry tenants, counts and keyed hashes of row keys (_key_hash()).
 */
CREATE TABLE tenant_iso.peers (
	name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
	conninfo text NOT NULL,
	role text NOT NULL DEFAULT 'standby' CHECK (role IN ('primary', 'standby', 'subscriber')),
	enabled boolean NOT NULL DEFAULT true,
	priority int NOT NULL DEFAULT 100
);
COMMENT ON TABLE tenant_iso.peers IS
	'Other copies of this database that the integrity monitor compares with and repairs from (no passwords: use a passfile or tenant_iso.peer_password_command)';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.peers', '');
REVOKE ALL ON tenant_iso.peers FROM PUBLIC;

CREATE TABLE tenant_iso.integrity_state (
	relname text NOT NULL,
	tenant_id text NOT NULL,
	peer text NOT NULL,
	state text NOT NULL CHECK (state IN ('ok', 'diverged', 'repaired', 'quarantined', 'peer_unreachable')),
	last_checked timestamptz,
	last_ok timestamptz,
	rows_repaired bigint NOT NULL DEFAULT 0,
	detail text,
	evidence text,
	case_event bigint,
	PRIMARY KEY (relname, tenant_id, peer)
);
COMMENT ON TABLE tenant_iso.integrity_state IS
	'Internal: the integrity monitor''s last finding per (tracked table, tenant, peer); read tenant_iso.integrity_status';
REVOKE ALL ON tenant_iso.integrity_state FROM PUBLIC;

CREATE TABLE tenant_iso.integrity_events (
	event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	relname text,
	tenant_id text,
	peer text,
	kind text NOT NULL CHECK (kind IN ('corrupt', 'diverged', 'repaired', 'quarantined', 'repair_failed',
									   'peer_unreachable', 'peer_back', 'acknowledged', 'standby_corrupt')),
	detail text,
	key_hashes text[],
	ref bigint REFERENCES tenant_iso.integrity_events (event_id),
	note text,
	by_user text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE tenant_iso.integrity_events IS
	'Append-only record of every detection, decision and repair of the integrity monitor; rows are named by keyed hashes of their keys, never by their values';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.integrity_events', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.integrity_events_event_id_seq', '');
REVOKE ALL ON tenant_iso.integrity_events FROM PUBLIC;

CREATE FUNCTION tenant_iso._events_append_only() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'tenant_iso.integrity_events is append-only'
		USING ERRCODE = 'object_not_in_prerequisite_state',
			  HINT = 'Close a quarantined case with tenant_iso.acknowledge(event_id, note).';
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._events_append_only() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._events_append_only() IS
	'Internal: refuses UPDATE, DELETE and TRUNCATE of tenant_iso.integrity_events';
CREATE TRIGGER tenant_iso_append_only BEFORE UPDATE OR DELETE ON tenant_iso.integrity_events
	FOR EACH ROW EXECUTE FUNCTION tenant_iso._events_append_only();
CREATE TRIGGER tenant_iso_append_only_truncate BEFORE TRUNCATE ON tenant_iso.integrity_events
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._events_append_only();

CREATE TABLE tenant_iso.monitor_runs (
	run_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	finished_at timestamptz,
	tables_done int NOT NULL DEFAULT 0,
	last_table text,
	bytes bigint NOT NULL DEFAULT 0,
	events bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE tenant_iso.monitor_runs IS
	'One row per run of the integrity monitor: tables checked, bytes exchanged with the peers, events written; an unfinished run is resumed after a crash';
REVOKE ALL ON tenant_iso.monitor_runs FROM PUBLIC;

CREATE VIEW tenant_iso.integrity_status AS
	SELECT k.rel, s.tenant_id, s.peer, s.state, s.last_checked, s.last_ok, s.rows_repaired, s.detail
	  FROM tenant_iso.integrity_state s
	  JOIN tenant_iso.tracked k ON k.relname OPERATOR(pg_catalog.=) s.relname
	  JOIN tenant_iso.peers p ON p.name OPERATOR(pg_catalog.=) s.peer AND p.enabled;
COMMENT ON VIEW tenant_iso.integrity_status IS
	'The integrity monitor''s finding per tracked table, tenant and enabled peer: ok, diverged, repaired, quarantined or peer_unreachable';
REVOKE ALL ON tenant_iso.integrity_status FROM PUBLIC;

CREATE FUNCTION tenant_iso.add_peer(name text, conninfo text, role text DEFAULT 'standby',
									priority int DEFAULT 100, enabled boolean DEFAULT true)
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF name IS NULL OR conninfo IS NULL OR role IS NULL THEN
		RAISE EXCEPTION 'name, conninfo and role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF role NOT IN ('primary', 'standby', 'subscriber') THEN
		RAISE EXCEPTION 'invalid peer role "%"', role
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A peer is a ''primary'', a ''standby'' (physical) or a ''subscriber'' (logical).';
	END IF;
	IF name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
		RAISE EXCEPTION 'invalid peer name' USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Use up to 63 letters, digits, ".", "_" or "-".';
	END IF;
	IF tenant_iso._conninfo_has_password(conninfo) THEN
		RAISE EXCEPTION 'a peer''s connection string may not hold a password'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a passfile (~/.pgpass of the server''s system user) or tenant_iso.peer_password_command.';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_iso.peers p WHERE p.name OPERATOR(pg_catalog.=) add_peer.name) THEN
		RAISE EXCEPTION 'peer "%" already exists', name USING ERRCODE = 'duplicate_object';
	END IF;
	INSERT INTO tenant_iso.peers (name, conninfo, role, enabled, priority)
	VALUES (add_peer.name, add_peer.conninfo, add_peer.role, add_peer.enabled, add_peer.priority);
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.add_peer(text, text, text, int, boolean) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.add_peer(text, text, text, int, boolean) IS
	'Add a copy for the integrity monitor to compare with: a name, a libpq connection string without a password, its role (primary, standby or subscriber) and priority (lower is preferred as a repair source)';

CREATE FUNCTION tenant_iso.remove_peer(name text) RETURNS boolean
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM tenant_iso.integrity_state s WHERE s.peer OPERATOR(pg_catalog.=) remove_peer.name;
	DELETE FROM tenant_iso.peers p WHERE p.name OPERATOR(pg_catalog.=) remove_peer.name;
	RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.remove_peer(text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.remove_peer(text) IS
	'Remove a peer (its findings go; its events stay); false if there was none';

CREATE FUNCTION tenant_iso._conninfo_has_password(conninfo text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ti_conninfo_has_password'
	LANGUAGE C STRICT STABLE;
REVOKE ALL ON FUNCTION tenant_iso._conninfo_has_password(text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._conninfo_has_password(text) IS
	'Internal: whether a libpq connection string names a password (refused for a malformed one)';

CREATE FUNCTION tenant_iso._stored_digests(relname text, tenants text[])
	RETURNS TABLE (tenant_id text, fingerprint text)
	AS 'MODULE_PATHNAME', 'ti_stored_digests'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION tenant_iso._stored_digests(text, text[]) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._stored_digests(text, text[]) IS
	'Internal (also called by a peer''s monitor): "rows:fingerprint" of the stored digests per tenant, without reading rows';

CREATE FUNCTION tenant_iso._stored_map(relname text) RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(pg_catalog.jsonb_object_agg(d.tenant_id, d.fingerprint), '{}')
	  FROM tenant_iso._stored_digests(relname, NULL) d
$$;
REVOKE ALL ON FUNCTION tenant_iso._stored_map(text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._stored_map(text) IS
	'Internal: _stored_digests() of every tenant as one {tenant: "rows:fingerprint"} map';

CREATE FUNCTION tenant_iso._digests_summary(digests jsonb) RETURNS text
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
		coalesce(pg_catalog.string_agg(e.key OPERATOR(pg_catalog.||) '=' OPERATOR(pg_catalog.||) e.value,
									   ',' ORDER BY e.key COLLATE "C"), ''), 'UTF8')), 'hex')
	  FROM pg_catalog.jsonb_each_text(coalesce(digests, '{}')) e
$$;
REVOKE ALL ON FUNCTION tenant_iso._digests_summary(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._digests_summary(jsonb) IS
	'Internal: the hash _stored_summary() exchanges, of a {tenant: fingerprint} map';

CREATE FUNCTION tenant_iso._stored_summary(relname text) RETURNS text
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT tenant_iso._digests_summary(tenant_iso._stored_map(relname))
$$;
REVOKE ALL ON FUNCTION tenant_iso._stored_summary(text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._stored_summary(text) IS
	'Internal: one hash of a table''s stored digests, all tenants: what two copies in sync exchange';

CREATE FUNCTION tenant_iso._rebuild_tenant_digests(rel regclass, tenant text) RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_rebuild_tenant_digests'
	LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION tenant_iso._rebuild_tenant_digests(regclass, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._rebuild_tenant_digests(regclass, text) IS
	'Internal: rebuild one tenant''s stored digests of a table from its rows (after a checked repair of a copy whose rows were corrupt)';

CREATE FUNCTION tenant_iso._peer_query(peer text, sql text, params text[] DEFAULT NULL)
	RETURNS SETOF text[]
	AS 'MODULE_PATHNAME', 'ti_peer_query'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION tenant_iso._peer_query(text, text, text[]) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._peer_query(text, text, text[]) IS
	'Internal (superuser): one read-only statement of the monitor on a peer';

CREATE FUNCTION tenant_iso._repair_peer(peer text, relname text, source text, tenant text,
										expected text, rebuild boolean)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_repair_peer'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION tenant_iso._repair_peer(text, text, text, text, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._repair_peer(text, text, text, text, text, boolean) IS
	'Internal (superuser): repair one tenant''s rows on a writable peer from source, kept only if the peer then verifies with the expected digest';

CREATE FUNCTION tenant_iso._peer_bytes_total() RETURNS bigint
	AS 'MODULE_PATHNAME', 'ti_peer_bytes_total_fn'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION tenant_iso._peer_bytes_total() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._peer_bytes_total() IS
	'Internal: bytes this session sent to and received from peers';

CREATE FUNCTION tenant_iso._key_hash(tenant text, key text) RETURNS text
	AS 'MODULE_PATHNAME', 'ti_key_hash_fn'
	LANGUAGE C STRICT STABLE;
REVOKE ALL ON FUNCTION tenant_iso._key_hash(text, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._key_hash(text, text) IS
	'Internal: keyed hash of a row''s key, recorded in integrity_events instead of the key';

CREATE FUNCTION tenant_iso._monitor_conninfo() RETURNS text
	AS 'MODULE_PATHNAME', 'ti_monitor_conninfo_fn'
	LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION tenant_iso._monitor_conninfo() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._monitor_conninfo() IS
	'Internal: how peers reach this node (tenant_iso.monitor_conninfo, or its loopback address)';

CREATE FUNCTION tenant_iso._monitor_nice() RETURNS void
	AS 'MODULE_PATHNAME', 'ti_monitor_nice'
	LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION tenant_iso._monitor_nice() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._monitor_nice() IS
	'Internal (called by a peer''s monitor on its connection): this backend runs at low priority (nice 10) from now on';

CREATE FUNCTION tenant_iso._monitor_event(relname text, tenant_id text, peer text, kind text,
										  detail text, key_hashes text[] DEFAULT NULL, ref bigint DEFAULT NULL,
										  note text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	id bigint;
BEGIN
	INSERT INTO tenant_iso.integrity_events (relname, tenant_id, peer, kind, detail, key_hashes, ref, note)
	VALUES (_monitor_event.relname, _monitor_event.tenant_id, _monitor_event.peer, _monitor_event.kind,
			_monitor_event.detail, _monitor_event.key_hashes, _monitor_event.ref, _monitor_event.note)
	RETURNING event_id INTO id;
	IF kind OPERATOR(pg_catalog.=) 'quarantined' THEN
		RAISE WARNING 'tenant_iso: integrity of % for tenant "%" quarantined (event %)', relname, tenant_id, id
			USING DETAIL = detail,
				  HINT = 'Nothing was written. Investigate, then close the case with tenant_iso.acknowledge(' OPERATOR(pg_catalog.||) id OPERATOR(pg_catalog.||) ', note).';
	ELSE
		RAISE LOG 'tenant_iso: integrity event % (%) on % for tenant "%"%: %', id, kind, relname,
			coalesce(tenant_id, ''), CASE WHEN peer IS NULL THEN '' ELSE ' and peer ' OPERATOR(pg_catalog.||) peer END,
			detail;
	END IF;
	RETURN id;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._monitor_event(text, text, text, text, text, text[], bigint, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._monitor_event(text, text, text, text, text, text[], bigint, text) IS
	'Internal: append an integrity event, with a WARNING for a quarantine and a LOG line otherwise';

/* Record one finding; a state change gets a LOG line. */
CREATE FUNCTION tenant_iso._monitor_set(relname text, tenant_id text, peer text, state text, detail text,
										evidence text DEFAULT NULL, repaired bigint DEFAULT 0,
										case_event bigint DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	old text;
BEGIN
	SELECT s.state INTO old FROM tenant_iso.integrity_state s
	 WHERE s.relname OPERATOR(pg_catalog.=) _monitor_set.relname
	   AND s.tenant_id OPERATOR(pg_catalog.=) _monitor_set.tenant_id
	   AND s.peer OPERATOR(pg_catalog.=) _monitor_set.peer;
	INSERT INTO tenant_iso.integrity_state AS s
		(relname, tenant_id, peer, state, last_checked, last_ok, rows_repaired, detail, evidence, case_event)
	VALUES (_monitor_set.relname, _monitor_set.tenant_id, _monitor_set.peer, _monitor_set.state,
			pg_catalog.now(), CASE WHEN _monitor_set.state IN ('ok', 'repaired') THEN pg_catalog.now() END,
			_monitor_set.repaired, _monitor_set.detail, _monitor_set.evidence, _monitor_set.case_event)
	ON CONFLICT ON CONSTRAINT integrity_state_pkey DO UPDATE
	   SET state = EXCLUDED.state, last_checked = EXCLUDED.last_checked,
		   last_ok = coalesce(EXCLUDED.last_ok, s.last_ok),
		   rows_repaired = s.rows_repaired OPERATOR(pg_catalog.+) EXCLUDED.rows_repaired,
		   detail = EXCLUDED.detail, evidence = EXCLUDED.evidence,
		   case_event = coalesce(EXCLUDED.case_event, CASE WHEN EXCLUDED.state OPERATOR(pg_catalog.=) 'quarantined' THEN s.case_event END);
	IF old IS DISTINCT FROM state AND (old IS NOT NULL OR state OPERATOR(pg_catalog.<>) 'ok') THEN
		RAISE LOG 'tenant_iso: integrity of % for tenant "%" against peer %: % -> %', relname, tenant_id, peer,
			coalesce(old, 'new'), state;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._monitor_set(text, text, text, text, text, text, bigint, bigint) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._monitor_set(text, text, text, text, text, text, bigint, bigint) IS
	'Internal: record the integrity monitor''s finding for one (table, tenant, peer)';

/*
 * Repair one tenant's rows of a table here from a peer, in a subtransaction
 * of the caller's: at most max_rows rows; kept only if verify() then passes
 * here for the tenant with the expected stored digest.  keep_digests: the rows here were
 * corrupt and the stored digests are right, so the repair runs under
 * session_replication_role = replica (the digest triggers do not fire).
 * Returns the keyed hashes of the repaired rows' keys; raises on anything
 * else (the caller quarantines).
 */
CREATE FUNCTION tenant_iso._repair_here(rel regclass, relname text, source text, tenant text,
										expected text, keep_digests boolean, max_rows bigint)
	RETURNS text[]
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
	keys text[];
	ok boolean;
	stored text;
BEGIN
	SELECT pg_catalog.count(*) INTO n FROM tenant_iso.diff_peer(rel, source, tenant) d;
	IF n OPERATOR(pg_catalog.>) max_rows THEN
		RAISE EXCEPTION '% rows differ, more than tenant_iso.max_auto_repair_rows (%)', n, max_rows
			USING ERRCODE = 'program_limit_exceeded';
	END IF;
	IF keep_digests THEN
		PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
	END IF;
	SELECT pg_catalog.array_agg(tenant_iso._key_hash(tenant, k.key) ORDER BY k.key) INTO keys
	  FROM tenant_iso.repair_from_peer(rel, source, tenant, false) k;
	PERFORM pg_catalog.set_config('session_replication_role', 'origin', true);
	SELECT v.ok, v.expected INTO ok, stored FROM tenant_iso.verify(rel, tenant) v;
	IF NOT FOUND THEN
		ok := true;
		stored := NULL;
	END IF;
	IF NOT ok OR stored IS DISTINCT FROM expected THEN
		RAISE EXCEPTION 'the repaired rows do not verify' USING ERRCODE = 'data_corrupted';
	END IF;
	/*
	 * The source was checked before (its verify() passed, its stored digest
	 * is expected), and every row fetched was re-hashed against what it
	 * advertised.  It is not asked again now: a physical standby of this
	 * node may already have replayed this uncommitted repair's page images,
	 * corrupt rows included.
	 */
	RETURN coalesce(keys, '{}');
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._repair_here(regclass, text, text, text, text, boolean, bigint) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._repair_here(regclass, text, text, text, text, boolean, bigint) IS
	'Internal: the monitor''s checked repair of one tenant''s rows here from a peer';

/*
 * Repair one tenant's rows on a subscriber from this node (source: how it
 * reaches us), through its own connection: at most max_rows rows, kept
 * there only if it then verifies with our stored digest (_repair_peer).
 * rebuild: its rows, not its digests, were corrupt.  Records the event and
 * the finding; returns the number of events written.
 */
CREATE FUNCTION tenant_iso._repair_subscriber(rel regclass, relname text, tenant text, peer text, ci text,
											  source text, expected text, rebuild boolean, max_rows bigint,
											  evidence text, what text)
	RETURNS bigint
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	keys text[];
	n bigint;
	id bigint;
BEGIN
	SELECT pg_catalog.array_agg(tenant_iso._key_hash(tenant, x[1]) ORDER BY x[1]) INTO keys
	  FROM tenant_iso._peer_query(ci, 'SELECT d.key FROM tenant_iso.diff_peer($1::pg_catalog.regclass, $2, $3) d',
								  ARRAY[relname, source, tenant]) x;
	n := coalesce(pg_catalog.cardinality(keys), 0);
	IF n OPERATOR(pg_catalog.>) max_rows THEN
		RAISE EXCEPTION '% rows differ, more than tenant_iso.max_auto_repair_rows (%)', n, max_rows;
	END IF;
	n := tenant_iso._repair_peer(ci, relname, source, tenant, expected, rebuild);
	PERFORM tenant_iso._monitor_event(relname, tenant, peer, 'repaired',
		n OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) what OPERATOR(pg_catalog.||) ' repaired from this copy, then verified there', keys);
	PERFORM tenant_iso._monitor_set(relname, tenant, peer, 'repaired', n OPERATOR(pg_catalog.||) ' row(s) repaired on the peer', NULL, n);
	RETURN 1;
EXCEPTION WHEN OTHERS THEN
	id := tenant_iso._monitor_event(relname, tenant, peer, 'quarantined',
		'the ' OPERATOR(pg_catalog.||) what OPERATOR(pg_catalog.||) ' were not repaired: ' OPERATOR(pg_catalog.||) SQLERRM);
	PERFORM tenant_iso._monitor_set(relname, tenant, peer, 'quarantined', SQLERRM, evidence, 0, id);
	RETURN 1;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._repair_subscriber(regclass, text, text, text, text, text, text, boolean, bigint, text, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._repair_subscriber(regclass, text, text, text, text, text, text, boolean, bigint, text, text) IS
	'Internal: the monitor''s checked repair of one tenant''s rows on a subscriber, through its own connection';

/*
 * The decision rules for one tracked table (docs/design/monitor.md).
 * Returns the number of events written.
 */
CREATE FUNCTION tenant_iso._monitor_check(rel regclass) RETURNS bigint
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rname text;
	max_rows bigint := pg_catalog.current_setting('tenant_iso.max_auto_repair_rows')::bigint;
	self_ci text;
	bad text[];
	loc jsonb;
	lsum text;
	p record;
	q text[];
	psum text;
	pbad text;
	m jsonb;
	reach jsonb := '{}';		-- peer name -> {map, bad, role, ci}
	order_ text[] := '{}';		-- reachable peers, by priority
	unreach jsonb := '{}';		-- peer name -> error
	prev jsonb;
	universe text[];
	t text;
	pn text;
	l text;
	fq text;
	ev text;
	pv jsonb;
	quarantined boolean;
	src text;
	keys text[];
	nev bigint := 0;
	id bigint;
	ncopies int;
	votes jsonb;
	maj text;
	odd text;
	ok_t text[] := '{}';
	ok_p text[] := '{}';
	loc0 jsonb;
	loc2 jsonb;
	busy jsonb;					-- tenant -> true: written during this run's reads
	differing text[];
	stable boolean;
	n bigint;
BEGIN
	SELECT k.relname INTO rname FROM tenant_iso.tracked k WHERE k.rel OPERATOR(pg_catalog.=) _monitor_check.rel;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;

	-- 1. this copy against its own stored digests
	IF NOT pg_catalog.pg_is_in_recovery() THEN
		-- validate() reads the latest verify() run of each table only
		DELETE FROM tenant_iso.verify_runs v WHERE v.relname OPERATOR(pg_catalog.=) rname
		   AND v.verified_at OPERATOR(pg_catalog.<) pg_catalog.now();
		-- the stored digests before verify(): a tenant whose digests change
		-- between here and the end of the peers' reads is being written
		loc0 := tenant_iso._stored_map(rname);
	END IF;
	SELECT coalesce(pg_catalog.array_agg(v.tenant_id ORDER BY v.tenant_id), '{}') INTO bad
	  FROM tenant_iso.verify(rel) v WHERE NOT v.ok;
	IF pg_catalog.pg_is_in_recovery() THEN
		-- a hot standby cannot be written: it reports (runbook: re-sync it)
		FOREACH t IN ARRAY bad LOOP
			RAISE WARNING 'tenant_iso: this standby''s copy of % is corrupt for tenant "%"', rname, t
				USING DETAIL = 'Its rows do not match the stored digests, which came from the primary.',
					  HINT = 'A physical standby cannot be repaired in place: re-sync it from the primary with pg_rewind or a new base backup (docs/design/monitor.md).';
		END LOOP;
		RETURN 0;
	END IF;
	-- what the peers' summaries are compared with: the digests before verify()
	lsum := tenant_iso._digests_summary(loc0);
	self_ci := tenant_iso._monitor_conninfo();

	-- 2. every enabled peer: one hash of its stored digests, and the tenants its verify() fails
	FOR p IN SELECT * FROM tenant_iso.peers pe WHERE pe.enabled ORDER BY pe.priority, pe.name LOOP
		BEGIN
			SELECT x[1], x[2] INTO psum, pbad FROM tenant_iso._peer_query(p.conninfo,
				'SELECT tenant_iso._stored_summary($1), (SELECT pg_catalog.array_agg(v.tenant_id ORDER BY v.tenant_id)::pg_catalog.text '
				'FROM tenant_iso.verify($1::pg_catalog.regclass) v WHERE NOT v.ok)', ARRAY[rname]) x;
			IF psum IS DISTINCT FROM lsum THEN
				-- 3. they differ: the per-tenant digests (still no rows)
				SELECT coalesce(pg_catalog.jsonb_object_agg(x[1], x[2]), '{}') INTO m
				  FROM tenant_iso._peer_query(p.conninfo,
					'SELECT d.tenant_id, d.fingerprint FROM tenant_iso._stored_digests($1, NULL) d', ARRAY[rname]) x;
			ELSE
				m := loc0;
			END IF;
			reach := reach OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(p.name, pg_catalog.jsonb_build_object(
				'map', m, 'bad', pg_catalog.to_jsonb(coalesce(pbad::text[], '{}')), 'role', p.role, 'ci', p.conninfo));
			order_ := order_ OPERATOR(pg_catalog.||) p.name;
		EXCEPTION WHEN OTHERS THEN
			unreach := unreach OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(p.name, SQLERRM);
		END;
	END LOOP;

	/*
	 * Busy tenants: written while the copies were read (their stored
	 * digests here before verify() and after the peers' reads differ).
	 * What a peer said about them may be replication lag, not a divergence:
	 * they are compared on a later run, when they are quiet for one.  A
	 * tenant quiet since before verify() began cannot differ by lag unless a
	 * peer lags by more than verify() takes (then the copies differ once and
	 * are confirmed on the next run, below).
	 */
	loc2 := tenant_iso._stored_map(rname);
	SELECT coalesce(pg_catalog.jsonb_object_agg(u.t, true), '{}') INTO busy FROM (
		SELECT pg_catalog.jsonb_object_keys(loc0) AS t
		UNION SELECT pg_catalog.jsonb_object_keys(loc2)) u
	 WHERE (loc0 OPERATOR(pg_catalog.->>) u.t) IS DISTINCT FROM (loc2 OPERATOR(pg_catalog.->>) u.t);
	-- the decisions read the latest (the same as before verify() for a quiet tenant)
	loc := loc2;

	SELECT coalesce(pg_catalog.jsonb_object_agg(s.tenant_id OPERATOR(pg_catalog.||) pg_catalog.chr(31) OPERATOR(pg_catalog.||) s.peer,
			pg_catalog.jsonb_build_object('state', s.state, 'ev', s.evidence, 'case', s.case_event)), '{}')
	  INTO prev FROM tenant_iso.integrity_state s WHERE s.relname OPERATOR(pg_catalog.=) rname;

	SELECT coalesce(pg_catalog.array_agg(DISTINCT u.t ORDER BY u.t), '{}') INTO universe FROM (
		SELECT pg_catalog.jsonb_object_keys(loc) AS t
		UNION ALL SELECT pg_catalog.unnest(bad)
		UNION ALL SELECT pg_catalog.jsonb_object_keys(r.value OPERATOR(pg_catalog.->) 'map') FROM pg_catalog.jsonb_each(reach) r
		UNION ALL SELECT pg_catalog.jsonb_array_elements_text(r.value OPERATOR(pg_catalog.->) 'bad') FROM pg_catalog.jsonb_each(reach) r) u;

	-- unreachable peers: no decision, no false alarm
	FOR pn IN SELECT pg_catalog.jsonb_object_keys(unreach) LOOP
		IF NOT EXISTS (SELECT 1 FROM tenant_iso.integrity_state s WHERE s.relname OPERATOR(pg_catalog.=) rname
						  AND s.peer OPERATOR(pg_catalog.=) pn AND s.state OPERATOR(pg_catalog.=) 'peer_unreachable') THEN
			PERFORM tenant_iso._monitor_event(rname, NULL, pn, 'peer_unreachable', unreach OPERATOR(pg_catalog.->>) pn);
			nev := nev OPERATOR(pg_catalog.+) 1;
		END IF;
		INSERT INTO tenant_iso.integrity_state AS s (relname, tenant_id, peer, state, last_checked, detail)
		SELECT rname, u, pn, 'peer_unreachable', pg_catalog.now(), unreach OPERATOR(pg_catalog.->>) pn
		  FROM pg_catalog.unnest(universe) u
		ON CONFLICT ON CONSTRAINT integrity_state_pkey DO UPDATE
		   SET state = 'peer_unreachable', last_checked = EXCLUDED.last_checked, detail = EXCLUDED.detail, evidence = NULL
		 WHERE s.state OPERATOR(pg_catalog.<>) 'quarantined';
	END LOOP;
	FOREACH pn IN ARRAY order_ LOOP
		IF EXISTS (SELECT 1 FROM tenant_iso.integrity_state s WHERE s.relname OPERATOR(pg_catalog.=) rname
					  AND s.peer OPERATOR(pg_catalog.=) pn AND s.state OPERATOR(pg_catalog.=) 'peer_unreachable') THEN
			PERFORM tenant_iso._monitor_event(rname, NULL, pn, 'peer_back', 'the peer answers again');
			nev := nev OPERATOR(pg_catalog.+) 1;
		END IF;
	END LOOP;

	-- 4. decide, tenant by tenant
	FOREACH t IN ARRAY universe LOOP
		IF busy OPERATOR(pg_catalog.?) t AND NOT t OPERATOR(pg_catalog.=) ANY (bad) THEN
			-- being written: its state stays as it is until a quiet run
			CONTINUE;
		END IF;
		l := loc OPERATOR(pg_catalog.->>) t;
		-- what every copy says about t, for "the same in two runs"
		ev := pg_catalog.md5(coalesce(l, '-') OPERATOR(pg_catalog.||) CASE WHEN t OPERATOR(pg_catalog.=) ANY (bad) THEN '!' ELSE '' END
			  OPERATOR(pg_catalog.||) coalesce((SELECT pg_catalog.string_agg(o OPERATOR(pg_catalog.||) '=' OPERATOR(pg_catalog.||)
						coalesce(reach OPERATOR(pg_catalog.->) o OPERATOR(pg_catalog.->) 'map' OPERATOR(pg_catalog.->>) t, '-')
						OPERATOR(pg_catalog.||) CASE WHEN (reach OPERATOR(pg_catalog.->) o OPERATOR(pg_catalog.->) 'bad') OPERATOR(pg_catalog.?) t THEN '!' ELSE '' END, ',' ORDER BY o)
					FROM pg_catalog.unnest(order_) o), ''));
		quarantined := false;
		stable := false;
		FOREACH pn IN ARRAY order_ LOOP
			pv := prev OPERATOR(pg_catalog.->) (t OPERATOR(pg_catalog.||) pg_catalog.chr(31) OPERATOR(pg_catalog.||) pn);
			IF pv OPERATOR(pg_catalog.->>) 'state' OPERATOR(pg_catalog.=) 'quarantined' THEN
				quarantined := true;
			END IF;
			IF pv OPERATOR(pg_catalog.->>) 'ev' OPERATOR(pg_catalog.=) ev THEN
				stable := true;
			END IF;
		END LOOP;
		IF quarantined THEN
			-- a human decides; the finding is kept as it is
			UPDATE tenant_iso.integrity_state s SET last_checked = pg_catalog.now()
			 WHERE s.relname OPERATOR(pg_catalog.=) rname AND s.tenant_id OPERATOR(pg_catalog.=) t
			   AND s.peer OPERATOR(pg_catalog.=) ANY (order_);
			CONTINUE;
		END IF;

		IF t OPERATOR(pg_catalog.=) ANY (bad) THEN
			-- this copy is corrupt for t: a healthy peer has our stored digest and verifies
			src := NULL;
			FOREACH pn IN ARRAY order_ LOOP
				IF (reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->) 'map' OPERATOR(pg_catalog.->>) t) IS NOT DISTINCT FROM l
				   AND NOT (reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->) 'bad') OPERATOR(pg_catalog.?) t THEN
					src := pn;
					EXIT;
				END IF;
			END LOOP;
			IF NOT stable THEN
				PERFORM tenant_iso._monitor_event(rname, t, src, 'corrupt',
					'this copy''s rows do not match its stored digests');
				nev := nev OPERATOR(pg_catalog.+) 1;
			END IF;
			IF src IS NULL THEN
				IF stable OR pg_catalog.cardinality(order_) OPERATOR(pg_catalog.=) 0 THEN
					id := tenant_iso._monitor_event(rname, t, NULL, 'quarantined',
						'this copy is corrupt and no peer verifies with the same stored digest');
					nev := nev OPERATOR(pg_catalog.+) 1;
					FOREACH pn IN ARRAY order_ LOOP
						PERFORM tenant_iso._monitor_set(rname, t, pn, 'quarantined', 'corrupt here; no healthy peer', ev, 0, id);
					END LOOP;
				ELSE
					FOREACH pn IN ARRAY order_ LOOP
						PERFORM tenant_iso._monitor_set(rname, t, pn, 'diverged', 'corrupt here; waiting for a healthy peer', ev);
					END LOOP;
				END IF;
				CONTINUE;
			END IF;
			BEGIN
				keys := tenant_iso._repair_here(rel, rname, reach OPERATOR(pg_catalog.->) src OPERATOR(pg_catalog.->>) 'ci', t, l, true, max_rows);
				n := pg_catalog.cardinality(keys);
				PERFORM tenant_iso._monitor_event(rname, t, src, 'repaired',
					n OPERATOR(pg_catalog.||) ' corrupt row(s) repaired here from the peer, then verified on both sides', keys);
				nev := nev OPERATOR(pg_catalog.+) 1;
				FOREACH pn IN ARRAY order_ LOOP
					PERFORM tenant_iso._monitor_set(rname, t, pn, 'repaired',
						n OPERATOR(pg_catalog.||) ' row(s) repaired from ' OPERATOR(pg_catalog.||) src, NULL,
						CASE WHEN pn OPERATOR(pg_catalog.=) src THEN n ELSE 0 END);
				END LOOP;
			EXCEPTION WHEN OTHERS THEN
				id := tenant_iso._monitor_event(rname, t, src, 'quarantined',
					'repair of this corrupt copy not done or rolled back: ' OPERATOR(pg_catalog.||) SQLERRM);
				nev := nev OPERATOR(pg_catalog.+) 1;
				FOREACH pn IN ARRAY order_ LOOP
					PERFORM tenant_iso._monitor_set(rname, t, pn, 'quarantined', SQLERRM, ev, 0, id);
				END LOOP;
			END;
			CONTINUE;
		END IF;

		-- this copy verifies: which peers differ or are corrupt?
		differing := '{}';
		FOREACH pn IN ARRAY order_ LOOP
			fq := reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->) 'map' OPERATOR(pg_catalog.->>) t;
			IF fq IS DISTINCT FROM l OR (reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->) 'bad') OPERATOR(pg_catalog.?) t THEN
				differing := differing OPERATOR(pg_catalog.||) pn;
			ELSE
				ok_t := ok_t OPERATOR(pg_catalog.||) t;
				ok_p := ok_p OPERATOR(pg_catalog.||) pn;
			END IF;
		END LOOP;
		IF pg_catalog.cardinality(differing) OPERATOR(pg_catalog.=) 0 THEN
			CONTINUE;
		END IF;
		IF NOT stable THEN
			-- lag looks the same as divergence once: decide on the next run
			-- (one event when it starts, not one per run while a tenant is written)
			IF EXISTS (SELECT 1 FROM pg_catalog.unnest(differing) o
						WHERE (prev OPERATOR(pg_catalog.->) (t OPERATOR(pg_catalog.||) pg_catalog.chr(31) OPERATOR(pg_catalog.||) o)
							   OPERATOR(pg_catalog.->>) 'state') IS DISTINCT FROM 'diverged') THEN
				PERFORM tenant_iso._monitor_event(rname, t, pg_catalog.array_to_string(differing, ','), 'diverged',
					'the copies'' stored digests differ; confirming on the next run');
				nev := nev OPERATOR(pg_catalog.+) 1;
			END IF;
			FOREACH pn IN ARRAY differing LOOP
				PERFORM tenant_iso._monitor_set(rname, t, pn, 'diverged', 'stored digests differ; confirming', ev);
			END LOOP;
			CONTINUE;
		END IF;

		FOREACH pn IN ARRAY differing LOOP
			fq := reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->) 'map' OPERATOR(pg_catalog.->>) t;
			IF (reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->) 'bad') OPERATOR(pg_catalog.?) t AND fq IS NOT DISTINCT FROM l THEN
				-- the peer's rows are corrupt, its digests agree with ours
				IF reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->>) 'role' OPERATOR(pg_catalog.=) 'subscriber' THEN
					nev := nev OPERATOR(pg_catalog.+) tenant_iso._repair_subscriber(rel, rname, t, pn,
						reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->>) 'ci', self_ci, l, true, max_rows, ev,
						'corrupt row(s) of the subscriber');
				ELSE
					id := tenant_iso._monitor_event(rname, t, pn, 'standby_corrupt',
						'the peer''s rows do not match its stored digests; re-sync it with pg_rewind or a new base backup');
					id := tenant_iso._monitor_event(rname, t, pn, 'quarantined',
						'a physical standby cannot be repaired in place (runbook: pg_rewind or a new base backup)', NULL, id);
					nev := nev OPERATOR(pg_catalog.+) 2;
					PERFORM tenant_iso._monitor_set(rname, t, pn, 'quarantined', 'peer corrupt; re-sync it', ev, 0, id);
				END IF;
				CONTINUE;
			END IF;

			-- a logical divergence: both verify, the digests differ
			ncopies := 1 OPERATOR(pg_catalog.+) pg_catalog.cardinality(order_);
			SELECT pg_catalog.jsonb_object_agg(v, c) INTO votes FROM (
				SELECT v, pg_catalog.count(*) AS c FROM (
					SELECT coalesce(l, '-') AS v
					UNION ALL
					SELECT coalesce(reach OPERATOR(pg_catalog.->) o OPERATOR(pg_catalog.->) 'map' OPERATOR(pg_catalog.->>) t, '-')
					  FROM pg_catalog.unnest(order_) o) a GROUP BY v) b;
			SELECT x.key INTO maj FROM pg_catalog.jsonb_each_text(votes) x
			 WHERE x.value::int OPERATOR(pg_catalog.=) (ncopies OPERATOR(pg_catalog.-) 1);
			odd := NULL;
			IF ncopies OPERATOR(pg_catalog.>=) 3 AND maj IS NOT NULL AND pg_catalog.jsonb_typeof(votes) OPERATOR(pg_catalog.=) 'object'
			   AND (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(votes)) OPERATOR(pg_catalog.=) 2 THEN
				IF coalesce(l, '-') OPERATOR(pg_catalog.<>) maj THEN
					odd := '';	-- this copy
				ELSIF coalesce(fq, '-') OPERATOR(pg_catalog.<>) maj THEN
					odd := pn;
				END IF;
			END IF;
			IF odd IS NULL THEN
				id := tenant_iso._monitor_event(rname, t, pn, 'quarantined',
					CASE WHEN ncopies OPERATOR(pg_catalog.<) 3
						 THEN 'two copies differ and both verify: no majority; nothing written'
						 ELSE 'the copies differ with no single odd copy; nothing written' END);
				nev := nev OPERATOR(pg_catalog.+) 1;
				PERFORM tenant_iso._monitor_set(rname, t, pn, 'quarantined', 'diverged; no majority', ev, 0, id);
			ELSIF odd OPERATOR(pg_catalog.=) pn THEN
				IF reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->>) 'role' OPERATOR(pg_catalog.<>) 'subscriber' THEN
					id := tenant_iso._monitor_event(rname, t, pn, 'quarantined',
						'the odd copy is a ' OPERATOR(pg_catalog.||) (reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->>) 'role')
						OPERATOR(pg_catalog.||) ', which the monitor does not write');
					nev := nev OPERATOR(pg_catalog.+) 1;
					PERFORM tenant_iso._monitor_set(rname, t, pn, 'quarantined', 'odd copy cannot be written', ev, 0, id);
					CONTINUE;
				END IF;
				nev := nev OPERATOR(pg_catalog.+) tenant_iso._repair_subscriber(rel, rname, t, pn,
					reach OPERATOR(pg_catalog.->) pn OPERATOR(pg_catalog.->>) 'ci', self_ci, l, false, max_rows, ev,
					'row(s) of the odd copy');
			ELSIF odd OPERATOR(pg_catalog.=) '' THEN
				-- this copy is the odd one: repair it from a majority peer
				src := NULL;
				SELECT o INTO src FROM pg_catalog.unnest(order_) WITH ORDINALITY AS u(o, i)
				 WHERE coalesce(reach OPERATOR(pg_catalog.->) o OPERATOR(pg_catalog.->) 'map' OPERATOR(pg_catalog.->>) t, '-') OPERATOR(pg_catalog.=) maj
				 ORDER BY i LIMIT 1;
				BEGIN
					keys := tenant_iso._repair_here(rel, rname, reach OPERATOR(pg_catalog.->) src OPERATOR(pg_catalog.->>) 'ci', t,
						NULLIF(maj, '-'), false, max_rows);
					n := pg_catalog.cardinality(keys);
					PERFORM tenant_iso._monitor_event(rname, t, src, 'repaired',
						n OPERATOR(pg_catalog.||) ' row(s) of this odd copy repaired from the majority, then verified', keys);
					nev := nev OPERATOR(pg_catalog.+) 1;
					FOREACH pn IN ARRAY order_ LOOP
						PERFORM tenant_iso._monitor_set(rname, t, pn, 'repaired', n OPERATOR(pg_catalog.||) ' row(s) repaired here from the majority',
							NULL, CASE WHEN pn OPERATOR(pg_catalog.=) src THEN n ELSE 0 END);
					END LOOP;
				EXCEPTION WHEN OTHERS THEN
					id := tenant_iso._monitor_event(rname, t, src, 'quarantined',
						'this odd copy was not repaired: ' OPERATOR(pg_catalog.||) SQLERRM);
					nev := nev OPERATOR(pg_catalog.+) 1;
					FOREACH pn IN ARRAY order_ LOOP
						PERFORM tenant_iso._monitor_set(rname, t, pn, 'quarantined', SQLERRM, ev, 0, id);
					END LOOP;
				END;
				EXIT;	-- every peer row of t is settled
			ELSE
				PERFORM tenant_iso._monitor_set(rname, t, pn, 'diverged', 'another copy is the odd one', ev);
			END IF;
		END LOOP;
	END LOOP;

	-- the tenants in sync with a peer: one statement, and a LOG line for each that comes back
	FOR p IN SELECT s.tenant_id, s.peer, s.state FROM ROWS FROM (pg_catalog.unnest(ok_t), pg_catalog.unnest(ok_p)) AS u(t, p)
			   JOIN tenant_iso.integrity_state s ON s.relname OPERATOR(pg_catalog.=) rname
				AND s.tenant_id OPERATOR(pg_catalog.=) u.t AND s.peer OPERATOR(pg_catalog.=) u.p
			  WHERE s.state NOT IN ('ok', 'quarantined') LOOP
		RAISE LOG 'tenant_iso: integrity of % for tenant "%" against peer %: % -> ok', rname, p.tenant_id, p.peer, p.state;
	END LOOP;
	INSERT INTO tenant_iso.integrity_state AS s (relname, tenant_id, peer, state, last_checked, last_ok)
	SELECT rname, u.t, u.p, 'ok', pg_catalog.now(), pg_catalog.now()
	  FROM ROWS FROM (pg_catalog.unnest(ok_t), pg_catalog.unnest(ok_p)) AS u(t, p)
	ON CONFLICT ON CONSTRAINT integrity_state_pkey DO UPDATE
	   SET state = 'ok', last_checked = EXCLUDED.last_checked, last_ok = EXCLUDED.last_ok, detail = NULL, evidence = NULL
	 WHERE s.state OPERATOR(pg_catalog.<>) 'quarantined';
	-- tenants that have left every copy
	DELETE FROM tenant_iso.integrity_state s WHERE s.relname OPERATOR(pg_catalog.=) rname
	   AND NOT (s.tenant_id OPERATOR(pg_catalog.=) ANY (universe));
	RETURN nev;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._monitor_check(regclass) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._monitor_check(regclass) IS
	'Internal: one integrity monitor check of a tracked table against every enabled peer, with its decisions and repairs';

CREATE FUNCTION tenant_iso.monitor_run() RETURNS bigint
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k record;
	run bigint;
	nev bigint := 0;
	n bigint;
	b0 bigint := tenant_iso._peer_bytes_total();
BEGIN
	IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
		RAISE EXCEPTION 'only a superuser may run the integrity monitor' USING ERRCODE = 'insufficient_privilege';
	END IF;
	IF NOT pg_catalog.pg_is_in_recovery() THEN
		INSERT INTO tenant_iso.monitor_runs (finished_at) VALUES (NULL) RETURNING run_id INTO run;
	END IF;
	FOR k IN SELECT t.rel, t.relname FROM tenant_iso.tracked t ORDER BY t.relname COLLATE "C" LOOP
		BEGIN
			n := tenant_iso._monitor_check(k.rel);
			nev := nev OPERATOR(pg_catalog.+) n;
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'tenant_iso: integrity check of % failed: %', k.relname, SQLERRM;
		END;
		IF run IS NOT NULL THEN
			UPDATE tenant_iso.monitor_runs r SET tables_done = r.tables_done OPERATOR(pg_catalog.+) 1, last_table = k.relname
			 WHERE r.run_id OPERATOR(pg_catalog.=) run;
		END IF;
	END LOOP;
	IF run IS NOT NULL THEN
		UPDATE tenant_iso.monitor_runs r SET finished_at = pg_catalog.clock_timestamp(),
			   bytes = tenant_iso._peer_bytes_total() OPERATOR(pg_catalog.-) b0, events = nev
		 WHERE r.run_id OPERATOR(pg_catalog.=) run;
	END IF;
	RETURN nev;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.monitor_run() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.monitor_run() IS
	'Run the integrity monitor''s checks once, now, in this session (what its worker does every tenant_iso.verify_interval); returns the number of events written';

CREATE FUNCTION tenant_iso.acknowledge(event_id bigint, note text) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e tenant_iso.integrity_events%ROWTYPE;
BEGIN
	SELECT * INTO e FROM tenant_iso.integrity_events x WHERE x.event_id OPERATOR(pg_catalog.=) acknowledge.event_id;
	IF NOT FOUND OR e.kind OPERATOR(pg_catalog.<>) 'quarantined' THEN
		RAISE EXCEPTION 'event % is not a quarantined case', acknowledge.event_id
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'SELECT * FROM tenant_iso.integrity_events WHERE kind = ''quarantined'' lists them.';
	END IF;
	IF EXISTS (SELECT 1 FROM tenant_iso.integrity_events x WHERE x.ref OPERATOR(pg_catalog.=) acknowledge.event_id
				  AND x.kind OPERATOR(pg_catalog.=) 'acknowledged') THEN
		RAISE EXCEPTION 'event % is already acknowledged', acknowledge.event_id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	PERFORM tenant_iso._monitor_event(e.relname, e.tenant_id, e.peer, 'acknowledged',
		'quarantined case closed; the monitor checks it again on its next run', NULL, acknowledge.event_id, note);
	UPDATE tenant_iso.integrity_state s
	   SET state = 'diverged', detail = 'acknowledged; checked again on the next run', evidence = NULL, case_event = NULL
	 WHERE s.case_event OPERATOR(pg_catalog.=) acknowledge.event_id;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.acknowledge(bigint, text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.acknowledge(bigint, text) IS
	'Close a quarantined integrity case with a note (appends an ''acknowledged'' event); the monitor checks the tenant again';

/*
 * validate() check subscriber_digests: on a logical subscriber, the apply
 * worker's changes must be counted (the row trigger tenant_iso_digest_row
 * and the TRUNCATE trigger enabled ALWAYS), the initial copy must not be
 * counted twice (the statement triggers not ALWAYS), and the digests must
 * not be replicated as well.
 */
CREATE FUNCTION tenant_iso._v_subscriber_digests()
	RETURNS TABLE (severity text, check_id text, object text, detail text, remedy text, controls text[])
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH subscribed AS (
		SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 AS yes FROM pg_catalog.pg_subscription s
		 WHERE s.subdbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
												  WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))
	SELECT 'high'::text, 'subscriber_digests'::text, k.relname,
		   CASE WHEN g.tgname IN ('tenant_iso_digest_row', 'tenant_iso_digest_trunc')
				THEN pg_catalog.format('this database subscribes to a publication, but the digest trigger %s on %s does not fire for replicated changes, so the stored digests of tracked table %s do not follow its rows',
									   g.tgname, g.tgrelid::pg_catalog.regclass, k.relname)
				ELSE pg_catalog.format('the statement digest trigger %s on %s fires ALWAYS: the initial copy of a subscription is counted twice',
									   g.tgname, g.tgrelid::pg_catalog.regclass) END,
		   CASE WHEN g.tgname IN ('tenant_iso_digest_row', 'tenant_iso_digest_trunc')
				THEN pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I;', g.tgrelid::pg_catalog.regclass, g.tgname)
				ELSE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER %I; SELECT tenant_iso.rebuild_digests(%L);',
									   g.tgrelid::pg_catalog.regclass, g.tgname, k.relname) END,
		   ARRAY['replication-integrity']
	  FROM subscribed, tenant_iso.tracked k
	  JOIN pg_catalog.pg_trigger g ON g.tgname OPERATOR(pg_catalog.~~) 'tenant\_iso\_digest\_%'
	   AND (g.tgrelid OPERATOR(pg_catalog.=) k.rel::pg_catalog.oid
			OR g.tgrelid OPERATOR(pg_catalog.=) ANY (SELECT tenant_iso._descendants(k.rel)::pg_catalog.oid))
	 WHERE subscribed.yes
	   AND CASE WHEN g.tgname IN ('tenant_iso_digest_row', 'tenant_iso_digest_trunc')
				THEN g.tgenabled OPERATOR(pg_catalog.<>) 'A'
				ELSE g.tgenabled OPERATOR(pg_catalog.=) 'A' END
	UNION ALL
	SELECT 'high'::text, 'subscriber_digests'::text, 'tenant_iso.digests'::text,
		   'tenant_iso.digests is replicated into this subscriber, whose own digest triggers also write it: digests count twice'::text,
		   'Publish the application''s tables only (CREATE PUBLICATION ... FOR TABLE ...), never tenant_iso.*; then SELECT tenant_iso.rebuild_digests();'::text,
		   ARRAY['replication-integrity']
	  FROM pg_catalog.pg_subscription_rel r
	 WHERE r.srrelid OPERATOR(pg_catalog.=) 'tenant_iso.digests'::pg_catalog.regclass::pg_catalog.oid
$$;
REVOKE ALL ON FUNCTION tenant_iso._v_subscriber_digests() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._v_subscriber_digests() IS
	'Internal (validate check subscriber_digests): on a logical subscriber, digest triggers that miss applied changes or count the initial copy twice, or replicated digests';
