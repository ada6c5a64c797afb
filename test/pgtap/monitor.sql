-- test/pgtap/monitor.sql
--
-- The integrity monitor's SQL surface and decision rules (issue 15), run
-- by hand with monitor_run() against a peer that is a second database of
-- this cluster (the worker and real replicas: test/cluster/t_monitor.sh).
-- Attacks: a non-superuser reaching the monitor or its peer calls, a
-- password in a peer's connection string, a hostile peer that claims to be
-- healthy and serves other rows, a caller's search_path full of shadows,
-- and the append-only event record.  One psql session as a superuser.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = error;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;
CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public;

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mo_user') THEN
		EXECUTE 'DROP OWNED BY mo_user CASCADE';
		DROP ROLE mo_user;
	END IF;
END
$$;
CREATE ROLE mo_user LOGIN;

\ir include/h.sql
CREATE FUNCTION h.peer(extra text DEFAULT 'sslmode=disable') RETURNS text
LANGUAGE sql AS $f$
	SELECT format('host=127.0.0.1 port=%s user=postgres dbname=mo_peer %s', current_setting('port'), extra)
$f$;
CREATE FUNCTION h.remote(q text) RETURNS void
LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.dblink_exec(h.peer(), q); END $f$;
CREATE FUNCTION h.remote_val(q text) RETURNS text
LANGUAGE sql AS $f$ SELECT v FROM public.dblink(h.peer(), q) AS t(v text) $f$;
CREATE FUNCTION h.states() RETURNS text
LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(tenant_id || '/' || peer || '=' || state, ' ' ORDER BY tenant_id, peer), '')
	  FROM tenant_iso.integrity_status
$f$;
CREATE FUNCTION h.kinds(since bigint) RETURNS text
LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(kind || ':' || coalesce(tenant_id, '-'), ' ' ORDER BY event_id), '')
	  FROM tenant_iso.integrity_events WHERE event_id > since
$f$;
CREATE FUNCTION h.last_event() RETURNS bigint
LANGUAGE sql AS $f$ SELECT coalesce(max(event_id), 0) FROM tenant_iso.integrity_events $f$;

DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('ma');
	PERFORM tenant_iso.create_tenant('mb');
END
$$;
CREATE TABLE public.mo_r (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
INSERT INTO public.mo_r SELECT t, i, 'value-' || t || '-' || i FROM unnest(ARRAY['ma', 'mb']) t, generate_series(1, 40) i;
SELECT tenant_iso.protect('public.mo_r') \g /dev/null
SELECT tenant_iso.track('public.mo_r') \g /dev/null
CREATE FUNCTION h.fp(t text) RETURNS text
LANGUAGE sql AS $f$ SELECT md5(string_agg(r::text, ',' ORDER BY tenant_id, id)) FROM public.mo_r r WHERE r.tenant_id = t $f$;

SELECT public.dblink_exec(format('host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable',
	current_setting('port')), 'DROP DATABASE IF EXISTS mo_peer WITH (FORCE)') \g /dev/null
SELECT public.dblink_exec(format('host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable',
	current_setting('port')), 'CREATE DATABASE mo_peer') \g /dev/null
SELECT h.remote($$
	CREATE EXTENSION tenant_iso;
	DO 'BEGIN PERFORM tenant_iso.create_tenant(''ma''); PERFORM tenant_iso.create_tenant(''mb''); END';
	CREATE TABLE public.mo_r (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
	INSERT INTO public.mo_r SELECT t, i, 'value-' || t || '-' || i FROM unnest(ARRAY['ma', 'mb']) t, generate_series(1, 40) i;
	DO 'BEGIN PERFORM tenant_iso.protect(''public.mo_r''); PERFORM tenant_iso.track(''public.mo_r''); END';
$$);

SELECT plan(71);

-- ---------------------------------------------------------------------
-- Peers: add_peer() and its refusals
-- ---------------------------------------------------------------------
SELECT is(h.run($$SELECT tenant_iso.add_peer('bad', 'host=x password=hunter2secret', 'standby')$$), 'ERROR 22023',
	'add_peer: a conninfo with a password is refused (22023)');
SELECT ok(h.msg($$SELECT tenant_iso.add_peer('bad', 'host=x password=hunter2secret', 'standby')$$) !~ 'hunter2',
	'add_peer: ... and the error does not show the password');
SELECT is(h.run($$SELECT tenant_iso.add_peer('bad', 'host=x password=''hunter2secret', 'standby')$$), 'ERROR 22023',
	'add_peer: a malformed conninfo is refused (22023)');
SELECT ok(h.msg($$SELECT tenant_iso.add_peer('bad', 'host=x password=''hunter2secret', 'standby')$$) !~ 'hunter2',
	'add_peer: ... without echoing it');
SELECT is(h.run($$SELECT tenant_iso.add_peer('bad', 'host=x', 'leader')$$), 'ERROR 22023',
	'add_peer: an unknown role is refused (22023)');
SELECT is(h.run($$SELECT tenant_iso.add_peer('bad name;', 'host=x', 'standby')$$), 'ERROR 22023',
	'add_peer: a peer name with odd characters is refused (22023)');
SELECT is(h.run(format($$SELECT tenant_iso.add_peer('p1', %L, 'subscriber')$$, h.peer())), 'ok 1',
	'add_peer: a subscriber peer');
SELECT is(h.run(format($$SELECT tenant_iso.add_peer('p1', %L, 'subscriber')$$, h.peer())), 'ERROR 42710',
	'add_peer: the same name twice is refused (42710)');
SELECT is((SELECT count(*) FROM pg_catalog.pg_extension e WHERE 'tenant_iso.peers'::regclass::oid = ANY (e.extconfig)),
	1::bigint, 'peers is dumped by pg_dump (an extension configuration table)');
ALTER SYSTEM SET tenant_iso.monitor_conninfo = 'host=127.0.0.1 password=hunter2secret';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
SELECT is(h.msg('SELECT tenant_iso._monitor_conninfo()'),
	'tenant_iso.monitor_conninfo may not hold a password |  | Give the peers a passfile, or set tenant_iso.peer_password_command on them.',
	'tenant_iso.monitor_conninfo with a password is refused when used, without showing it');
ALTER SYSTEM RESET tenant_iso.monitor_conninfo;
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null

-- ---------------------------------------------------------------------
-- Who may: a non-superuser reaches nothing
-- ---------------------------------------------------------------------
SET ROLE mo_user;
SELECT is(h.run('SELECT tenant_iso.monitor_run()'), 'ERROR 42501', 'a non-superuser may not run the monitor');
SELECT is(h.run(format($$SELECT * FROM tenant_iso._peer_query(%L, 'SELECT 1')$$, h.peer())), 'ERROR 42501',
	'a non-superuser may not call _peer_query');
SELECT is(h.run(format($$SELECT tenant_iso._repair_peer(%L, 'public.mo_r', %L, 'ma', NULL, false)$$, h.peer(), h.peer())),
	'ERROR 42501', 'a non-superuser may not call _repair_peer');
SELECT is(h.run('SELECT * FROM tenant_iso.peers'), 'ERROR 42501', 'a non-superuser may not read the peers');
SELECT is(h.run('SELECT * FROM tenant_iso.integrity_status'), 'ERROR 42501', 'a non-superuser may not read integrity_status');
SELECT is(h.run('SELECT * FROM tenant_iso.integrity_events'), 'ERROR 42501', 'a non-superuser may not read integrity_events');
SELECT is(h.run($$SELECT tenant_iso.add_peer('p9', 'host=x', 'standby')$$), 'ERROR 42501', 'a non-superuser may not add a peer');
SELECT is(h.run($$SELECT tenant_iso.acknowledge(1, 'x')$$), 'ERROR 42501', 'a non-superuser may not acknowledge');
RESET ROLE;
-- the C functions refuse on their own too, whatever EXECUTE grants say
GRANT EXECUTE ON FUNCTION tenant_iso._peer_query(text, text, text[]) TO mo_user;
SET ROLE mo_user;
SELECT is(h.run(format($$SELECT * FROM tenant_iso._peer_query(%L, 'SELECT 1')$$, h.peer())), 'ERROR 42501',
	'_peer_query refuses a non-superuser even when granted EXECUTE');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION tenant_iso._peer_query(text, text, text[]) FROM mo_user;
GRANT EXECUTE ON FUNCTION tenant_iso._rebuild_tenant_digests(regclass, text) TO mo_user;
GRANT SELECT ON public.mo_r TO mo_user;
SET ROLE mo_user;
SELECT is(h.run($$SELECT tenant_iso._rebuild_tenant_digests('public.mo_r', 'ma')$$), 'ERROR 42501',
	'_rebuild_tenant_digests refuses a non-superuser even when granted EXECUTE (it would hide a corruption)');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION tenant_iso._rebuild_tenant_digests(regclass, text) FROM mo_user;
REVOKE SELECT ON public.mo_r FROM mo_user;

-- ---------------------------------------------------------------------
-- In sync: digests only, every tenant ok
-- ---------------------------------------------------------------------
SELECT h.last_event() AS e0 \gset
SELECT is(tenant_iso.monitor_run(), 0::bigint, 'in sync: a run writes no event');
SELECT is(h.states(), 'ma/p1=ok mb/p1=ok', 'in sync: integrity_status has one ok row per tenant and peer');
SELECT cmp_ok((SELECT bytes FROM tenant_iso.monitor_runs ORDER BY run_id DESC LIMIT 1), '<', 2000::bigint,
	'in sync: a run exchanges under 2 kB with the peer (one hash and the failing tenants)');
SELECT ok((SELECT last_ok IS NOT NULL AND last_checked IS NOT NULL FROM tenant_iso.integrity_status WHERE tenant_id = 'ma'),
	'in sync: last_checked and last_ok are set');

-- ---------------------------------------------------------------------
-- A corrupt row here: repaired from the healthy peer, other tenant untouched
-- ---------------------------------------------------------------------
SELECT h.fp('mb') AS mb0 \gset
SET session_replication_role = replica;
UPDATE public.mo_r SET v = 'CORRUPTMARK' WHERE tenant_id = 'ma' AND id = 7;
RESET session_replication_role;
SELECT is((SELECT string_agg(tenant_id, ',') FROM tenant_iso.verify('public.mo_r') WHERE NOT ok), 'ma',
	'corrupt: verify() fails for ma only');
SELECT ok(tenant_iso.monitor_run() > 0, 'corrupt: the run writes events');
SELECT is((SELECT v FROM public.mo_r WHERE tenant_id = 'ma' AND id = 7), 'value-ma-7', 'corrupt: the row has its value back');
SELECT is((SELECT count(*) FROM tenant_iso.verify('public.mo_r') WHERE NOT ok), 0::bigint, 'corrupt: verify() is clean after the repair');
SELECT is(h.fp('mb'), :'mb0', 'corrupt: the other tenant''s rows are untouched');
SELECT is(h.kinds(:e0), 'corrupt:ma repaired:ma', 'corrupt: events corrupt and repaired, for ma only');
SELECT is(h.states(), 'ma/p1=repaired mb/p1=ok', 'corrupt: integrity_status says repaired');
SELECT is((SELECT rows_repaired FROM tenant_iso.integrity_status WHERE tenant_id = 'ma'), 1::bigint, 'corrupt: rows_repaired = 1');
SELECT is((SELECT key_hashes[1] FROM tenant_iso.integrity_events WHERE kind = 'repaired' ORDER BY event_id DESC LIMIT 1),
	tenant_iso._key_hash('ma', '{"id": 7, "tenant_id": "ma"}'), 'corrupt: the event names the row by its keyed key hash');
SELECT ok((SELECT bool_and(coalesce(array_to_string(key_hashes, ' '), '') || coalesce(detail, '') !~ '"id"|CORRUPTMARK|value-ma')
			 FROM tenant_iso.integrity_events), 'corrupt: no event holds a key or a value');
SELECT isnt(tenant_iso._key_hash('ma', '{"id": 7}'), tenant_iso._key_hash('mb', '{"id": 7}'),
	'_key_hash depends on the tenant');
SELECT is(tenant_iso.monitor_run(), 0::bigint, 'corrupt: the next run finds everything in sync');
SELECT is(h.states(), 'ma/p1=ok mb/p1=ok', 'corrupt: ... and says ok again');

-- ---------------------------------------------------------------------
-- An errant write on the peer, two copies: quarantined, nothing written
-- ---------------------------------------------------------------------
SELECT h.last_event() AS e1 \gset
SELECT h.remote($$SET session_replication_role = origin; UPDATE public.mo_r SET v = 'errant' WHERE tenant_id = 'mb' AND id = 3$$);
SELECT tenant_iso.monitor_run() \g /dev/null
SELECT is(h.states(), 'ma/p1=ok mb/p1=diverged', 'two copies: the first run sees a divergence and waits one run (lag)');
SELECT tenant_iso.monitor_run() \g /dev/null
SELECT is(h.states(), 'ma/p1=ok mb/p1=quarantined', 'two copies: the second run quarantines');
SELECT is(h.kinds(:e1), 'diverged:mb quarantined:mb', 'two copies: events diverged and quarantined');
SELECT is(h.remote_val($$SELECT v FROM public.mo_r WHERE tenant_id = 'mb' AND id = 3$$), 'errant',
	'two copies: nothing written on the peer');
SELECT is((SELECT v FROM public.mo_r WHERE tenant_id = 'mb' AND id = 3), 'value-mb-3', 'two copies: nothing written here');
SELECT tenant_iso.monitor_run() \g /dev/null
SELECT is(h.kinds(:e1), 'diverged:mb quarantined:mb', 'two copies: a quarantined case stays quiet on later runs');

-- acknowledge() and the append-only record
SELECT max(event_id) AS q1 FROM tenant_iso.integrity_events WHERE kind = 'quarantined' \gset
SELECT is(h.run(format('SELECT tenant_iso.acknowledge(%s, %L)', :e1 + 1, 'not a case')), 'ERROR 22023',
	'acknowledge: an event that is not a quarantine is refused (22023)');
SELECT is(h.run(format('SELECT tenant_iso.acknowledge(%s, %L)', :q1, 'fixed the peer by hand')), 'ok 1', 'acknowledge: closes the case');
SELECT is(h.run(format('SELECT tenant_iso.acknowledge(%s, %L)', :q1, 'again')), 'ERROR 55000', 'acknowledge: only once (55000)');
SELECT is((SELECT note || ' / ' || ref FROM tenant_iso.integrity_events WHERE kind = 'acknowledged'),
	'fixed the peer by hand / ' || :q1, 'acknowledge: appends an acknowledged event with the note and the case');
SELECT is(h.run('UPDATE tenant_iso.integrity_events SET note = NULL'), 'ERROR 55000', 'integrity_events: UPDATE refused');
SELECT is(h.run('DELETE FROM tenant_iso.integrity_events'), 'ERROR 55000', 'integrity_events: DELETE refused');
SELECT is(h.run('TRUNCATE tenant_iso.integrity_events'), 'ERROR 55000', 'integrity_events: TRUNCATE refused');
SELECT h.remote($$UPDATE public.mo_r SET v = 'value-mb-3' WHERE tenant_id = 'mb' AND id = 3$$);

-- ---------------------------------------------------------------------
-- A hostile peer claims to be healthy and serves other rows: the repair
-- does not verify against this copy's own digests and is rolled back
-- ---------------------------------------------------------------------
SELECT tenant_iso.monitor_run() \g /dev/null
SELECT h.remote($$
	SET session_replication_role = replica;
	UPDATE public.mo_r SET v = 'hostile' WHERE tenant_id = 'ma' AND id = 9;
	CREATE FUNCTION public.real_verify(regclass, text)
		RETURNS TABLE (rel regclass, tenant_id text, rows bigint, ok boolean, expected text, actual text)
		AS '$libdir/tenant_iso', 'ti_verify' LANGUAGE C;
	CREATE OR REPLACE FUNCTION tenant_iso.verify(rel regclass DEFAULT NULL, tenant_id text DEFAULT NULL)
		RETURNS TABLE (rel regclass, tenant_id text, rows bigint, ok boolean, expected text, actual text)
		LANGUAGE sql AS 'SELECT v.rel, v.tenant_id, v.rows, true, v.expected, v.expected FROM public.real_verify($1, $2) v';
$$);
SET session_replication_role = replica;
UPDATE public.mo_r SET v = 'CORRUPTMARK' WHERE tenant_id = 'ma' AND id = 9;
RESET session_replication_role;
SELECT h.last_event() AS e2 \gset
SELECT tenant_iso.monitor_run() \g /dev/null
SELECT is((SELECT v FROM public.mo_r WHERE tenant_id = 'ma' AND id = 9), 'CORRUPTMARK',
	'hostile peer: its rows were not kept here');
SELECT is(h.kinds(:e2), 'corrupt:ma quarantined:ma', 'hostile peer: the repair is rolled back and quarantined');

-- ---------------------------------------------------------------------
-- A caller's search_path full of shadows: none of them runs
-- ---------------------------------------------------------------------
CREATE SCHEMA mo_evil;
CREATE TABLE mo_evil.ran (who text, what text);
GRANT ALL ON SCHEMA mo_evil TO PUBLIC;
GRANT ALL ON mo_evil.ran TO PUBLIC;
CREATE FUNCTION mo_evil.count(anyelement) RETURNS bigint LANGUAGE sql AS $f$ INSERT INTO mo_evil.ran VALUES (current_user, 'count') RETURNING 0::bigint $f$;
CREATE FUNCTION mo_evil.now() RETURNS timestamptz LANGUAGE sql AS $f$ INSERT INTO mo_evil.ran VALUES (current_user, 'now') RETURNING '2000-01-01'::timestamptz $f$;
CREATE FUNCTION mo_evil.md5(text) RETURNS text LANGUAGE sql AS $f$ INSERT INTO mo_evil.ran VALUES (current_user, 'md5') RETURNING 'x' $f$;
CREATE FUNCTION mo_evil.jsonb_object_agg_shadow(text, text) RETURNS text LANGUAGE sql AS $f$ SELECT 'x' $f$;
CREATE FUNCTION mo_evil.eq(text, text) RETURNS boolean LANGUAGE sql AS $f$ INSERT INTO mo_evil.ran VALUES (current_user, '=') RETURNING true $f$;
CREATE OPERATOR mo_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = mo_evil.eq);
CREATE FUNCTION mo_evil.array_agg(text) RETURNS text[] LANGUAGE sql AS $f$ INSERT INTO mo_evil.ran VALUES (current_user, 'array_agg') RETURNING '{}'::text[] $f$;
SET search_path = mo_evil, public;
SELECT tenant_iso.monitor_run() \g /dev/null
RESET search_path;
SELECT is((SELECT count(*) FROM mo_evil.ran), 0::bigint, 'search_path shadows: none ran during a monitor run');

-- ---------------------------------------------------------------------
-- validate(): a subscriber whose digest triggers do not fire for applied changes
-- ---------------------------------------------------------------------
CREATE SUBSCRIPTION mo_sub CONNECTION 'host=127.0.0.1 dbname=nowhere' PUBLICATION mo_pub
	WITH (connect = false, enabled = false, slot_name = NONE, create_slot = false);
SELECT is((SELECT string_agg(substring(detail from 'trigger (\S+)'), ',' ORDER BY detail) FROM tenant_iso.validate()
			 WHERE check_id = 'subscriber_digests' AND object = 'public.mo_r'),
	'tenant_iso_digest_row,tenant_iso_digest_trunc',
	'validate: on a subscriber, the row and TRUNCATE digest triggers that do not fire ALWAYS are reported');
ALTER TABLE public.mo_r ENABLE ALWAYS TRIGGER tenant_iso_digest_row, ENABLE ALWAYS TRIGGER tenant_iso_digest_trunc,
	ENABLE ALWAYS TRIGGER tenant_iso_digest_ins;
SELECT is((SELECT string_agg(substring(detail from 'trigger (\S+)'), ',') FROM tenant_iso.validate() WHERE check_id = 'subscriber_digests'),
	'tenant_iso_digest_ins', 'validate: ... and a statement trigger that fires ALWAYS (the initial copy would count twice)');
ALTER TABLE public.mo_r ENABLE TRIGGER tenant_iso_digest_ins;
SELECT is((SELECT count(*) FROM tenant_iso.validate() WHERE check_id = 'subscriber_digests'),
	0::bigint, 'validate: ... and nothing once set up as docs/design/monitor.md says');
SELECT is((SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'public.mo_r'::regclass AND tgname = 'tenant_iso_digest_row'),
	'A'::"char", 'the row digest trigger exists (track() creates it disabled)');
DROP SUBSCRIPTION mo_sub;

-- ---------------------------------------------------------------------
-- writes on both copies: a divergence while only one has them, ok once both do
-- ---------------------------------------------------------------------
UPDATE public.mo_r SET v = v || '+' WHERE tenant_id = 'mb' AND id IN (7, 8);
SELECT h.last_event() AS ev \gset
SELECT tenant_iso.monitor_run() \g /dev/null
SELECT alike(h.kinds(:ev), '%diverged:mb%', 'writes here only: mb diverged (to be confirmed on the next run)');
SELECT h.remote('UPDATE public.mo_r SET v = v || ''+'' WHERE tenant_id = ''mb'' AND id IN (7, 8)');
SELECT tenant_iso.monitor_run() \g /dev/null
SELECT is((SELECT string_agg(state, ',') FROM tenant_iso.integrity_status WHERE rel = 'public.mo_r'::regclass AND tenant_id = 'mb'),
	'ok', 'the same writes on the peer: mb is ok again, nothing repaired');
SELECT is(h.fp('mb'), h.remote_val('SELECT md5(string_agg(r::text, '','' ORDER BY tenant_id, id)) FROM public.mo_r r WHERE r.tenant_id = ''mb'''),
	'... and both copies hold the written rows');

-- a tenant written while the copies are read is busy: no verdict on it this run.
-- The peer's table is locked, so the run waits in its peer read (after its
-- own verify()); mb is written here meanwhile, and the lock is released.
SELECT public.dblink_connect('mo_lk', h.peer()) \g /dev/null
SELECT public.dblink_exec('mo_lk', 'BEGIN') \g /dev/null
SELECT public.dblink_exec('mo_lk', 'LOCK TABLE public.mo_r IN ACCESS EXCLUSIVE MODE') \g /dev/null
SELECT public.dblink_connect('mo_run', format('host=127.0.0.1 port=%s user=postgres dbname=%s sslmode=disable',
	current_setting('port'), current_database())) \g /dev/null
SELECT h.last_event() AS ev \gset
SELECT is((SELECT string_agg(state, ',') FROM tenant_iso.integrity_status WHERE rel = 'public.mo_r'::regclass AND tenant_id = 'mb'),
	'ok', 'busy: mb is ok before');
SELECT string_agg(state, ',') AS mb_state FROM tenant_iso.integrity_status
 WHERE rel = 'public.mo_r'::regclass AND tenant_id = 'mb' \gset
SELECT public.dblink_send_query('mo_run', 'SELECT tenant_iso.monitor_run()') \g /dev/null
CREATE FUNCTION h.wait_peer_lock() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
	FOR i IN 1..200 LOOP
		IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = 'mo_peer' AND wait_event_type = 'Lock') THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.05);
		PERFORM pg_stat_clear_snapshot();
	END LOOP;
	RETURN false;
END $f$;
SELECT ok(h.wait_peer_lock(), 'busy: the run waits in its read of the peer');
UPDATE public.mo_r SET v = v || '*' WHERE tenant_id = 'mb' AND id = 2;
SELECT public.dblink_exec('mo_lk', 'COMMIT') \g /dev/null
SELECT n AS busy_events FROM public.dblink_get_result('mo_run') AS t(n bigint) \gset
SELECT public.dblink_disconnect('mo_run') \g /dev/null
SELECT public.dblink_disconnect('mo_lk') \g /dev/null
SELECT is(h.kinds(:ev), '', 'busy: mb, written during the run, got no event (not diverged: that may be lag)');
SELECT is((SELECT string_agg(state, ',') FROM tenant_iso.integrity_status WHERE rel = 'public.mo_r'::regclass AND tenant_id = 'mb'),
	:'mb_state', 'busy: ... and its state stays as it was');
SELECT h.last_event() AS ev \gset
SELECT tenant_iso.monitor_run() \g /dev/null
SELECT alike(h.kinds(:ev), '%diverged:mb%', 'busy: the next, quiet run compares mb: the peer lacks the write (diverged)');
SELECT h.remote('UPDATE public.mo_r SET v = v || ''*'' WHERE tenant_id = ''mb'' AND id = 2');
SELECT tenant_iso.monitor_run() \g /dev/null
SELECT is((SELECT string_agg(state, ',') FROM tenant_iso.integrity_status WHERE rel = 'public.mo_r'::regclass AND tenant_id = 'mb'),
	'ok', 'busy: ... and ok once the peer has it too');

-- attack: a member cannot reach _monitor_nice(), even when granted it
SET ROLE mo_user;
SELECT throws_ok($$SELECT tenant_iso._monitor_nice()$$, '42501', NULL,
	'attack: a non-superuser cannot call _monitor_nice()');
RESET ROLE;
GRANT EXECUTE ON FUNCTION tenant_iso._monitor_nice() TO mo_user;
SET ROLE mo_user;
SELECT throws_ok($$SELECT tenant_iso._monitor_nice()$$, '42501', NULL,
	'attack: a non-superuser granted EXECUTE cannot call _monitor_nice()');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION tenant_iso._monitor_nice() FROM mo_user;
-- a peer's monitor lowers the priority of the backend serving it (nice, field 19 of /proc/PID/stat)
CREATE FUNCTION h.nice() RETURNS int LANGUAGE sql AS $f$
	SELECT (string_to_array(substring(pg_read_file('/proc/' || pg_backend_pid() || '/stat') FROM '\) (.*)$'), ' '))[17]::int
$f$;
SELECT h.nice() AS nice0 \gset
SELECT ok(:nice0 < 10, 'nice: a backend starts below nice 10');
SELECT tenant_iso._monitor_nice() \g /dev/null
SELECT is(h.nice(), 10, 'nice: _monitor_nice() puts it at 10, as the worker');
SELECT tenant_iso._monitor_nice() \g /dev/null
SELECT is(h.nice(), 10, 'nice: ... and a second call changes nothing');

SELECT * FROM finish();

-- clean up
SELECT tenant_iso.remove_peer('p1') \g /dev/null
SELECT public.dblink_exec(format('host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable',
	current_setting('port')), 'DROP DATABASE IF EXISTS mo_peer WITH (FORCE)') \g /dev/null
