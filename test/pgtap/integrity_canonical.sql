-- test/pgtap/integrity_canonical.sql
--
-- Digests are keyed, canonical and survive schema changes (issue 11,
-- part 3).  Starts from a 0.1.0 installation with a tracked table, so that
-- the upgrade path (format 1 kept until rebuild_digests()) is covered too.
-- One psql session as the superuser; a second database, reached with
-- dblink, plays another node with other OIDs for the same types.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP EXTENSION IF EXISTS tenant_iso CASCADE;
CREATE EXTENSION tenant_iso VERSION '0.1.0';

CREATE TABLE ic_old (id int PRIMARY KEY, v text);
INSERT INTO ic_old SELECT i, 'v' || i FROM generate_series(1, 20) i;
SELECT tenant_iso.track('ic_old');
ALTER EXTENSION tenant_iso UPDATE;

\ir include/h.sql
-- every (tenant, ok) of verify() for one table, as one string
CREATE FUNCTION h.verdict(r regclass) RETURNS text
LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(v.tenant_id || ':' || v.ok, ' ' ORDER BY v.tenant_id), 'no rows')
	  FROM tenant_iso.verify(r) v
$f$;
-- the live fingerprints of a table, as one string (what a peer compares)
CREATE FUNCTION h.prints(r text) RETURNS text
LANGUAGE sql AS $f$
	SELECT string_agg(tenant_id || '/' || bucket || '/' || rows || '/' || fingerprint, ' '
					  ORDER BY tenant_id, bucket)
	  FROM tenant_iso._bucket_digests(r, NULL, 64)
$f$;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['a', 'b', 't0', 't1', 't2'] LOOP
		PERFORM tenant_iso.create_tenant(t);
	END LOOP;
END
$$;

SELECT plan(38);

-- ---------------------------------------------------------------------
-- A table tracked under 0.1.0
-- ---------------------------------------------------------------------
SELECT is((SELECT format FROM tenant_iso.tracked WHERE rel = 'ic_old'::regclass), 1::smallint,
	'upgrade: a table tracked under 0.1.0 keeps digest format 1');
SELECT is(h.verdict('ic_old'), ':true',
	'upgrade: its 0.1.0 digests still verify');
INSERT INTO ic_old VALUES (21, 'v21');
UPDATE ic_old SET v = 'w' WHERE id = 1;
DELETE FROM ic_old WHERE id = 2;
SELECT is(h.verdict('ic_old'), ':true',
	'upgrade: writes keep its format-1 digests right');
SELECT ok(tenant_iso.rebuild_digests('ic_old') > 0,
	'rebuild_digests(): rebuilds the table');
SELECT is((SELECT format FROM tenant_iso.tracked WHERE rel = 'ic_old'::regclass), 2::smallint,
	'rebuild_digests(): ... and moves it to format 2');
INSERT INTO ic_old VALUES (22, 'v22');
DELETE FROM ic_old WHERE id = 3;
SELECT is(h.verdict('ic_old'), ':true',
	'format 2 after the move: writes keep the digests right');
SELECT is(h.run($$SELECT tenant_iso.rebuild_digests('pg_class')$$), 'ERROR 55000',
	'rebuild_digests() of a table that is not tracked -> 55000');

-- ---------------------------------------------------------------------
-- No session setting changes a row hash
-- ---------------------------------------------------------------------
CREATE TYPE ic_pt AS (at timestamptz, x float8, d interval, b bytea, day date);
CREATE TABLE ic_s (id int PRIMARY KEY, tenant_id text, p ic_pt, ps ic_pt[], t timestamptz, f float8);
SELECT tenant_iso.protect('ic_s');
SELECT tenant_iso.track('ic_s');
SET TimeZone = 'UTC';
INSERT INTO ic_s VALUES
	(1, 'a', ROW('2024-01-01 10:00+00', 0.1, '1 day 02:00', '\x00ff', '2024-02-29')::ic_pt,
		ARRAY[ROW('2024-06-01 00:00+00', 1e-300, '-3 months', '\x01', '1999-12-31')::ic_pt],
		'2024-01-01 10:00+00', 0.30000000000000004),
	(2, 'b', NULL, NULL, NULL, NULL);
SELECT is(h.verdict('ic_s'), 'a:true b:true', 'settings: control, verify() under UTC');
SET TimeZone = 'Asia/Tokyo';
SELECT is(h.verdict('ic_s'), 'a:true b:true', 'settings: verify() under Asia/Tokyo');
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'iso_8601';
SELECT is(h.verdict('ic_s'), 'a:true b:true', 'settings: ... and DateStyle SQL, DMY, IntervalStyle iso_8601');
SET extra_float_digits = -15;
SET bytea_output = 'escape';
SELECT is(h.verdict('ic_s'), 'a:true b:true', 'settings: ... and extra_float_digits -15, bytea_output escape');
-- a delete under other settings leaves no residue
DELETE FROM ic_s WHERE id = 1;
RESET ALL;
SELECT is(h.verdict('ic_s'), 'b:true', 'settings: a DELETE under Asia/Tokyo leaves tenant a with nothing');
SELECT tenant_iso.compact_digests();
SELECT is((SELECT count(*) FROM tenant_iso.digests WHERE relname = 'public.ic_s' AND tenant_id = 'a'), 0::bigint,
	'settings: ... and compact_digests() folds tenant a away entirely');

-- ---------------------------------------------------------------------
-- No node-local OID changes a row hash: another database (another node)
-- with the same types created in another order, hence other OIDs
-- ---------------------------------------------------------------------
CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public;
CREATE DOMAIN ic_pos AS int CHECK (VALUE > 0);
CREATE TYPE ic_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE ic_pair AS (m ic_mood, n ic_pos);
CREATE TABLE ic_n (id int PRIMARY KEY, tenant_id text, a ic_pos[], m ic_mood, pr ic_pair, prs ic_pair[]);
INSERT INTO ic_n VALUES (1, 'a', ARRAY[1, 2, 3], 'happy', ROW('ok', 7), ARRAY[ROW('sad', 1)::ic_pair]),
	(2, 'a', '{}', 'sad', NULL, NULL), (3, 'b', ARRAY[[1, 2], [3, 4]], NULL, ROW(NULL, 2), '{}');
SELECT tenant_iso.protect('ic_n');
SELECT tenant_iso.track('ic_n');
DROP DATABASE IF EXISTS ic_other;
CREATE DATABASE ic_other;
SELECT public.dblink_connect('o', format('host=127.0.0.1 port=%s dbname=ic_other user=postgres',
	current_setting('port')));
SELECT public.dblink_exec('o', $$
	DO 'BEGIN END';
	CREATE EXTENSION tenant_iso;
	CREATE TABLE pad1 (x int); CREATE TYPE pad2 AS ENUM ('x'); CREATE TYPE pad3 AS (x int);
	CREATE TYPE ic_mood AS ENUM ('sad', 'ok', 'happy');
	CREATE DOMAIN ic_pos AS int CHECK (VALUE > 0);
	CREATE TYPE ic_pair AS (m ic_mood, n ic_pos);
	CREATE TABLE ic_n (id int PRIMARY KEY, tenant_id text, a ic_pos[], m ic_mood, pr ic_pair, prs ic_pair[]);
	INSERT INTO ic_n VALUES (1, 'a', ARRAY[1, 2, 3], 'happy', ROW('ok', 7), ARRAY[ROW('sad', 1)::ic_pair]),
		(2, 'a', '{}', 'sad', NULL, NULL), (3, 'b', ARRAY[[1, 2], [3, 4]], NULL, ROW(NULL, 2), '{}');
	DO $x$ BEGIN
		PERFORM tenant_iso.create_tenant('a');
		PERFORM tenant_iso.create_tenant('b');
		PERFORM tenant_iso.protect('ic_n');
		PERFORM tenant_iso.track('ic_n');
	END $x$;
$$);
SELECT isnt((SELECT oid FROM pg_type WHERE typname = 'ic_pos'),
	(SELECT x FROM public.dblink('o', $$SELECT oid FROM pg_type WHERE typname = 'ic_pos'$$) AS t(x oid)),
	'oids: control, the domain has another OID on the other node');
SELECT is(h.prints('public.ic_n'),
	(SELECT x FROM public.dblink('o', $$SELECT string_agg(tenant_id || '/' || bucket || '/' || rows || '/' || fingerprint, ' '
					  ORDER BY tenant_id, bucket) FROM tenant_iso._bucket_digests('public.ic_n', NULL, 64)$$) AS t(x text)),
	'oids: arrays over domains, enums, composites and arrays of them hash alike on both nodes');
SELECT public.dblink_exec('o', $$UPDATE ic_n SET m = 'ok' WHERE id = 2$$);
SELECT isnt(h.prints('public.ic_n'),
	(SELECT x FROM public.dblink('o', $$SELECT string_agg(tenant_id || '/' || bucket || '/' || rows || '/' || fingerprint, ' '
					  ORDER BY tenant_id, bucket) FROM tenant_iso._bucket_digests('public.ic_n', NULL, 64)$$) AS t(x text)),
	'oids: control, a changed enum value shows on the other node');
SELECT public.dblink_disconnect('o');
DROP DATABASE ic_other;

-- ---------------------------------------------------------------------
-- Schema changes keep the table writable and the digests right
-- ---------------------------------------------------------------------
CREATE TABLE ic_a (id int PRIMARY KEY, tenant_id text, gone text, v int);
INSERT INTO ic_a SELECT i, 't' || (i % 3), 'g' || i, i FROM generate_series(1, 30) i;
SELECT tenant_iso.protect('ic_a');
SELECT tenant_iso.track('ic_a');
ALTER TABLE ic_a DROP COLUMN gone;
SELECT is(h.run($$INSERT INTO ic_a VALUES (31, 't1', 31)$$), 'ok 1',
	'DROP COLUMN: the table stays writable (INSERT)');
SELECT is(h.run($$UPDATE ic_a SET v = v + 1 WHERE id <= 5$$), 'ok 5',
	'DROP COLUMN: ... (UPDATE)');
SELECT is(h.run($$DELETE FROM ic_a WHERE id = 6$$), 'ok 1',
	'DROP COLUMN: ... (DELETE)');
SELECT is(h.verdict('ic_a'), 't0:true t1:true t2:true', 'DROP COLUMN: verify() is clean');
SELECT is((SELECT rebuilt_reason FROM tenant_iso.tracked WHERE rel = 'ic_a'::regclass),
	'ALTER TABLE ... DROP COLUMN', 'DROP COLUMN: tracked records that the digests were rebuilt, and why');
UPDATE tenant_iso.tracked SET rebuilt_reason = NULL WHERE rel = 'ic_a'::regclass;
ALTER TABLE ic_a ADD COLUMN extra text;
SELECT is((SELECT rebuilt_reason FROM tenant_iso.tracked WHERE rel = 'ic_a'::regclass), NULL,
	'ADD COLUMN without a default: nothing to rebuild');
SELECT is(h.verdict('ic_a'), 't0:true t1:true t2:true', 'ADD COLUMN without a default: the digests stay right');
INSERT INTO ic_a VALUES (40, 't0', 40, 'x');
ALTER TABLE ic_a ADD COLUMN filled text DEFAULT 'd';
SELECT is((SELECT rebuilt_reason FROM tenant_iso.tracked WHERE rel = 'ic_a'::regclass),
	'ALTER TABLE ... ADD COLUMN', 'ADD COLUMN with a default: the digests are rebuilt');
SELECT is(h.verdict('ic_a'), 't0:true t1:true t2:true', 'ADD COLUMN with a default: verify() is clean');
ALTER TABLE ic_a ALTER COLUMN v TYPE bigint;
SELECT is((SELECT rebuilt_reason FROM tenant_iso.tracked WHERE rel = 'ic_a'::regclass),
	'ALTER TABLE ... ALTER COLUMN TYPE', 'ALTER COLUMN TYPE: the digests are rebuilt');
INSERT INTO ic_a VALUES (41, 't2', 41, NULL, NULL);
SELECT is(h.verdict('ic_a'), 't0:true t1:true t2:true', 'ALTER COLUMN TYPE: writes after it keep verify() clean');
-- a change behind the triggers' back is still found after all that
ALTER TABLE ic_a DISABLE TRIGGER tenant_iso_digest_upd;
UPDATE ic_a SET v = 0 WHERE id = 7;
ALTER TABLE ic_a ENABLE TRIGGER tenant_iso_digest_upd;
SELECT is(h.verdict('ic_a'), 't0:true t1:false t2:true', 'control: an untracked change of one t1 row is found');

-- ---------------------------------------------------------------------
-- Without the master key: writes still work, the digests go stale visibly
-- ---------------------------------------------------------------------
SELECT tenant_iso.rebuild_digests('ic_a') \g /dev/null
SELECT is(h.verdict('ic_a'), 't0:true t1:true t2:true', 'no master key: control, clean before');
ALTER SYSTEM SET tenant_iso.master_key_command = 'false';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
-- the write comes from a plain role whose search_path holds shadows of what
-- marking the digests stale uses; that runs as the owner of tenant_iso.tracked
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ic_writer') THEN
		DELETE FROM tenant_iso.members WHERE member = 'ic_writer'::regrole;
		EXECUTE 'DROP OWNED BY ic_writer CASCADE';
		DROP ROLE ic_writer;
	END IF;
END
$$;
CREATE ROLE ic_writer;
SELECT tenant_iso.add_member('ic_writer', 't1') \g /dev/null
GRANT USAGE ON SCHEMA h TO ic_writer;
GRANT INSERT, SELECT ON ic_a TO ic_writer;
CREATE SCHEMA ic_shadow;
GRANT USAGE ON SCHEMA ic_shadow TO PUBLIC;
CREATE TABLE ic_shadow.ran (who text);
GRANT INSERT ON ic_shadow.ran TO PUBLIC;
CREATE FUNCTION ic_shadow.now() RETURNS timestamptz LANGUAGE sql AS
	$f$ INSERT INTO ic_shadow.ran VALUES (current_user) RETURNING pg_catalog.now() $f$;
CREATE FUNCTION ic_shadow.oideq(oid, oid) RETURNS boolean LANGUAGE sql AS
	$f$ INSERT INTO ic_shadow.ran VALUES (current_user) RETURNING $1 OPERATOR(pg_catalog.=) $2 $f$;
CREATE OPERATOR ic_shadow.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = ic_shadow.oideq);
SET ROLE ic_writer;
SET search_path = ic_shadow, public, pg_catalog;
SELECT is(h.run($$INSERT INTO ic_a VALUES (50, 't1', 50, NULL, NULL)$$), 'ok 1',
	'no master key: a write to a tracked table still succeeds');
RESET search_path;
RESET ROLE;
SELECT is((SELECT count(*) FROM ic_shadow.ran), 0::bigint,
	'no master key: marking the digests stale (as the catalog owner) ran no shadow of the writer''s search_path');
SELECT ok((SELECT stale_since IS NOT NULL FROM tenant_iso.tracked WHERE rel = 'ic_a'::regclass),
	'no master key: ... and the table''s digests are marked stale');
ALTER SYSTEM RESET tenant_iso.master_key_command;
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
SELECT is(h.verdict('ic_a'), 't0:true t1:false t2:true', 'no master key: verify() afterwards shows the untracked write');
SELECT ok(tenant_iso.rebuild_digests('ic_a') > 0, 'no master key: rebuild_digests() afterwards');
SELECT ok((SELECT stale_since IS NULL FROM tenant_iso.tracked WHERE rel = 'ic_a'::regclass),
	'no master key: ... clears the stale mark');
SELECT is(h.verdict('ic_a'), 't0:true t1:true t2:true', 'no master key: ... and verify() is clean again');

-- ---------------------------------------------------------------------
-- compact_digests() with a FOR ALL TABLES publication
-- ---------------------------------------------------------------------
CREATE PUBLICATION ic_all FOR ALL TABLES;
SELECT is(h.run('SELECT tenant_iso.compact_digests()'), 'ok 1',
	'compact_digests() works with a FOR ALL TABLES publication');
SELECT is(h.verdict('ic_old'), ':true', 'compact_digests(): digests still verify afterwards');
DROP PUBLICATION ic_all;

SELECT * FROM finish();
SELECT tenant_iso.remove_member('ic_writer') \g /dev/null
DROP OWNED BY ic_writer CASCADE;
DROP ROLE ic_writer;
