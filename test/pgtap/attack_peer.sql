-- test/pgtap/attack_peer.sql
--
-- A peer is verified, never believed (issue 11, part 1).  The peer is a
-- second database of this cluster whose superuser is hostile: it replaces
-- tenant_iso._bucket_rows() and _bucket_digests() with functions that lie
-- (mode in public.hostile), and serves rows of another tenant, wrong
-- hashes, digests and rows it was not asked for, or nothing at all for a
-- long time.  One psql session as the superuser of the local database.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;
CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public;

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pe_admin') THEN
		EXECUTE 'DROP OWNED BY pe_admin CASCADE';
		DROP ROLE pe_admin;
	END IF;
END
$$;

\ir include/h.sql
-- the same, catching a cancel too
CREATE FUNCTION h.run_cancel(q text) RETURNS text
LANGUAGE plpgsql AS $f$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN query_canceled THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;
CREATE FUNCTION h.peer(extra text DEFAULT 'sslmode=disable') RETURNS text
LANGUAGE sql AS $f$
	SELECT format('host=127.0.0.1 port=%s user=postgres dbname=pe_peer %s', current_setting('port'), extra)
$f$;
CREATE FUNCTION h.remote(q text) RETURNS void
LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.dblink_exec(h.peer(), q); END $f$;

DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('ta');
	PERFORM tenant_iso.create_tenant('tb');
END
$$;
CREATE TABLE public.pe_r (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
INSERT INTO public.pe_r SELECT t, i, t || '-' || i FROM unnest(ARRAY['ta', 'tb']) t, generate_series(1, 30) i;
SELECT tenant_iso.protect('public.pe_r') \g /dev/null
SELECT tenant_iso.track('public.pe_r') \g /dev/null
CREATE FUNCTION h.fp() RETURNS text
LANGUAGE sql AS $f$ SELECT md5(string_agg(r::text, ',' ORDER BY tenant_id, id)) FROM public.pe_r r $f$;

-- the peer: same table, one ta row different, then the lies
SELECT public.dblink_exec(format('host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable',
	current_setting('port')), 'DROP DATABASE IF EXISTS pe_peer WITH (FORCE)') \g /dev/null
SELECT public.dblink_exec(format('host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable',
	current_setting('port')), 'CREATE DATABASE pe_peer') \g /dev/null
SELECT h.remote($$
	CREATE EXTENSION tenant_iso;
	DO 'BEGIN PERFORM tenant_iso.create_tenant(''ta''); PERFORM tenant_iso.create_tenant(''tb''); END';
	CREATE TABLE public.pe_r (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
	INSERT INTO public.pe_r SELECT t, i, t || '-' || i FROM unnest(ARRAY['ta', 'tb']) t, generate_series(1, 30) i;
	UPDATE public.pe_r SET v = 'peer version' WHERE tenant_id = 'ta' AND id = 5;
	DO 'BEGIN PERFORM tenant_iso.protect(''public.pe_r''); PERFORM tenant_iso.track(''public.pe_r''); END';
	CREATE TABLE public.hostile (mode text);
	INSERT INTO public.hostile VALUES ('honest');
	CREATE FUNCTION public.real_rows(text, text[], int, int[])
		RETURNS TABLE (tenant_id text, bucket int, leaf oid, tid tid, rowhash bytea)
		AS '$libdir/tenant_iso', 'ti_bucket_rows' LANGUAGE C;
	CREATE FUNCTION public.real_digests(text, text[], int)
		RETURNS TABLE (tenant_id text, bucket int, rows bigint, fingerprint text)
		AS '$libdir/tenant_iso', 'ti_bucket_digests' LANGUAGE C;
	CREATE OR REPLACE FUNCTION tenant_iso._bucket_rows(relname text, tenants text[], nbuckets int, buckets int[])
		RETURNS TABLE (tenant_id text, bucket int, leaf oid, tid tid, rowhash bytea)
		LANGUAGE plpgsql AS $f$
	DECLARE
		m text := (SELECT mode FROM public.hostile);
	BEGIN
		IF m = 'wronghash' THEN
			RETURN QUERY SELECT b.tenant_id, b.bucket, b.leaf, b.tid, decode(repeat('ab', 16), 'hex')
						   FROM public.real_rows(relname, tenants, nbuckets, buckets) b;
		ELSIF m = 'othertenant' THEN
			RETURN QUERY SELECT b.tenant_id, b.bucket, b.leaf, b.tid, b.rowhash
						   FROM public.real_rows(relname, tenants, nbuckets, buckets) b
						 UNION ALL
						 SELECT 'tb', buckets[1], r.tableoid, r.ctid, decode(repeat('cd', 16), 'hex')
						   FROM public.pe_r r WHERE r.tenant_id = 'tb' AND r.id = 1;
		ELSIF m = 'relabel' THEN
			-- a row of tb, announced as a row of the tenant asked for
			RETURN QUERY SELECT b.tenant_id, b.bucket, b.leaf, b.tid, b.rowhash
						   FROM public.real_rows(relname, tenants, nbuckets, buckets) b
						 UNION ALL
						 SELECT tenants[1], buckets[1], r.tableoid, r.ctid, x.rowhash
						   FROM public.pe_r r
						   JOIN public.real_rows(relname, array_fill('tb'::text, ARRAY[nbuckets]), nbuckets,
												 ARRAY(SELECT generate_series(0, nbuckets - 1))) x ON x.tid = r.ctid
						  WHERE r.tenant_id = 'tb' AND r.id = 2;
		ELSE
			RETURN QUERY SELECT * FROM public.real_rows(relname, tenants, nbuckets, buckets);
		END IF;
	END
	$f$;
	CREATE OR REPLACE FUNCTION tenant_iso._bucket_digests(relname text, tenants text[], nbuckets int)
		RETURNS TABLE (tenant_id text, bucket int, rows bigint, fingerprint text)
		LANGUAGE plpgsql AS $f$
	DECLARE
		m text := (SELECT mode FROM public.hostile);
	BEGIN
		IF m = 'slow' THEN
			PERFORM pg_sleep(60);
		END IF;
		RETURN QUERY SELECT * FROM public.real_digests(relname, tenants, nbuckets);
		IF m = 'digests_other' THEN
			RETURN QUERY SELECT 'tz'::text, 0, 1::bigint, repeat('0', 32);
		ELSIF m = 'digests_range' THEN
			RETURN QUERY SELECT tenants[1], nbuckets + 7, 1::bigint, repeat('0', 32);
		END IF;
	END
	$f$;
$$);

CREATE FUNCTION h.mode(m text) RETURNS void
LANGUAGE sql AS $f$ SELECT h.remote(format('UPDATE public.hostile SET mode = %L', m)) $f$;

SELECT plan(23);

-- ---------------------------------------------------------------------
-- Control: the honest peer
-- ---------------------------------------------------------------------
SELECT is((SELECT string_agg(tenant_id || ' ' || key || ' ' || status, '; ')
		     FROM tenant_iso.diff_peer('public.pe_r', h.peer(), 'ta')),
	'ta {"id": 5, "tenant_id": "ta"} differs', 'honest peer: diff_peer() finds the one ta row');
SELECT h.fp() AS fp0 \gset

-- ---------------------------------------------------------------------
-- Lies
-- ---------------------------------------------------------------------
SELECT h.mode('wronghash');
SELECT is(h.run($$SELECT * FROM tenant_iso.repair_from_peer('public.pe_r', h.peer(), 'ta', dry_run => false)$$),
	'ERROR XX001', 'wrong hashes: repair_from_peer() aborts with XX001');
SELECT is(h.fp(), :'fp0', 'wrong hashes: ... and wrote nothing');

SELECT h.mode('othertenant');
SELECT is(h.run($$SELECT * FROM tenant_iso.diff_peer('public.pe_r', h.peer(), 'ta')$$),
	'ERROR XX001', 'rows of another tenant: diff_peer(..., ta) aborts with XX001');
SELECT is(h.run($$SELECT * FROM tenant_iso.repair_from_peer('public.pe_r', h.peer(), 'ta', dry_run => false)$$),
	'ERROR XX001', 'rows of another tenant: repair_from_peer(..., ta) aborts with XX001');
SELECT is(h.fp(), :'fp0', 'rows of another tenant: ... and wrote nothing');
SELECT ok(h.msg($$SELECT * FROM tenant_iso.diff_peer('public.pe_r', h.peer(), 'ta')$$) !~ 'tb|pe_r.*id|"id"',
	'rows of another tenant: the error names neither the tenant nor a key');

SELECT h.mode('relabel');
SELECT is(h.run($$SELECT * FROM tenant_iso.repair_from_peer('public.pe_r', h.peer(), 'ta', dry_run => false)$$),
	'ERROR XX001', 'a tb row announced as ta: repair_from_peer(..., ta) aborts with XX001');
SELECT is(h.fp(), :'fp0', 'a tb row announced as ta: ... and wrote nothing');
SELECT is((SELECT count(*) FROM public.pe_r WHERE tenant_id = 'ta'), 30::bigint,
	'a tb row announced as ta: ta still has exactly its own 30 rows');

SELECT h.mode('digests_other');
SELECT is(h.run($$SELECT * FROM tenant_iso.diff_peer('public.pe_r', h.peer(), 'ta')$$),
	'ERROR XX001', 'digests of a tenant not asked for: XX001');
SELECT h.mode('digests_range');
SELECT is(h.run($$SELECT * FROM tenant_iso.diff_peer('public.pe_r', h.peer(), 'ta')$$),
	'ERROR XX001', 'digests of a bucket that does not exist: XX001');

SELECT h.mode('honest');
SELECT is(h.run($$SELECT * FROM tenant_iso.repair_from_peer('public.pe_r', h.peer(), 'ta', dry_run => false)$$),
	'ok 1', 'honest again: the repair goes through');
SELECT is((SELECT v FROM public.pe_r WHERE tenant_id = 'ta' AND id = 5), 'peer version',
	'honest again: ... and wrote the peer''s version');
SELECT is((SELECT string_agg(tenant_id || ':' || ok, ' ' ORDER BY tenant_id) FROM tenant_iso.verify('public.pe_r')),
	'ta:true tb:true', 'honest again: verify() is clean');

-- ---------------------------------------------------------------------
-- Waiting on the peer honours cancel
-- ---------------------------------------------------------------------
SELECT h.mode('slow');
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '1s';
SELECT is(h.run_cancel($$SELECT * FROM tenant_iso.diff_peer('public.pe_r', h.peer())$$), 'ERROR 57014',
	'a peer that does not answer: statement_timeout cancels diff_peer() (57014)');
RESET statement_timeout;
SELECT ok(clock_timestamp() - :'t0'::timestamptz < interval '15 seconds',
	'... promptly, not after the peer''s 60 seconds');
SELECT h.mode('honest');

-- ---------------------------------------------------------------------
-- TLS by default, and no lent credentials
-- ---------------------------------------------------------------------
SELECT is(h.run(format($$SELECT * FROM tenant_iso.diff_peer('public.pe_r', %L)$$, h.peer(''))), 'ERROR 08001',
	'no sslmode in the conninfo: verify-full, so a peer without TLS is refused (08001)');
SELECT ok(h.msg(format($$SELECT * FROM tenant_iso.diff_peer('public.pe_r', %L)$$, h.peer(''))) ~* 'ssl',
	'... and the detail says why (SSL)');

CREATE ROLE pe_admin;
GRANT USAGE ON SCHEMA h TO pe_admin;
GRANT SELECT ON public.pe_r TO pe_admin;
GRANT EXECUTE ON FUNCTION tenant_iso.diff_peer(regclass, text, text) TO pe_admin;
SET ROLE pe_admin;
SELECT is(h.run($$SELECT * FROM tenant_iso.diff_peer('public.pe_r', h.peer())$$), 'ERROR 2F003',
	'non-superuser without a password in the conninfo: 2F003, this server''s credentials are not lent');
SELECT is(h.run($$SELECT * FROM tenant_iso.diff_peer('public.pe_r', h.peer('sslmode=disable password=whatever'))$$), 'ERROR 2F003',
	'non-superuser with a password the peer never asked for (trust): 2F003');
RESET ROLE;

-- the peer-side functions: tracked tables only, and only for readers
CREATE TABLE public.pe_untracked (id int PRIMARY KEY);
SELECT is(h.run($$SELECT * FROM tenant_iso._bucket_digests('public.pe_untracked', NULL, 1)$$), 'ERROR 55000',
	'_bucket_digests() of a table that is not tracked: 55000');
GRANT EXECUTE ON FUNCTION tenant_iso._bucket_rows(text, text[], int, int[]) TO pe_admin;
REVOKE SELECT ON public.pe_r FROM pe_admin;
SET ROLE pe_admin;
SELECT is(h.run($$SELECT * FROM tenant_iso._bucket_rows('public.pe_r', ARRAY['ta'], 1, ARRAY[0])$$), 'ERROR 42501',
	'_bucket_rows() for a caller without SELECT on the table: 42501');
RESET ROLE;

SELECT * FROM finish();

SET client_min_messages = error;
SELECT public.dblink_exec(format('host=127.0.0.1 port=%s user=postgres dbname=postgres sslmode=disable',
	current_setting('port')), 'DROP DATABASE IF EXISTS pe_peer WITH (FORCE)') \g /dev/null
DROP OWNED BY pe_admin CASCADE;
DROP ROLE pe_admin;
