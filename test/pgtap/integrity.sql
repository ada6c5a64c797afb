-- test/pgtap/integrity.sql
--
-- Replication integrity on a single node: track() / untrack(), the digest
-- triggers (fired by tenant MEMBER roles, who cannot write
-- tenant_iso.digests themselves), verify(), compact_digests(), partitioned
-- tables, canonical row hashes (table rewrites and session settings), and
-- diff_peer() / repair_from_peer() against a second database of the same
-- server, built through dblink.
--
-- Everything runs in one psql session as the superuser postgres (no
-- enclosing transaction: VACUUM FULL and dblink need none).  SET ROLE
-- integ_ma / integ_mb acts as a member of tenant "ta" / "tb"; RESET ROLE
-- returns to the superuser, who checks the result.
--
-- Roles are cluster-wide: all start with integ_ and are dropped at the end
-- (and at the start, should an earlier run have died half-way).  The peer
-- database is integ_peer_<random>, dropped at the end.
--
-- The file is ASCII only: non-ASCII data is written with E'\uXXXX' escapes,
-- which the server decodes, so switching client_encoding cannot change it.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;
CREATE EXTENSION IF NOT EXISTS dblink;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['integ_plain', 'integ_ma', 'integ_mb'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
	-- peer databases left behind by a run that died half-way
	FOR r IN SELECT datname FROM pg_database WHERE datname LIKE 'integ\_peer\_%' LOOP
		PERFORM dblink_exec(format('host=127.0.0.1 port=%s user=postgres dbname=postgres',
								   current_setting('port')),
							format('DROP DATABASE IF EXISTS %I WITH (FORCE)', r));
	END LOOP;
END
$$;

SELECT plan(113);

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------
CREATE SCHEMA h;
GRANT USAGE ON SCHEMA h TO PUBLIC;

-- verify() of one table as 'tenant:rows:ok|BAD ...' sorted by tenant, or 'none'.
CREATE FUNCTION h.v(rel regclass, tenant text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(format('%s:%s:%s', v.tenant_id, v.rows, CASE WHEN v.ok THEN 'ok' ELSE 'BAD' END),
							   ' ' ORDER BY v.tenant_id COLLATE "C"), 'none')
	  FROM tenant_iso.verify(rel, tenant) v
$f$;

-- What a clean verify() of a table must say, computed from its rows:
-- 'tenant:count:ok ...' (tenant '' when col is NULL, i.e. not protected).
CREATE FUNCTION h.expect(rel regclass, col text DEFAULT 'tenant_id') RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE format($x$SELECT coalesce(string_agg(format('%%s:%%s:ok', t, c), ' ' ORDER BY t COLLATE "C"), 'none')
					   FROM (SELECT %s AS t, count(*) AS c FROM %s GROUP BY 1) x$x$,
				   CASE WHEN col IS NULL THEN $q$''::text$q$ ELSE format($q$coalesce(%I::text, '')$q$, col) END,
				   rel)
		INTO r;
	RETURN r;
END
$f$;

-- Number of digest triggers on some tables.
CREATE FUNCTION h.ntrig(VARIADIC rels regclass[]) RETURNS bigint
LANGUAGE sql AS $f$
	SELECT count(*) FROM pg_trigger
	 WHERE tgrelid = ANY (rels) AND tgname LIKE 'tenant\_iso\_digest\_%'
$f$;

-- Number of stored digest rows of a table (by its digest key).
CREATE FUNCTION h.ndig(relname text) RETURNS bigint
LANGUAGE sql AS $f$
	SELECT count(*) FROM tenant_iso.digests d WHERE d.relname = ndig.relname
$f$;

-- SQLSTATE, message, detail and hint of the error a statement raises
-- ('no error' if none).  Not the context: it quotes the statement itself.
CREATE FUNCTION h.errtext(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	m text;
	d text;
	hi text;
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
							hi = PG_EXCEPTION_HINT;
	RETURN concat_ws(' | ', SQLSTATE, m, d, hi);
END
$f$;

-- Rows (tenant, key, status-or-action) of diff_peer()/repair_from_peer() as
-- 'tenant key status; ...' sorted, or 'none'.
CREATE FUNCTION h.diffs(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE format($x$SELECT coalesce(string_agg(format('%%s %%s %%s', x.t, x.k, x.s), '; '
												  ORDER BY x.t COLLATE "C", x.k COLLATE "C"), 'none')
					   FROM (%s) x(t, k, s)$x$, q)
		INTO r;
	RETURN r;
END
$f$;

-- conninfo of the peer database and of the maintenance database
CREATE FUNCTION h.peer() RETURNS text
LANGUAGE sql AS $f$
	SELECT format('host=127.0.0.1 port=%s user=postgres dbname=%s sslmode=disable',
				  current_setting('port'), current_setting('integ.peerdb'))
$f$;
CREATE FUNCTION h.admin() RETURNS text
LANGUAGE sql AS $f$
	SELECT format('host=127.0.0.1 port=%s user=postgres dbname=postgres', current_setting('port'))
$f$;

-- Run a statement here and on the peer.
CREATE FUNCTION h.both(q text) RETURNS void
LANGUAGE plpgsql AS $f$
BEGIN
	PERFORM dblink_exec(h.peer(), q);
	EXECUTE q;
END
$f$;

-- ---------------------------------------------------------------------
-- Roles, tenants, tables
-- ---------------------------------------------------------------------
CREATE ROLE integ_plain;
CREATE ROLE integ_ma;
CREATE ROLE integ_mb;
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant(t) FROM unnest(ARRAY['ta', 'tb', 'tc', 'td']) t;
	PERFORM tenant_iso.add_member('integ_ma', 'ta');
	PERFORM tenant_iso.add_member('integ_mb', 'tb');
END
$$;

-- t: protected, rows before track()
CREATE TABLE t (tenant_id text NOT NULL, id int NOT NULL, payload text, n numeric,
				PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('t') \g /dev/null
INSERT INTO t SELECT x, i, 'p' || i, i * 1.5 FROM unnest(ARRAY['ta', 'tb']) x, generate_series(1, 20) i;
INSERT INTO t VALUES ('ta', 21, NULL, NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON t TO integ_ma, integ_mb;

-- u: not protected
CREATE TABLE u (id int PRIMARY KEY, v text);
INSERT INTO u SELECT i, 'u' || i FROM generate_series(1, 10) i;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON u TO integ_ma;

-- things track() refuses
CREATE TABLE nopk (id int, v text);
CREATE UNIQUE INDEX nopk_id ON nopk (id);
CREATE VIEW vw AS SELECT 1 AS id;
CREATE SEQUENCE sq;
CREATE MATERIALIZED VIEW mv AS SELECT 1 AS id;

-- =====================================================================
-- 1. track(): refusals, privileges
-- =====================================================================
SELECT throws_ok($$SELECT tenant_iso.track('nopk')$$, '55000', NULL,
	'track(): a table without a primary key (a unique index is not enough) is refused with 55000');
SELECT throws_ok($$SELECT tenant_iso.track('vw')$$, '42809', NULL,
	'track(): a view is refused with 42809');
SELECT throws_ok($$SELECT tenant_iso.track('sq')$$, '42809', NULL,
	'track(): a sequence is refused with 42809');
SELECT throws_ok($$SELECT tenant_iso.track('mv')$$, '42809', NULL,
	'track(): a materialized view is refused with 42809');
SELECT is((SELECT count(*) FROM tenant_iso.tracked) + h.ntrig('nopk'), 0::bigint,
	'refused track() calls register nothing and create no trigger');

SET ROLE integ_plain;
SELECT throws_ok($$SELECT tenant_iso.track('u')$$, '42501', 'permission denied for function track',
	'plain role: track() is not executable (42501)');
SELECT throws_ok($$SELECT tenant_iso.untrack('u')$$, '42501', 'permission denied for function untrack',
	'plain role: untrack() is not executable (42501)');
SELECT throws_ok($$SELECT * FROM tenant_iso.verify()$$, '42501', 'permission denied for function verify',
	'plain role: verify() is not executable (42501)');
SELECT throws_ok($$SELECT tenant_iso.compact_digests()$$, '42501', 'permission denied for function compact_digests',
	'plain role: compact_digests() is not executable (42501)');
SELECT throws_ok($$SELECT * FROM tenant_iso.diff_peer('u', 'host=127.0.0.1 port=1')$$, '42501',
	'permission denied for function diff_peer',
	'plain role: diff_peer() is not executable (42501)');
SELECT throws_ok($$SELECT * FROM tenant_iso.repair_from_peer('u', 'host=127.0.0.1 port=1')$$, '42501',
	'permission denied for function repair_from_peer',
	'plain role: repair_from_peer() is not executable (42501)');
SELECT throws_ok($$SELECT * FROM tenant_iso.digests$$, '42501', 'permission denied for table digests',
	'plain role: tenant_iso.digests is not readable (42501)');
SELECT throws_ok($$SELECT * FROM tenant_iso.tracked$$, '42501', 'permission denied for table tracked',
	'plain role: tenant_iso.tracked is not readable (42501)');
SELECT throws_ok($$SELECT * FROM tenant_iso.verify_runs$$, '42501', 'permission denied for table verify_runs',
	'plain role: tenant_iso.verify_runs is not readable (42501)');
RESET ROLE;
SELECT is(ARRAY[has_table_privilege('public', 'tenant_iso.digests', 'SELECT'),
				has_table_privilege('public', 'tenant_iso.tracked', 'SELECT'),
				has_table_privilege('public', 'tenant_iso.verify_runs', 'SELECT')],
	ARRAY[false, false, false],
	'PUBLIC has no SELECT on tenant_iso.digests, tracked, verify_runs');

SET ROLE integ_ma;
SELECT throws_ok($$SELECT * FROM tenant_iso.verify('t')$$, '42501', 'permission denied for function verify',
	'tenant member: verify() is not executable (42501)');
SELECT throws_ok($$INSERT INTO tenant_iso.digests VALUES ('public.t', 'ta', 0, 1, decode(repeat('00', 64), 'hex'))$$,
	'42501', 'permission denied for table digests',
	'tenant member: cannot write tenant_iso.digests directly (42501)');
RESET ROLE;

-- =====================================================================
-- 2. track(): names, triggers, existing rows, idempotence, untrack()
-- =====================================================================
SELECT tenant_iso.track('t') \g /dev/null
SELECT tenant_iso.track('u') \g /dev/null

SELECT is((SELECT relname FROM tenant_iso.tracked WHERE rel = 't'::regclass), 'public.t',
	'tracked.relname is the schema-qualified name public.t');
SELECT is((SELECT string_agg(DISTINCT relname, ',' ORDER BY relname) FROM tenant_iso.digests), 'public.t,public.u',
	'digests are keyed by the schema-qualified names');
SELECT is((SELECT array_agg(tgname::text ORDER BY tgname) FROM pg_trigger
			WHERE tgrelid = 't'::regclass AND tgname LIKE 'tenant\_iso\_digest\_%'),
	ARRAY['tenant_iso_digest_del', 'tenant_iso_digest_ins', 'tenant_iso_digest_row', 'tenant_iso_digest_trunc', 'tenant_iso_digest_upd'],
	'track() creates the four tenant_iso_digest_* statement triggers and the (disabled) row trigger for subscribers');
SELECT is(h.v('t'), 'ta:21:ok tb:20:ok', 'verify(): clean right after track() on existing rows, one row per tenant');
SELECT is(h.v('u'), ':10:ok', 'verify(): an unprotected table gives a single row under tenant ''''');

SELECT h.ndig('public.t') AS dig_t0 \gset
SELECT lives_ok($$SELECT tenant_iso.track('t')$$, 'track() a second time succeeds');
SELECT is(format('%s digests, %s triggers, %s tracked', h.ndig('public.t'), h.ntrig('t'),
				 (SELECT count(*) FROM tenant_iso.tracked WHERE rel = 't'::regclass)),
	format('%s digests, 5 triggers, 1 tracked', :dig_t0),
	'track() twice is a no-op (no new digest rows, triggers or registry rows)');
SELECT is(h.v('t'), 'ta:21:ok tb:20:ok', 'verify() still clean after the second track() (nothing counted twice)');

-- odd names
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Odd Name" ("Tenant Id" text NOT NULL, "Key" int NOT NULL, "Val" text,
									 PRIMARY KEY ("Tenant Id", "Key"));
SELECT tenant_iso.protect('"My Schema"."Odd Name"', 'Tenant Id') \g /dev/null
INSERT INTO "My Schema"."Odd Name" VALUES ('ta', 1, 'a'), ('tb', 1, 'b');
GRANT USAGE ON SCHEMA "My Schema" TO integ_ma, integ_mb;
GRANT SELECT, INSERT, UPDATE, DELETE ON "My Schema"."Odd Name" TO integ_ma, integ_mb;
SELECT tenant_iso.track('"My Schema"."Odd Name"') \g /dev/null
SELECT is((SELECT relname FROM tenant_iso.tracked WHERE rel = '"My Schema"."Odd Name"'::regclass),
	'"My Schema"."Odd Name"',
	'tracked.relname quotes odd identifiers ("My Schema"."Odd Name")');
SET ROLE integ_ma;
INSERT INTO "My Schema"."Odd Name" ("Key", "Val") VALUES (2, 'x'), (3, 'y');
UPDATE "My Schema"."Odd Name" SET "Val" = "Val" || '!' WHERE "Key" = 1;
RESET ROLE;
SELECT is(h.v('"My Schema"."Odd Name"'), 'ta:3:ok tb:1:ok',
	'odd names: member writes are digested under the quoted name and verify() is clean');
SELECT is((SELECT count(*) FROM tenant_iso.digests
			WHERE relname NOT IN (SELECT relname FROM tenant_iso.tracked)), 0::bigint,
	'every digest row is keyed by a tracked table''s schema-qualified name');

-- untrack(), plain and partitioned
CREATE TABLE uu (id int PRIMARY KEY, v text);
INSERT INTO uu SELECT i, 'x' FROM generate_series(1, 5) i;
CREATE TABLE pu (k int PRIMARY KEY, v text) PARTITION BY RANGE (k);
CREATE TABLE pu1 PARTITION OF pu FOR VALUES FROM (0) TO (100);
CREATE TABLE pu2 PARTITION OF pu FOR VALUES FROM (100) TO (200);
INSERT INTO pu SELECT i, 'y' FROM generate_series(1, 150, 7) i;
SELECT tenant_iso.track('uu') \g /dev/null
SELECT tenant_iso.track('pu') \g /dev/null
SELECT is(format('%s triggers, %s digests', h.ntrig('uu', 'pu', 'pu1', 'pu2'), (h.ndig('public.uu') + h.ndig('public.pu') > 0)::text),
	'19 triggers, true digests', 'before untrack(): triggers on uu, pu, pu1, pu2 (a row trigger on each leaf) and digest rows exist');
SELECT tenant_iso.untrack('uu') \g /dev/null
SELECT tenant_iso.untrack('pu') \g /dev/null
SELECT is(h.ntrig('uu', 'pu', 'pu1', 'pu2'), 0::bigint,
	'untrack() drops the tenant_iso_digest_* triggers (of the partitions too)');
SELECT is(h.ndig('public.uu') + h.ndig('public.pu')
		  + (SELECT count(*) FROM tenant_iso.tracked WHERE relname IN ('public.uu', 'public.pu')), 0::bigint,
	'untrack() deletes the table''s digest rows and its registry row');
INSERT INTO uu VALUES (6, 'z');
INSERT INTO pu VALUES (160, 'z');
SELECT is(h.ndig('public.uu') + h.ndig('public.pu'), 0::bigint, 'writes after untrack() append no digest rows');
SELECT throws_ok($$SELECT * FROM tenant_iso.verify('uu')$$, '55000', NULL,
	'verify() of an untracked (formerly tracked) table fails with 55000');
SELECT throws_ok($$SELECT * FROM tenant_iso.verify('nopk')$$, '55000', NULL,
	'verify() of a never-tracked table fails with 55000');
SELECT lives_ok($$SELECT tenant_iso.untrack('nopk')$$, 'untrack() of an untracked table is a no-op');

-- =====================================================================
-- 3. Writes by tenant members; verify() after each kind of statement
-- =====================================================================
SET ROLE integ_ma;
INSERT INTO t (id, payload, n) SELECT i, 'm' || i, i FROM generate_series(100, 299) i;
RESET ROLE;
SELECT is(h.v('t'), 'ta:221:ok tb:20:ok', 'member multi-row INSERT (200 rows): verify() clean, counts right');

SET ROLE integ_ma;
UPDATE t SET payload = payload || '!', n = n * 2 WHERE id BETWEEN 100 AND 199;
UPDATE t SET payload = NULL WHERE id = 5;
RESET ROLE;
SELECT is(h.v('t'), 'ta:221:ok tb:20:ok', 'member UPDATEs (100 rows; a value to NULL): verify() clean');

SET ROLE integ_ma;
DELETE FROM t WHERE id BETWEEN 250 AND 299;
RESET ROLE;
SELECT is(h.v('t'), 'ta:171:ok tb:20:ok', 'member DELETE (50 rows): verify() clean, counts right');

SET ROLE integ_mb;
BEGIN;
INSERT INTO t (id, payload, n) VALUES (100, 'b100', 1), (101, 'b101', 2), (102, 'b102', 3);
SAVEPOINT s1;
DELETE FROM t;
UPDATE t SET n = -1;
ROLLBACK TO SAVEPOINT s1;
UPDATE t SET payload = 'b1' WHERE id = 1;
DELETE FROM t WHERE id = 2;
COMMIT;
BEGIN;
DELETE FROM t WHERE id < 10;
ROLLBACK;
RESET ROLE;
SELECT is(h.v('t'), 'ta:171:ok tb:22:ok',
	'member transaction with a rolled-back savepoint, and a rolled-back transaction: verify() clean');

SET ROLE integ_ma;
MERGE INTO t USING (VALUES (1, 'merged', false), (2, NULL, true), (900, 'm900', false)) AS s(id, p, del)
	ON t.id = s.id
	WHEN MATCHED AND s.del THEN DELETE
	WHEN MATCHED THEN UPDATE SET payload = s.p
	WHEN NOT MATCHED THEN INSERT (id, payload, n) VALUES (s.id, s.p, 9);
RESET ROLE;
SELECT is((SELECT string_agg(id || '=' || coalesce(payload, 'null'), ' ' ORDER BY id) FROM t
			WHERE tenant_id = 'ta' AND id IN (1, 2, 900)),
	'1=merged 900=m900', 'member MERGE updated, deleted and inserted (positive control)');
SELECT is(h.v('t'), 'ta:171:ok tb:22:ok', 'member MERGE (UPDATE + DELETE + INSERT): verify() clean');

SET ROLE integ_ma;
INSERT INTO t (id, payload, n) VALUES (1, 'oc1', 1), (901, 'oc901', 9)
	ON CONFLICT (tenant_id, id) DO UPDATE SET payload = excluded.payload, n = t.n + excluded.n;
INSERT INTO t (id, payload, n) VALUES (3, 'never', 0), (902, 'oc902', 0)
	ON CONFLICT DO NOTHING;
RESET ROLE;
SELECT is((SELECT string_agg(id || '=' || payload, ' ' ORDER BY id) FROM t
			WHERE tenant_id = 'ta' AND id IN (1, 3, 901, 902)),
	'1=oc1 3=p3 901=oc901 902=oc902', 'member INSERT ON CONFLICT updated / skipped / inserted (positive control)');
SELECT is(h.v('t'), 'ta:173:ok tb:22:ok', 'member INSERT .. ON CONFLICT DO UPDATE / DO NOTHING: verify() clean');

SET ROLE integ_ma;
COPY t (id, payload, n) FROM STDIN (FORMAT csv);
1000,c1000,1.5
1001,"c,1001",
1002,,2
\.
RESET ROLE;
SELECT is(h.v('t'), 'ta:176:ok tb:22:ok', 'member COPY FROM STDIN into a protected table (3 rows): verify() clean');

SET ROLE integ_ma;
WITH moved AS (DELETE FROM t WHERE id BETWEEN 10 AND 12 RETURNING id, payload, n)
INSERT INTO t (id, payload, n) SELECT id + 2000, payload, n FROM moved;
RESET ROLE;
SELECT is(h.v('t'), 'ta:176:ok tb:22:ok', 'member writable CTE (DELETE + INSERT in one statement): verify() clean');

SET ROLE integ_ma;
DO $$
BEGIN
	FOR i IN 1..150 LOOP
		UPDATE t SET n = coalesce(n, 0) + 1 WHERE id = 1 + (i % 20);
	END LOOP;
	INSERT INTO t (id, payload) VALUES (3000, 'plpgsql');
	DELETE FROM t WHERE id = 3000;
END
$$;
RESET ROLE;
SELECT is(h.v('t'), 'ta:176:ok tb:22:ok', 'member: 150 single-row UPDATEs in a DO block: verify() clean');

-- the unprotected table, written by a member (also TRUNCATE and COPY)
SET ROLE integ_ma;
INSERT INTO u SELECT i, 'x' || i FROM generate_series(11, 30) i;
UPDATE u SET v = v || '?' WHERE id % 2 = 0;
DELETE FROM u WHERE id > 25;
INSERT INTO u VALUES (1, 'dup'), (40, 'new') ON CONFLICT (id) DO UPDATE SET v = excluded.v;
RESET ROLE;
SELECT is(h.v('u'), ':26:ok', 'unprotected table, member INSERT/UPDATE/DELETE/ON CONFLICT: one clean row under tenant ''''');
SET ROLE integ_ma;
TRUNCATE u;
RESET ROLE;
SELECT is(h.v('u'), 'none', 'member TRUNCATE: verify() clean (stored digests went to zero with the rows)');
SET ROLE integ_ma;
COPY u FROM STDIN (FORMAT csv);
1,after truncate
2,
3,"x,y"
\.
RESET ROLE;
SELECT is(h.v('u'), ':3:ok', 'member COPY FROM STDIN into an unprotected table: verify() clean');
SELECT is(h.v('t'), h.expect('t'), 'verify() rows column equals the actual row count per tenant');

-- =====================================================================
-- 4. verify(): result shape, runs, detection, filters
-- =====================================================================
SELECT is((SELECT format('%s rows, %s distinct, all ok: %s', count(*), count(DISTINCT (rel, tenant_id)), bool_and(ok)::text)
			 FROM tenant_iso.verify()),
	'5 rows, 5 distinct, all ok: true',
	'verify() without arguments: one row per (table, tenant) over all (3) tracked tables, all clean');
SELECT is((SELECT format('%s rows, %s distinct, all ok: %s', count(*), count(DISTINCT (v.rel, v.tenant_id)), bool_and(v.ok)::text)
			 FROM tenant_iso.tracked tr, LATERAL tenant_iso.verify(tr.rel) v),
	'5 rows, 5 distinct, all ok: true',
	'verify(rel) for each tracked table: one row per (table, tenant), all clean');

DELETE FROM tenant_iso.verify_runs;
SELECT count(*) FROM tenant_iso.verify('t') \g /dev/null
SELECT is((SELECT string_agg(format('%s:%s:%s', relname, tenant_id, ok::text), ' ' ORDER BY tenant_id) FROM tenant_iso.verify_runs),
	'public.t:ta:true public.t:tb:true',
	'verify() records one verify_runs row per (table, tenant) with ok');

-- a change the trigger does not see
SET session_replication_role = replica;
UPDATE t SET payload = payload || '#' WHERE tenant_id = 'tb' AND id = 5;
RESET session_replication_role;
DELETE FROM tenant_iso.verify_runs;
SELECT is(h.v('t'), 'ta:176:ok tb:22:BAD',
	'a change made with session_replication_role = replica is detected, for that tenant only');
SELECT is((SELECT string_agg(format('%s:%s', tenant_id, (expected = actual)::text), ' ' ORDER BY tenant_id) FROM tenant_iso.verify('t')),
	'ta:true tb:false', 'verify(): expected <> actual for the tampered tenant only');
SELECT is((SELECT string_agg(format('%s:%s:%s', relname, tenant_id, ok::text), ' ' ORDER BY tenant_id) FROM tenant_iso.verify_runs),
	'public.t:ta:true public.t:ta:true public.t:tb:false public.t:tb:false',
	'verify_runs records the failed (tenant tb) runs with ok = false');
SELECT is(h.v('t', 'tb'), 'tb:22:BAD', 'verify(rel, tenant) returns only that tenant (tb)');
SELECT is(h.v('t', 'ta'), 'ta:176:ok', 'verify(rel, tenant) returns only that tenant (ta)');
SELECT is((SELECT string_agg(format('%s/%s/%s', rel, tenant_id, ok::text), ' ' ORDER BY rel::text COLLATE "C")
			 FROM tenant_iso.verify(NULL, 'tb')),
	'"My Schema"."Odd Name"/tb/true t/tb/false',
	'verify(NULL, tenant) covers every tracked table for that tenant only');
SET session_replication_role = replica;
UPDATE t SET payload = left(payload, -1) WHERE tenant_id = 'tb' AND id = 5;
RESET session_replication_role;
SELECT is(h.v('t'), 'ta:176:ok tb:22:ok', 'undoing the unseen change makes verify() clean again (digests are additive)');

-- =====================================================================
-- 5. compact_digests()
-- =====================================================================
SELECT count(*) AS dig_before FROM tenant_iso.digests \gset
SELECT tenant_iso.compact_digests() AS removed \gset
SELECT ok(:removed > 0, format('compact_digests() removed rows (%s of %s)', :removed, :dig_before));
SELECT is((SELECT count(*) FROM tenant_iso.digests), :dig_before - :removed::bigint,
	'compact_digests() returns exactly the number of rows it removed');
SELECT is((SELECT count(*) - count(DISTINCT (relname, tenant_id, bucket)) FROM tenant_iso.digests), 0::bigint,
	'after compact_digests(): at most one digest row per (table, tenant, bucket)');
SELECT is((SELECT string_agg(format('%s/%s/%s', v.rel, v.tenant_id, v.ok::text), ' ' ORDER BY v.rel::text COLLATE "C", v.tenant_id)
			 FROM tenant_iso.tracked tr, LATERAL tenant_iso.verify(tr.rel) v),
	'"My Schema"."Odd Name"/ta/true "My Schema"."Odd Name"/tb/true t/ta/true t/tb/true u//true',
	'verify(rel) of every tracked table stays clean after compact_digests()');
SELECT is(format('%s %s %s', h.v('t'), h.v('u'), h.v('"My Schema"."Odd Name"')),
	format('%s %s %s', h.expect('t'), h.expect('u', NULL), h.expect('"My Schema"."Odd Name"', 'Tenant Id')),
	'after compact_digests(): verify() row counts still match the tables');
SELECT is(tenant_iso.compact_digests(), 0::bigint, 'compact_digests() right after compact_digests() removes nothing');

-- =====================================================================
-- 6. Partitioned protected table (LIST by tenant, ta sub-partitioned by id)
-- =====================================================================
CREATE TABLE pt (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id))
	PARTITION BY LIST (tenant_id);
CREATE TABLE pt_ta PARTITION OF pt FOR VALUES IN ('ta') PARTITION BY RANGE (id);
CREATE TABLE pt_ta_lo PARTITION OF pt_ta FOR VALUES FROM (MINVALUE) TO (100);
CREATE TABLE pt_ta_hi PARTITION OF pt_ta FOR VALUES FROM (100) TO (MAXVALUE);
CREATE TABLE pt_tb PARTITION OF pt FOR VALUES IN ('tb');
SELECT tenant_iso.protect('pt') \g /dev/null
INSERT INTO pt SELECT x, i, 'v' || i FROM unnest(ARRAY['ta', 'tb']) x, generate_series(1, 10) i;
GRANT SELECT, INSERT, UPDATE, DELETE ON pt, pt_ta, pt_ta_lo, pt_ta_hi, pt_tb TO integ_ma, integ_mb;
SELECT tenant_iso.track('pt') \g /dev/null

SELECT is(h.ntrig('pt', 'pt_ta', 'pt_ta_lo', 'pt_ta_hi', 'pt_tb'), 23::bigint,
	'track(partitioned): digest triggers on the parent and every partition at every level');
SELECT is(h.v('pt'), 'ta:10:ok tb:10:ok', 'partitioned: verify() clean after track()');

SET ROLE integ_ma;
INSERT INTO pt (id, v) SELECT i, 'w' || i FROM generate_series(11, 20) i;
INSERT INTO pt (id, v) VALUES (150, 'hi');
UPDATE pt SET v = v || '+' WHERE id BETWEEN 1 AND 4;
DELETE FROM pt WHERE id = 9;
RESET ROLE;
SELECT is(h.v('pt'), 'ta:20:ok tb:10:ok', 'partitioned: member writes through the parent are reflected (verify clean)');

SET ROLE integ_ma;
INSERT INTO pt_ta_lo (tenant_id, id, v) VALUES ('ta', 30, 'direct'), ('ta', 31, 'direct');
INSERT INTO pt_ta (tenant_id, id, v) VALUES ('ta', 160, 'mid');
UPDATE pt_ta_lo SET v = 'upd' WHERE id = 30;
DELETE FROM pt_ta_hi WHERE id = 160;
RESET ROLE;
SET ROLE integ_mb;
INSERT INTO pt_tb (tenant_id, id, v) VALUES ('tb', 11, 'direct');
UPDATE pt_tb SET v = 'x' WHERE id = 1;
DELETE FROM pt_tb WHERE id = 2;
RESET ROLE;
SELECT is(h.v('pt'), 'ta:22:ok tb:10:ok', 'partitioned: member writes directly into (sub-)partitions are reflected (verify clean)');

SET ROLE integ_ma;
UPDATE pt SET id = id + 100 WHERE id = 5;
UPDATE pt_ta SET id = id - 100 WHERE id = 150;
RESET ROLE;
SELECT is((SELECT string_agg(id || '@' || tableoid::regclass, ' ' ORDER BY id) FROM pt
			WHERE tenant_id = 'ta' AND id IN (5, 50, 105, 150)),
	'50@pt_ta_lo 105@pt_ta_hi', 'UPDATEs of id moved rows across sub-partitions (positive control)');
SELECT is(h.v('pt'), 'ta:22:ok tb:10:ok',
	'partitioned: UPDATE moving a row across partitions (via the parent and via a mid-level partition): verify clean');

UPDATE pt SET tenant_id = 'tb' WHERE tenant_id = 'ta' AND id = 20;
SELECT is(h.v('pt'), 'ta:21:ok tb:11:ok',
	'partitioned: superuser UPDATE moving a row to another tenant''s partition: verify clean');

TRUNCATE pt_tb;
SELECT is(h.v('pt'), 'ta:21:ok', 'partitioned: TRUNCATE of one partition keeps verify() clean');
TRUNCATE pt_ta_hi;
SELECT is(h.v('pt'), h.expect('pt'), 'partitioned: TRUNCATE of one sub-partition keeps verify() clean');

CREATE TABLE pt_td PARTITION OF pt FOR VALUES IN ('td');
SELECT tenant_iso.track('pt') \g /dev/null
SELECT is(h.ntrig('pt_td'), 5::bigint, 'track() again gives a partition added since its digest triggers');
INSERT INTO pt_td VALUES ('td', 1, 'direct');
INSERT INTO pt VALUES ('td', 2, 'routed');
SELECT is(h.v('pt'), h.expect('pt'), 'partitioned: writes into the new partition are reflected (verify clean)');

-- =====================================================================
-- 7. Canonical row hashes: table rewrites and session settings
-- =====================================================================
SELECT getdatabaseencoding() = 'UTF8' AS is_utf8 \gset

CREATE TABLE ty (tenant_id text NOT NULL, id int NOT NULL, ts timestamptz, f float8, n numeric, b bytea,
				 j jsonb, arr text[], u uuid, d date, iv interval, flag boolean, tx text,
				 PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('ty') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON ty TO integ_ma, integ_mb;

-- settings A
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, MDY';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 1;
SET bytea_output = 'hex';
SET client_encoding = 'UTF8';
SET ROLE integ_ma;
INSERT INTO ty (id, ts, f, n, b, j, arr, u, d, iv, flag, tx) VALUES
	(1, '2024-03-10 02:30:00.123456+00', 0.1, 1.10, '\x00ff10', E'{"a": 1.50, "b": [1, "x", null], "c": "e\u00e9\u20ac"}',
	 ARRAY['a', E'\u00e9', E'\u20ac', NULL], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29',
	 '1 year 2 mons 3 days 04:05:06.789', true, E'caf\u00e9 \u20ac'),
	(2, '-infinity', 'NaN', 'NaN', '', '[]', '{}', '00000000-0000-0000-0000-000000000000', 'infinity',
	 '-1 day +02:00', false, ''),
	(3, now(), 1e-310, 123456789012345678901234567890.000000000001,
	 (SELECT decode(string_agg(md5(i::text), ''), 'hex') FROM generate_series(1, 10000) i),
	 (SELECT jsonb_object_agg('k' || i, i * 0.5) FROM generate_series(1, 2000) i),
	 (SELECT array_agg(repeat(E'\u00fc', i % 50)) FROM generate_series(1, 500) i),
	 gen_random_uuid(), '0001-01-01 BC', '-1000 years 3 mons', NULL, repeat(E'abc\u00e9', 100000)),
	(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(5, '1999-12-31 23:59:59.999999-08', '-0', -0.000, '\x5c27', '{"x": {"y": [true, false]}}',
	 ARRAY[['a', 'b'], ['c', 'd']], 'ffffffff-ffff-ffff-ffff-ffffffffffff', '2000-01-01', '0', true, E'tab\there');
RESET ROLE;
INSERT INTO ty (tenant_id, id, ts, f, n, tx) VALUES ('tb', 1, '2020-01-01 00:00+00', 2.5, 2.50, 'tb row');
SELECT tenant_iso.track('ty') \g /dev/null
SELECT is(h.v('ty'), 'ta:5:ok tb:1:ok', 'types: verify() clean after track() (settings A: UTC, ISO, hex, UTF8)');

-- settings B
SET TimeZone = 'America/St_Johns';
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'iso_8601';
SET extra_float_digits = -15;
SET bytea_output = 'escape';
\if :is_utf8
SET client_encoding = 'LATIN1';
\endif
SELECT current_setting('client_encoding') AS enc_b \gset
SELECT is(h.v('ty'), 'ta:5:ok tb:1:ok',
	'types: verify() clean under other TimeZone, DateStyle, IntervalStyle, extra_float_digits, bytea_output, client_encoding (LATIN1)');
SELECT is(pg_client_encoding(), :'enc_b', 'verify() leaves the session''s client_encoding as it was');
SET ROLE integ_ma;
UPDATE ty SET ts = ts + interval '1 day 1 hour', f = f * 3, n = n * 1.5, b = b || '\x00'::bytea,
	j = j || jsonb_build_object('k', E'\u00fc\u20ac', 'f', 1.0e-3), arr = array_append(arr, E'\u00f1'),
	iv = iv * 2, d = d + 1, flag = NOT flag, tx = tx || E'\u00e9'
	WHERE id IN (1, 3);
INSERT INTO ty (id, ts, f, n, b, j, arr, u, d, iv, flag, tx) VALUES
	(6, '10/03/2024 02:30', '1.5e300', '0.1', E'\\001\\377', E'{"\u20ac": "\u00e9"}', ARRAY[E'\u20ac'],
	 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12', '29/02/2024', 'P1Y2M3DT4H5M6S', true, E'\u00e9\u20ac');
RESET ROLE;
UPDATE ty SET ts = '01/06/2021 12:00', tx = E'tb \u20ac' WHERE tenant_id = 'tb';
SELECT is(pg_client_encoding(), :'enc_b', 'the digest trigger leaves the session''s client_encoding as it was');

-- settings C
SET TimeZone = 'Asia/Kathmandu';
SET DateStyle = 'German, DMY';
SET IntervalStyle = 'postgres_verbose';
SET extra_float_digits = 3;
SET bytea_output = 'hex';
SET client_encoding = 'UTF8';
SELECT is(h.v('ty'), 'ta:6:ok tb:1:ok', 'types: writes under settings B verify clean under settings C');
SET ROLE integ_ma;
UPDATE ty SET ts = '01.02.2023 03:04:05', f = f / 7, iv = iv - '1 second', j = j - 'a', tx = tx || '.'
	WHERE id IN (1, 2, 5, 6);
DELETE FROM ty WHERE id = 4;
RESET ROLE;

-- back to A
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, MDY';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 1;
\if :is_utf8
SET client_encoding = 'LATIN1';
SELECT is(h.v('ty'), 'ta:5:ok tb:1:ok', 'types: writes under settings C verify clean under settings A with LATIN1');
SET client_encoding = 'UTF8';
\else
SELECT is(h.v('ty'), 'ta:5:ok tb:1:ok', 'types: writes under settings C verify clean under settings A');
\endif

VACUUM FULL ty;
SELECT is(h.v('ty'), 'ta:5:ok tb:1:ok', 'types: verify() clean after VACUUM FULL (TOASTed and inline values)');
CLUSTER ty USING ty_pkey;
SELECT is(h.v('ty'), 'ta:5:ok tb:1:ok', 'types: verify() clean after CLUSTER');
VACUUM FULL t;
CLUSTER t USING t_pkey;
VACUUM FULL pt;
SELECT is(format('%s %s', h.v('t'), h.v('pt')), format('%s %s', h.expect('t'), h.expect('pt')),
	't and pt: verify() clean after VACUUM FULL / CLUSTER');

-- =====================================================================
-- 8. diff_peer() / repair_from_peer() against a second database
-- =====================================================================
SELECT set_config('integ.peerdb', 'integ_peer_' || substr(md5(random()::text || clock_timestamp()::text), 1, 10), false)
	\g /dev/null
SELECT dblink_exec(h.admin(), format('CREATE DATABASE %I', current_setting('integ.peerdb'))) \g /dev/null
SELECT dblink_exec(h.peer(), 'CREATE EXTENSION tenant_iso') \g /dev/null

SELECT h.both($$CREATE TABLE public.r (tenant_id text NOT NULL, id int NOT NULL, v text, n numeric, ts timestamptz,
									   PRIMARY KEY (tenant_id, id))$$) \g /dev/null
SELECT tenant_iso.protect('r') \g /dev/null
SELECT * FROM dblink(h.peer(), $$SELECT tenant_iso.protect('public.r')::text$$) AS x(v text) \g /dev/null
SELECT h.both($$INSERT INTO public.r SELECT x, i, 'v' || i, i * 1.25, timestamptz '2024-01-01 00:00+00' + i * interval '1 hour'
				  FROM unnest(ARRAY['ta', 'tb']) x, generate_series(1, 20) i$$) \g /dev/null
SELECT tenant_iso.track('r') \g /dev/null
-- a peer answers only for tables it tracks itself
SELECT * FROM dblink(h.peer(), $$SELECT tenant_iso.track('public.r')::text$$) AS x(v text) \g /dev/null

SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.diff_peer('r', %L)$$, h.peer())), 'none',
	'diff_peer(): identical tables on both nodes give no row');

-- the peer diverges
SELECT dblink_exec(h.peer(), $$DELETE FROM public.r WHERE tenant_id = 'ta' AND id = 3$$) \g /dev/null
SELECT dblink_exec(h.peer(), $$INSERT INTO public.r VALUES ('ta', 25, 'peer only', 0, now())$$) \g /dev/null
SELECT dblink_exec(h.peer(), $$UPDATE public.r SET v = 'changed on peer' WHERE tenant_id = 'tb' AND id = 7$$) \g /dev/null
SELECT dblink_exec(h.peer(), $$UPDATE public.r SET ts = ts + interval '1 microsecond' WHERE tenant_id = 'tb' AND id = 8$$) \g /dev/null

SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.diff_peer('r', %L)$$, h.peer())),
	'ta {"id": 25, "tenant_id": "ta"} missing_here; ta {"id": 3, "tenant_id": "ta"} missing_on_peer; '
	'tb {"id": 7, "tenant_id": "tb"} differs; tb {"id": 8, "tenant_id": "tb"} differs',
	'diff_peer(): missing_on_peer, missing_here and differs (even by 1 microsecond)');
SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.diff_peer('r', %L, 'tb')$$, h.peer())),
	'tb {"id": 7, "tenant_id": "tb"} differs; tb {"id": 8, "tenant_id": "tb"} differs',
	'diff_peer(rel, peer, tenant) only reports that tenant');
SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.diff_peer('r', %L, 'tc')$$, h.peer())), 'none',
	'diff_peer() for a tenant without rows reports nothing');

SELECT md5(string_agg(r::text, ',' ORDER BY tenant_id, id)) AS r_before FROM r \gset
SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.repair_from_peer('r', %L)$$, h.peer())),
	'ta {"id": 25, "tenant_id": "ta"} would insert; ta {"id": 3, "tenant_id": "ta"} would delete; '
	'tb {"id": 7, "tenant_id": "tb"} would update; tb {"id": 8, "tenant_id": "tb"} would update',
	'repair_from_peer() defaults to dry_run: it reports what it would do');
SELECT is((SELECT md5(string_agg(r::text, ',' ORDER BY tenant_id, id)) FROM r), :'r_before',
	'repair_from_peer() dry run changes nothing');

SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.repair_from_peer('r', %L, 'tb', dry_run => false)$$, h.peer())),
	'tb {"id": 7, "tenant_id": "tb"} updated; tb {"id": 8, "tenant_id": "tb"} updated',
	'repair_from_peer(tenant => tb, dry_run => false) repairs only tenant tb');
SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.diff_peer('r', %L)$$, h.peer())),
	'ta {"id": 25, "tenant_id": "ta"} missing_here; ta {"id": 3, "tenant_id": "ta"} missing_on_peer',
	'after the tb repair only the ta differences remain');
SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.repair_from_peer('r', %L, dry_run => false)$$, h.peer())),
	'ta {"id": 25, "tenant_id": "ta"} inserted; ta {"id": 3, "tenant_id": "ta"} deleted',
	'repair_from_peer(dry_run => false) deletes and inserts');
SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.diff_peer('r', %L)$$, h.peer())), 'none',
	'after the repair diff_peer() finds no difference');
SELECT is((SELECT string_agg(r::text, ',' ORDER BY tenant_id, id) FROM r),
	(SELECT s FROM dblink(h.peer(), $$SELECT string_agg(r::text, ',' ORDER BY tenant_id, id) FROM public.r$$) AS x(s text)),
	'after the repair the local rows equal the peer''s, value for value');
SELECT is(h.v('r'), 'ta:20:ok tb:20:ok', 'the repair went through the digest triggers: verify() clean');

-- odd names on the peer
SELECT dblink_exec(h.peer(), $$CREATE SCHEMA "My Schema"$$) \g /dev/null
SELECT dblink_exec(h.peer(), $$CREATE TABLE "My Schema"."Odd Name" ("Tenant Id" text NOT NULL, "Key" int NOT NULL, "Val" text,
																	 PRIMARY KEY ("Tenant Id", "Key"))$$) \g /dev/null
SELECT * FROM dblink(h.peer(), $$SELECT tenant_iso.protect('"My Schema"."Odd Name"', 'Tenant Id')::text$$) AS x(v text) \g /dev/null
SELECT dblink_exec(h.peer(), 'INSERT INTO "My Schema"."Odd Name" VALUES '
	|| (SELECT string_agg(format('(%L, %s, %L)', "Tenant Id", "Key", "Val"), ', ') FROM "My Schema"."Odd Name")) \g /dev/null
SELECT dblink_exec(h.peer(), $$UPDATE "My Schema"."Odd Name" SET "Val" = 'peer' WHERE "Tenant Id" = 'ta' AND "Key" = 2$$) \g /dev/null
SELECT * FROM dblink(h.peer(), $$SELECT tenant_iso.track('"My Schema"."Odd Name"')::text$$) AS x(v text) \g /dev/null
SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.diff_peer('"My Schema"."Odd Name"', %L)$$, h.peer())),
	'ta {"Key": 2, "Tenant Id": "ta"} differs',
	'diff_peer() works on a table with quoted schema, table and column names');

-- unreachable peer
SELECT throws_ok($$SELECT * FROM tenant_iso.diff_peer('r', 'host=127.0.0.1 port=1 user=postgres password=sekrit dbname=x')$$,
	'08001', NULL, 'diff_peer(): an unreachable peer gives 08001');
SELECT throws_ok($$SELECT * FROM tenant_iso.repair_from_peer('r', 'host=127.0.0.1 port=1 user=postgres password=sekrit dbname=x', dry_run => false)$$,
	'08001', NULL, 'repair_from_peer(): an unreachable peer gives 08001');
SELECT is(position('sekrit' IN h.errtext($$SELECT * FROM tenant_iso.diff_peer('r', 'host=127.0.0.1 port=1 user=postgres password=sekrit dbname=x')$$)), 0,
	'the unreachable-peer error (message, detail, hint) does not contain the password');

-- =====================================================================
-- 9. Further cases (each on its own table, so that it cannot affect the above)
-- =====================================================================

-- a partition whose columns are in another order than the parent's
CREATE TABLE pt2 (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id))
	PARTITION BY LIST (tenant_id);
CREATE TABLE pt2_ta PARTITION OF pt2 FOR VALUES IN ('ta');
CREATE TABLE pt2_tc (v text, id int NOT NULL, tenant_id text NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE pt2 ATTACH PARTITION pt2_tc FOR VALUES IN ('tc');
SELECT tenant_iso.protect('pt2') \g /dev/null
SELECT tenant_iso.track('pt2') \g /dev/null
INSERT INTO pt2 VALUES ('ta', 1, 'x'), ('tc', 1, 'y');
SELECT is(h.v('pt2'), 'ta:1:ok tc:1:ok',
	'partitioned: a row written through the parent into a partition with another column order verifies clean');

-- TRUNCATE of a partitioned table
CREATE TABLE pq (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id);
CREATE TABLE pq_ta PARTITION OF pq FOR VALUES IN ('ta');
CREATE TABLE pq_tb PARTITION OF pq FOR VALUES IN ('tb');
SELECT tenant_iso.protect('pq') \g /dev/null
SELECT tenant_iso.track('pq') \g /dev/null
INSERT INTO pq VALUES ('ta', 1), ('ta', 2), ('tb', 1);
TRUNCATE pq;
SELECT is(h.v('pq'), 'none', 'partitioned: TRUNCATE of the parent keeps verify() clean');
TRUNCATE pt_ta;
SELECT is(h.v('pt'), h.expect('pt'), 'partitioned: TRUNCATE of a partition that is itself partitioned keeps verify() clean');

-- repair of a partitioned table
SELECT h.both($$CREATE TABLE public.rp (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id))
				  PARTITION BY LIST (tenant_id)$$) \g /dev/null
SELECT h.both($$CREATE TABLE public.rp_ta PARTITION OF public.rp FOR VALUES IN ('ta')$$) \g /dev/null
SELECT h.both($$CREATE TABLE public.rp_tb PARTITION OF public.rp FOR VALUES IN ('tb')$$) \g /dev/null
SELECT tenant_iso.protect('rp') \g /dev/null
SELECT * FROM dblink(h.peer(), $$SELECT tenant_iso.protect('public.rp')::text$$) AS x(v text) \g /dev/null
SELECT h.both($$INSERT INTO public.rp VALUES ('ta', 1, 'a'), ('tb', 1, 'b')$$) \g /dev/null
SELECT tenant_iso.track('rp') \g /dev/null
SELECT * FROM dblink(h.peer(), $$SELECT tenant_iso.track('public.rp')::text$$) AS x(v text) \g /dev/null
SELECT dblink_exec(h.peer(), $$INSERT INTO public.rp VALUES ('ta', 2, 'peer')$$) \g /dev/null
SELECT dblink_exec(h.peer(), $$UPDATE public.rp SET v = 'peer' WHERE tenant_id = 'tb' AND id = 1$$) \g /dev/null
SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.diff_peer('rp', %L)$$, h.peer())),
	'ta {"id": 2, "tenant_id": "ta"} missing_here; tb {"id": 1, "tenant_id": "tb"} differs',
	'partitioned: diff_peer() finds the differences');
SELECT is(h.errtext(format($$SELECT * FROM tenant_iso.repair_from_peer('rp', %L, dry_run => false)$$, h.peer())), 'no error',
	'partitioned: repair_from_peer(dry_run => false) succeeds');
SELECT is(h.diffs(format($$SELECT * FROM tenant_iso.diff_peer('rp', %L)$$, h.peer())), 'none',
	'partitioned: after repair_from_peer() no difference remains');

-- a malformed peer URI holding a password
SELECT is(position('sekrit' IN h.errtext($$SELECT * FROM tenant_iso.diff_peer('r', 'postgresql://postgres:sekrit%zz@127.0.0.1:1/x')$$)), 0,
	'diff_peer(): the error for a malformed peer URI does not contain its password');

-- drop the peer database
SELECT dblink_exec(h.admin(), format('DROP DATABASE %I WITH (FORCE)', current_setting('integ.peerdb'))) \g /dev/null
SELECT is((SELECT count(*) FROM pg_database WHERE datname = current_setting('integ.peerdb')), 0::bigint,
	'the peer database was dropped');

-- a tracked table is dropped (last: a stale registry row would break verify())
CREATE TABLE dropme (id int PRIMARY KEY);
INSERT INTO dropme VALUES (1);
SELECT tenant_iso.track('dropme') \g /dev/null
DROP TABLE dropme;
SELECT is(format('%s tracked, %s digests', (SELECT count(*) FROM tenant_iso.tracked WHERE relname = 'public.dropme'),
				 h.ndig('public.dropme')),
	'0 tracked, 0 digests',
	'DROP TABLE of a tracked table removes it from tenant_iso.tracked and drops its digests');
SELECT is(h.errtext('SELECT count(*) FROM tenant_iso.verify()'), 'no error',
	'verify() without arguments still works after a tracked table was dropped');
SELECT is(h.errtext('SELECT count(*) FROM tenant_iso.tracked tr, LATERAL tenant_iso.verify(tr.rel) v'), 'no error',
	'verify(rel) of every tracked table still works after a tracked table was dropped');

SELECT * FROM finish();

-- ---------------------------------------------------------------------
-- Cleanup: roles are cluster-wide
-- ---------------------------------------------------------------------
RESET ROLE;
SET client_min_messages = error;
DO $$
DECLARE
	r text;
BEGIN
	FOR r IN SELECT datname FROM pg_database WHERE datname = current_setting('integ.peerdb', true) LOOP
		PERFORM dblink_exec(h.admin(), format('DROP DATABASE IF EXISTS %I WITH (FORCE)', r));
	END LOOP;
	PERFORM tenant_iso.remove_member(m.member) FROM tenant_iso.members m
	  WHERE m.member::text IN ('integ_ma', 'integ_mb');
	FOREACH r IN ARRAY ARRAY['integ_plain', 'integ_ma', 'integ_mb'] LOOP
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
