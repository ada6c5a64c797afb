CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;
-- test/pgtap/reencrypt.sql: tenant_iso.reencrypt(rel, col, context, batch_size).
--
-- reencrypt() rewrites, across all tenants, every value of a bytea column of
-- a protected table that is not under its tenant's active key version; a
-- dynamic background worker does the work and commits ranges of blocks.
-- Covered: counts and rerun, key versions afterwards (against the
-- tenant_iso.keys view), plaintexts (decrypted by each tenant's member role),
-- untouched values (current version, NULL, non-envelopes, destroyed keys),
-- values that do not open (a wrong context: skipped and reported by
-- reencrypt_failures(), the run completes), argument errors,
-- privileges (EXECUTE, SELECT + UPDATE on the table), partitioned and
-- inheritance tables, and the rights user code in the table runs with.
--
-- The worker is another backend: it only sees committed data.  So this file
-- is NOT wrapped in a transaction; every statement runs in autocommit.
--
-- Tenants (per database): ra, rb, rc.  Roles (cluster-wide) carry the prefix
-- reenc_ and are dropped at the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;

-- leftovers of an earlier, aborted run
DROP SCHEMA IF EXISTS reenc_owner_s CASCADE;
DO $$
DECLARE r text;
BEGIN
	FOR r IN SELECT rolname FROM pg_roles WHERE rolname IN
		('reenc_a', 'reenc_b', 'reenc_c', 'reenc_plain', 'reenc_exec', 'reenc_sel',
		 'reenc_upd', 'reenc_selupd', 'reenc_owner')
	LOOP
		EXECUTE format('DROP OWNED BY %I', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END $$;

CREATE ROLE reenc_a;        -- member of ra
CREATE ROLE reenc_b;        -- member of rb
CREATE ROLE reenc_c;        -- member of rc
CREATE ROLE reenc_plain;    -- nothing granted
CREATE ROLE reenc_exec;     -- EXECUTE on reencrypt, no table privileges
CREATE ROLE reenc_sel;      -- EXECUTE on reencrypt, SELECT on the table
CREATE ROLE reenc_upd;      -- EXECUTE on reencrypt, UPDATE on the table
CREATE ROLE reenc_selupd;   -- EXECUTE on reencrypt, SELECT + UPDATE on the table
CREATE ROLE reenc_owner;    -- EXECUTE on reencrypt, owns a protected table

SELECT tenant_iso.create_tenant(t) FROM unnest(ARRAY['ra', 'rb', 'rc']) t \g /dev/null
SELECT tenant_iso.add_member('reenc_a', 'ra') \g /dev/null
SELECT tenant_iso.add_member('reenc_b', 'rb') \g /dev/null
SELECT tenant_iso.add_member('reenc_c', 'rc') \g /dev/null

-- Decrypt without aborting the statement: NULL when the value does not open
-- for the current tenant (runs with the caller's rights and tenant context).
CREATE OR REPLACE FUNCTION public.reenc_try_decrypt(v bytea, ctx text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	RETURN tenant_iso.decrypt_text(v, ctx);
EXCEPTION WHEN OTHERS THEN
	RETURN NULL;
END $$;

-- Rows whose envelope is not under its tenant's active key version.
CREATE OR REPLACE FUNCTION public.reenc_old_rows(rel regclass, col name) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
	EXECUTE format(
		'SELECT count(*) FROM %s d
		  WHERE tenant_iso.key_version(d.%I) IS DISTINCT FROM
		        (SELECT k.version FROM tenant_iso.keys k
		          WHERE k.tenant_id = d.tenant_id::text AND k.state = ''active'')
		    AND tenant_iso.key_version(d.%I) IS NOT NULL', rel, col, col) INTO n;
	RETURN n;
END $$;

-- ===================================================================
-- setup: reenc_docs, three tenants; encrypted as each member role.
-- fillfactor 10 spreads the rows over many blocks (many batches).
-- ===================================================================
CREATE TABLE reenc_docs (
	tenant_id text NOT NULL,
	id int NOT NULL,
	body text NOT NULL,           -- the plaintext, to compare with
	secret bytea,
	PRIMARY KEY (tenant_id, id)
) WITH (fillfactor = 10);
SELECT tenant_iso.protect('reenc_docs') \g /dev/null
GRANT SELECT, INSERT, UPDATE ON reenc_docs TO reenc_a, reenc_b, reenc_c;

SET ROLE reenc_a;
INSERT INTO reenc_docs (id, body, secret)
	SELECT g, 'a-' || g, tenant_iso.encrypt('a-' || g, 'docs') FROM generate_series(1, 20) g;
SET ROLE reenc_b;
INSERT INTO reenc_docs (id, body, secret)
	SELECT g, 'b-' || g, tenant_iso.encrypt('b-' || g, 'docs') FROM generate_series(1, 30) g;
SET ROLE reenc_c;
INSERT INTO reenc_docs (id, body, secret)
	SELECT g, 'c-' || g, tenant_iso.encrypt('c-' || g, 'docs') FROM generate_series(1, 20) g;
SET ROLE reenc_a;
INSERT INTO reenc_docs (id, body, secret)
	SELECT g, 'a-' || g, tenant_iso.encrypt('a-' || g, 'docs') FROM generate_series(21, 40) g;
RESET ROLE;
-- values that are not envelopes (and a NULL), tenant ra
INSERT INTO reenc_docs (tenant_id, id, body, secret) VALUES
	('ra', 1001, 'null', NULL),
	('ra', 1002, 'short', '\xdeadbeef'),
	('ra', 1003, 'empty', ''),
	('ra', 1004, 'format 2', '\x02' || decode(repeat('00', 39), 'hex'));

SELECT plan(99);

-- ===================================================================
-- nothing to do before any rotation
-- ===================================================================
SELECT is(tenant_iso.reencrypt('reenc_docs', 'secret', 'docs'), 0::bigint,
	'all values under the active versions: reencrypt returns 0');

-- rb rotates, gets 25 rows under v2; then ra -> v2 and rb -> v3.  rc stays at v1.
SELECT is(tenant_iso.rotate_tenant_key('rb'), 2, 'rotate_tenant_key(rb) -> version 2');
SET ROLE reenc_b;
INSERT INTO reenc_docs (id, body, secret)
	SELECT g, 'b-' || g, tenant_iso.encrypt('b-' || g, 'docs') FROM generate_series(31, 55) g;
RESET ROLE;
SELECT is(tenant_iso.rotate_tenant_key('ra'), 2, 'rotate_tenant_key(ra) -> version 2');
SELECT is(tenant_iso.rotate_tenant_key('rb'), 3, 'rotate_tenant_key(rb) -> version 3');

SELECT results_eq(
	$$SELECT tenant_id, version FROM tenant_iso.keys WHERE state = 'active' ORDER BY 1$$,
	$$VALUES ('ra'::text, 2), ('rb', 3), ('rc', 1)$$,
	'keys view: active versions ra 2, rb 3, rc 1');
SELECT results_eq(
	$$SELECT tenant_id, tenant_iso.key_version(secret), count(*) FROM reenc_docs
	   WHERE id < 1000 GROUP BY 1, 2 ORDER BY 1, 2$$,
	$$VALUES ('ra'::text, 1::bigint, 40::bigint), ('rb', 1, 30), ('rb', 2, 25), ('rc', 1, 20)$$,
	'before: ra 40 rows at v1, rb 30 at v1 and 25 at v2, rc 20 at v1');
SELECT is(reenc_old_rows('reenc_docs', 'secret'), 95::bigint,
	'before: 95 values are not under their tenant''s active version');
SELECT ok((SELECT (pg_relation_size('reenc_docs') / current_setting('block_size')::int) >= 10),
	'setup: reenc_docs spans at least 10 blocks (several batches)');

CREATE TABLE reenc_snap AS SELECT tenant_id, id, secret FROM reenc_docs;

-- ===================================================================
-- the run
-- ===================================================================
SELECT is(tenant_iso.reencrypt('reenc_docs', 'secret', 'docs', 5), 95::bigint,
	'reencrypt returns the number of values under old versions (95)');

SELECT is(reenc_old_rows('reenc_docs', 'secret'), 0::bigint,
	'after: every envelope is under its tenant''s active version (keys view)');
SELECT results_eq(
	$$SELECT tenant_id, tenant_iso.key_version(secret), count(*) FROM reenc_docs
	   WHERE id < 1000 GROUP BY 1, 2 ORDER BY 1, 2$$,
	$$VALUES ('ra'::text, 2::bigint, 40::bigint), ('rb', 3, 55), ('rc', 1, 20)$$,
	'after: ra 40 rows at v2, rb 55 at v3, rc 20 still at v1');
SELECT is((SELECT count(*) FROM reenc_docs d JOIN reenc_snap s USING (tenant_id, id)
	        WHERE d.tenant_id IN ('ra', 'rb') AND d.id < 1000 AND d.secret = s.secret),
	0::bigint, 'every rewritten value has a new ciphertext');
SELECT is((SELECT count(*) FROM reenc_docs d JOIN reenc_snap s USING (tenant_id, id)
	        WHERE d.tenant_id = 'rc' AND d.secret = s.secret),
	20::bigint, 'rc (no rotation): its 20 values are untouched, byte for byte');
SELECT results_eq(
	$$SELECT id, secret FROM reenc_docs WHERE id > 1000 ORDER BY id$$,
	$$SELECT id, secret FROM reenc_snap WHERE id > 1000 ORDER BY id$$,
	'NULL and non-envelope values are left unchanged');
SELECT is((SELECT count(*) FROM reenc_docs), 119::bigint, 'no row added or lost');

SET ROLE reenc_a;
SELECT is((SELECT count(*) FROM reenc_docs WHERE id < 1000), 40::bigint,
	'reenc_a sees its 40 encrypted rows');
SELECT is((SELECT count(*) FROM reenc_docs WHERE id < 1000
	        AND reenc_try_decrypt(secret, 'docs') IS NOT DISTINCT FROM body), 40::bigint,
	'reenc_a: all 40 values decrypt to their original plaintext');
SET ROLE reenc_b;
SELECT is((SELECT count(*) FROM reenc_docs), 55::bigint, 'reenc_b sees its 55 rows');
SELECT is((SELECT count(*) FROM reenc_docs
	        WHERE reenc_try_decrypt(secret, 'docs') IS NOT DISTINCT FROM body), 55::bigint,
	'reenc_b: all 55 values (from v1 and v2) decrypt to their original plaintext');
SET ROLE reenc_c;
SELECT is((SELECT count(*) FROM reenc_docs
	        WHERE reenc_try_decrypt(secret, 'docs') IS NOT DISTINCT FROM body), 20::bigint,
	'reenc_c: all 20 values decrypt to their original plaintext');
RESET ROLE;

-- rerun
DROP TABLE reenc_snap;
CREATE TABLE reenc_snap AS SELECT tenant_id, id, secret FROM reenc_docs;
SELECT is(tenant_iso.reencrypt('reenc_docs', 'secret', 'docs', 5), 0::bigint,
	'second run returns 0');
SELECT is(tenant_iso.reencrypt('reenc_docs', 'secret'), 0::bigint,
	'a run with the default context and batch size also returns 0 (nothing left)');
SELECT is((SELECT count(*) FROM reenc_docs d JOIN reenc_snap s USING (tenant_id, id)
	        WHERE d.secret IS NOT DISTINCT FROM s.secret), 119::bigint,
	'the second run changed no value');

-- ===================================================================
-- shredded tenant: skipped, the others still processed
-- ===================================================================
SELECT tenant_iso.rotate_tenant_key('ra') AS reenc_ra_active \gset
SELECT is(tenant_iso.rotate_tenant_key('rc'), 2, 'rotate_tenant_key(rc) -> version 2');
SELECT is(tenant_iso.shred_tenant('rc'), 2, 'shred_tenant(rc) destroys its 2 keys');
SELECT is((SELECT count(*) FROM tenant_iso.keys WHERE tenant_id = 'rc' AND state <> 'destroyed'),
	0::bigint, 'rc has no usable key left');
DROP TABLE reenc_snap;
CREATE TABLE reenc_snap AS SELECT tenant_id, id, secret FROM reenc_docs;
SELECT is(reenc_old_rows('reenc_docs', 'secret'), 60::bigint,
	'setup: 40 ra values and 20 rc values not under an active version');
SELECT is(tenant_iso.reencrypt('reenc_docs', 'secret', 'docs', 3), 40::bigint,
	'reencrypt rewrites the 40 ra values and skips the 20 values of shredded rc');
SELECT is((SELECT count(*) FROM reenc_docs d JOIN reenc_snap s USING (tenant_id, id)
	        WHERE d.tenant_id = 'rc' AND d.secret = s.secret), 20::bigint,
	'rc values are untouched, byte for byte');
SELECT is((SELECT count(*) FROM reenc_docs WHERE tenant_id = 'rc' AND tenant_iso.key_version(secret) = 1),
	20::bigint, 'rc values keep their (destroyed) version 1');
SELECT is((SELECT count(*) FROM reenc_docs WHERE tenant_id = 'ra' AND tenant_iso.key_version(secret) = :reenc_ra_active),
	40::bigint, 'every ra value is at ra''s new active version');
SELECT is((SELECT count(*) FROM reenc_docs d JOIN reenc_snap s USING (tenant_id, id)
	        WHERE d.tenant_id = 'rb' AND d.secret = s.secret), 55::bigint,
	'rb values (already current) are untouched');
SELECT results_eq(
	$$SELECT id, secret FROM reenc_docs WHERE id > 1000 ORDER BY id$$,
	$$SELECT id, secret FROM reenc_snap WHERE id > 1000 ORDER BY id$$,
	'NULL and non-envelope values are still unchanged');
SET ROLE reenc_a;
SELECT is((SELECT count(*) FROM reenc_docs WHERE id < 1000
	        AND reenc_try_decrypt(secret, 'docs') IS NOT DISTINCT FROM body), 40::bigint,
	'reenc_a: all 40 values decrypt after the second rotation');
-- (the value is passed as a literal: a failing query over a protected table
-- inside throws_ok's exception block trips an unrelated crash, see report)
RESET ROLE;
SELECT encode(secret, 'hex') AS reenc_c_ct FROM reenc_docs WHERE tenant_id = 'rc' AND id = 1 \gset
SET ROLE reenc_c;
SELECT throws_ok(format($f$SELECT tenant_iso.decrypt_text('\x%s'::bytea, 'docs')$f$, :'reenc_c_ct'),
	'55000', 'key destroyed', 'reenc_c: its values cannot be opened any more (55000)');
RESET ROLE;
SELECT is(tenant_iso.reencrypt('reenc_docs', 'secret', 'docs', 3), 0::bigint,
	'rerun after the shred: 0');
SELECT is(reenc_old_rows('reenc_docs', 'secret'), 20::bigint,
	'only the 20 shredded rc values remain outside an active version');

-- ===================================================================
-- a wrong context: values that do not open are skipped and reported
-- ===================================================================
CREATE TABLE reenc_ctx (
	tenant_id text NOT NULL,
	id int NOT NULL,
	body text NOT NULL,
	secret bytea,
	PRIMARY KEY (tenant_id, id)
) WITH (fillfactor = 10);
SELECT tenant_iso.protect('reenc_ctx') \g /dev/null
GRANT SELECT, INSERT ON reenc_ctx TO reenc_a;
SET ROLE reenc_a;
INSERT INTO reenc_ctx (id, body, secret)
	SELECT g, 'x-' || g, tenant_iso.encrypt('x-' || g, 'one') FROM generate_series(1, 40) g;
-- physically last: a value sealed under another context
INSERT INTO reenc_ctx (id, body, secret) VALUES (999, 'x-999', tenant_iso.encrypt('x-999', 'two'));
RESET ROLE;
SELECT tenant_iso.rotate_tenant_key('ra') AS reenc_ra_active \gset

-- batch_size 1 => one block per batch; the blocks before the bad value's block commit.
SELECT count(*) AS reenc_ctx_before_bad FROM reenc_ctx
 WHERE (ctid::text::point)[0] < (SELECT (ctid::text::point)[0] FROM reenc_ctx WHERE id = 999) \gset
SELECT ok(:reenc_ctx_before_bad > 0 AND :reenc_ctx_before_bad < 40,
	'setup: some rows lie in blocks before the value sealed under another context');

-- A value that does not open is skipped and reported (issue 11 §4), it no
-- longer stops the run: one tenant's bad value cannot keep the others'
-- rows under a retired key.
SELECT is(tenant_iso.reencrypt('reenc_ctx', 'secret', 'zzz', 1), 0::bigint,
	'wrong context for every value: nothing opens, 0 rewritten, no error');
SELECT is((SELECT count(*) FROM tenant_iso.reencrypt_failures()
	        WHERE rel = 'reenc_ctx'::regclass AND tenant_id = 'ra' AND reason = 'does not open'), 41::bigint,
	'... all 41 values are reported (table, tenant, reason)');
SELECT is(reenc_old_rows('reenc_ctx', 'secret'), 41::bigint,
	'... and nothing was rewritten');

SELECT is(tenant_iso.reencrypt('reenc_ctx', 'secret', 'one', 1), 40::bigint,
	'one value under another context: skipped, the 40 others are rewritten');
SELECT results_eq($$SELECT row_ctid, tenant_id FROM tenant_iso.reencrypt_failures()$$,
	$$SELECT ctid, tenant_id FROM reenc_ctx WHERE id = 999$$,
	'... the skipped value is reported by its ctid and tenant');
SELECT is((SELECT count(*) FROM reenc_ctx WHERE tenant_iso.key_version(secret) = :reenc_ra_active),
	40::bigint, 'the 40 values before and after the bad one are at the active version');
SELECT is(reenc_old_rows('reenc_ctx', 'secret'), 1::bigint,
	'only the value under the other context is left');
SELECT is((SELECT tenant_iso.key_version(secret) FROM reenc_ctx WHERE id = 999), :reenc_ra_active - 1::bigint,
	'the value under the other context keeps its (previous) version');
SET ROLE reenc_a;
SELECT is((SELECT count(*) FROM reenc_ctx
	        WHERE reenc_try_decrypt(secret, CASE WHEN id = 999 THEN 'two' ELSE 'one' END)
	              IS NOT DISTINCT FROM body), 41::bigint,
	'reenc_a: after the run every value still decrypts to its plaintext');
RESET ROLE;
-- fix: move the odd value out of the way, then finish
UPDATE reenc_ctx SET secret = NULL WHERE id = 999;
SELECT is(tenant_iso.reencrypt('reenc_ctx', 'secret', 'one', 1), 0::bigint,
	'rerun with the cause fixed: nothing left to rewrite');
SELECT is((SELECT count(*) FROM tenant_iso.reencrypt_failures()), 0::bigint,
	'... and the new run replaced the report: nothing skipped');
SELECT is(reenc_old_rows('reenc_ctx', 'secret'), 0::bigint, '... and none is left under an old version');

-- ===================================================================
-- argument errors
-- ===================================================================
CREATE TABLE reenc_plain_t (tenant_id text NOT NULL, id int, secret bytea);
INSERT INTO reenc_plain_t VALUES ('ra', 1, '\x01');
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_plain_t', 'secret')$$,
	'55000', 'table "reenc_plain_t" is not protected',
	'unprotected table -> 55000');
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_docs', 'nosuch')$$,
	'42703', 'column "nosuch" of table "reenc_docs" does not exist',
	'missing column -> 42703');
ALTER TABLE reenc_ctx ADD COLUMN gone bytea;
ALTER TABLE reenc_ctx DROP COLUMN gone;
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_ctx', 'gone')$$,
	'42703', NULL, 'dropped column -> 42703');
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_docs', 'body')$$,
	'42804', 'column "body" is not of type bytea',
	'text column -> 42804');
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_docs', 'id')$$,
	'42804', 'column "id" is not of type bytea',
	'int column -> 42804');
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_docs', 'ctid')$$,
	'42804', NULL, 'system column ctid -> 42804');
-- it rewrites every tenant's rows: refused in a tenant context, even for a superuser
SELECT tenant_iso.set_tenant('ra') \g /dev/null
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_docs', 'secret', 'docs')$$,
	'42501', 'reencrypt() is not allowed in a tenant context', 'in a tenant context -> 42501');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_docs', 'secret', 'docs', 0)$$,
	'22023', 'batch_size must be positive', 'batch_size 0 -> 22023');
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_docs', 'secret', 'docs', -5)$$,
	'22023', 'batch_size must be positive', 'batch_size -5 -> 22023');
SELECT throws_ok($$SELECT tenant_iso.reencrypt(NULL, 'secret')$$,
	'22004', NULL, 'NULL table -> 22004');
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_docs', NULL)$$,
	'22004', NULL, 'NULL column -> 22004');
SELECT throws_ok($$SELECT tenant_iso.reencrypt(NULL, NULL, NULL, NULL)$$,
	'22004', NULL, 'all arguments NULL -> 22004');
SELECT throws_ok($$SELECT tenant_iso.reencrypt(0::oid::regclass, 'secret')$$,
	'42P01', NULL, 'a relation OID that does not exist -> 42P01');

-- ===================================================================
-- privileges
-- ===================================================================
SELECT ok((SELECT proacl IS NOT NULL AND NOT EXISTS (
	         SELECT 1 FROM aclexplode(proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
	         FROM pg_proc WHERE oid = 'tenant_iso.reencrypt(regclass, name, text, int)'::regprocedure),
	'reencrypt: EXECUTE is not granted to PUBLIC');
SELECT ok(NOT has_function_privilege('reenc_plain', 'tenant_iso.reencrypt(regclass, name, text, int)', 'EXECUTE'),
	'reenc_plain has no EXECUTE on reencrypt');

-- reenc_priv: default context, ra and rb rows, SELECT-only and UPDATE-only grants
CREATE TABLE reenc_priv (
	tenant_id text NOT NULL,
	id int NOT NULL,
	body text NOT NULL,
	secret bytea,
	PRIMARY KEY (tenant_id, id)
);
SELECT tenant_iso.protect('reenc_priv') \g /dev/null
GRANT SELECT, INSERT, UPDATE ON reenc_priv TO reenc_a, reenc_b;
SET ROLE reenc_a;
INSERT INTO reenc_priv (id, body, secret)
	SELECT g, 'p-' || g, tenant_iso.encrypt('p-' || g) FROM generate_series(1, 10) g;
SET ROLE reenc_b;
INSERT INTO reenc_priv (id, body, secret)
	SELECT g, 'q-' || g, tenant_iso.encrypt('q-' || g) FROM generate_series(1, 10) g;
RESET ROLE;
SELECT tenant_iso.rotate_tenant_key('ra') \g /dev/null
SELECT tenant_iso.rotate_tenant_key('rb') \g /dev/null
GRANT EXECUTE ON FUNCTION tenant_iso.reencrypt(regclass, name, text, int)
	TO reenc_exec, reenc_sel, reenc_upd, reenc_selupd, reenc_owner;
GRANT SELECT ON reenc_priv TO reenc_sel, reenc_selupd;
GRANT UPDATE ON reenc_priv TO reenc_upd, reenc_selupd;
SELECT is(reenc_old_rows('reenc_priv', 'secret'), 20::bigint, 'setup: 20 values of reenc_priv under old versions');

SET ROLE reenc_plain;
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_priv', 'secret')$$,
	'42501', 'permission denied for function reencrypt',
	'PUBLIC (reenc_plain) cannot execute reencrypt -> 42501');
SET ROLE reenc_a;
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_priv', 'secret')$$,
	'42501', 'permission denied for function reencrypt',
	'a tenant member without the grant cannot execute reencrypt -> 42501');
SET ROLE reenc_exec;
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_priv', 'secret')$$,
	'42501', 'permission denied for table reenc_priv',
	'EXECUTE but no privilege on the table -> 42501');
SET ROLE reenc_sel;
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_priv', 'secret')$$,
	'42501', 'permission denied for table reenc_priv',
	'EXECUTE and SELECT but no UPDATE on the table -> 42501');
RESET ROLE;
SELECT is(reenc_old_rows('reenc_priv', 'secret'), 20::bigint,
	'the SELECT-only caller rewrote nothing');
-- new versions, so that every value is old whatever happened above
SELECT tenant_iso.rotate_tenant_key('ra') \g /dev/null
SELECT tenant_iso.rotate_tenant_key('rb') \g /dev/null
SET ROLE reenc_upd;
SELECT throws_ok($$SELECT tenant_iso.reencrypt('reenc_priv', 'secret')$$,
	'42501', 'permission denied for table reenc_priv',
	'EXECUTE and UPDATE but no SELECT on the table -> 42501');
RESET ROLE;
SELECT is(reenc_old_rows('reenc_priv', 'secret'), 20::bigint,
	'the UPDATE-only caller rewrote nothing');
SELECT tenant_iso.rotate_tenant_key('ra') \g /dev/null
SELECT tenant_iso.rotate_tenant_key('rb') \g /dev/null

SET ROLE reenc_selupd;
SELECT is(tenant_iso.reencrypt('reenc_priv', 'secret'), 20::bigint,
	'a non-superuser with EXECUTE and SELECT + UPDATE on the table: all 20 values, all tenants');
RESET ROLE;
SELECT is(reenc_old_rows('reenc_priv', 'secret'), 0::bigint,
	'... none left under an old version');
SET ROLE reenc_a;
SELECT is((SELECT count(*) FROM reenc_priv WHERE reenc_try_decrypt(secret, '') IS NOT DISTINCT FROM body),
	10::bigint, 'reenc_a: its 10 values (default context) decrypt');
SET ROLE reenc_b;
SELECT is((SELECT count(*) FROM reenc_priv WHERE reenc_try_decrypt(secret, '') IS NOT DISTINCT FROM body),
	10::bigint, 'reenc_b: its 10 values (default context) decrypt');
RESET ROLE;

-- ===================================================================
-- user code in the table (triggers) must not run with superuser rights:
-- the caller is a non-superuser table owner with EXECUTE on reencrypt.
-- ===================================================================
CREATE TABLE public.reenc_trg_log (who name, superuser text);
GRANT INSERT ON public.reenc_trg_log TO PUBLIC;
CREATE SCHEMA reenc_owner_s AUTHORIZATION reenc_owner;
CREATE TABLE reenc_owned (
	tenant_id text NOT NULL,
	id int NOT NULL,
	body text NOT NULL,
	secret bytea,
	PRIMARY KEY (tenant_id, id)
);
ALTER TABLE reenc_owned OWNER TO reenc_owner;
SET ROLE reenc_owner;
SELECT tenant_iso.protect('reenc_owned') \g /dev/null
GRANT SELECT, INSERT ON reenc_owned TO reenc_a;
CREATE FUNCTION reenc_owner_s.log_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.reenc_trg_log VALUES (current_user, current_setting('is_superuser'));
	RETURN NEW;
END $$;
CREATE TRIGGER reenc_log BEFORE UPDATE ON reenc_owned
	FOR EACH ROW EXECUTE FUNCTION reenc_owner_s.log_update();
SET ROLE reenc_a;
INSERT INTO reenc_owned (id, body, secret)
	SELECT g, 'o-' || g, tenant_iso.encrypt('o-' || g) FROM generate_series(1, 3) g;
RESET ROLE;
SELECT tenant_iso.rotate_tenant_key('ra') \g /dev/null
SET ROLE reenc_owner;
SELECT is(tenant_iso.reencrypt('reenc_owned', 'secret'), 3::bigint,
	'the non-superuser owner re-encrypts its table (3 values)');
RESET ROLE;
SELECT is((SELECT count(*) FROM public.reenc_trg_log), 3::bigint,
	'the owner''s BEFORE UPDATE trigger fired once per rewritten row');
SELECT is((SELECT count(*) FROM public.reenc_trg_log WHERE superuser = 'on'), 0::bigint,
	'the owner''s trigger did not run with superuser rights');

-- ===================================================================
-- partitioned table: reencrypt on the protected parent covers the partitions
-- ===================================================================
CREATE TABLE reenc_part (
	tenant_id text NOT NULL,
	id int NOT NULL,
	body text NOT NULL,
	secret bytea,
	PRIMARY KEY (tenant_id, id)
) PARTITION BY LIST (tenant_id);
CREATE TABLE reenc_part_a PARTITION OF reenc_part FOR VALUES IN ('ra');
CREATE TABLE reenc_part_b PARTITION OF reenc_part FOR VALUES IN ('rb');
SELECT tenant_iso.protect('reenc_part') \g /dev/null
GRANT SELECT, INSERT ON reenc_part TO reenc_a, reenc_b;
SET ROLE reenc_a;
INSERT INTO reenc_part (id, body, secret)
	SELECT g, 'pa-' || g, tenant_iso.encrypt('pa-' || g) FROM generate_series(1, 12) g;
SET ROLE reenc_b;
INSERT INTO reenc_part (id, body, secret)
	SELECT g, 'pb-' || g, tenant_iso.encrypt('pb-' || g) FROM generate_series(1, 8) g;
RESET ROLE;
SELECT tenant_iso.rotate_tenant_key('ra') \g /dev/null
SELECT tenant_iso.rotate_tenant_key('rb') \g /dev/null
SELECT is(tenant_iso.reencrypt('reenc_part_a', 'secret'), 12::bigint,
	'a partition by itself (protected with its parent): its 12 values');
SELECT is(reenc_old_rows('reenc_part_a', 'secret'), 0::bigint,
	'... none of them left under an old version');
SELECT tenant_iso.rotate_tenant_key('ra') \g /dev/null
SELECT is(reenc_old_rows('reenc_part', 'secret'), 20::bigint,
	'setup: after another rotation of ra, 20 values of the partitioned table under old versions');
SELECT is(tenant_iso.reencrypt('reenc_part', 'secret'), 20::bigint,
	'partitioned parent: reencrypt rewrites the 20 values of its partitions');
SELECT is(reenc_old_rows('reenc_part', 'secret'), 0::bigint,
	'partitioned parent: none left under an old version');
SET ROLE reenc_a;
SELECT is((SELECT count(*) FROM reenc_part WHERE reenc_try_decrypt(secret, '') IS NOT DISTINCT FROM body),
	12::bigint, 'partitioned: reenc_a''s 12 values decrypt');
SET ROLE reenc_b;
SELECT is((SELECT count(*) FROM reenc_part WHERE reenc_try_decrypt(secret, '') IS NOT DISTINCT FROM body),
	8::bigint, 'partitioned: reenc_b''s 8 values decrypt');
RESET ROLE;

-- ===================================================================
-- inheritance: parent and child rows share ctids; no value may end up in
-- another row
-- ===================================================================
CREATE TABLE reenc_inh (
	tenant_id text NOT NULL,
	id int NOT NULL,
	body text NOT NULL,
	secret bytea
);
CREATE TABLE reenc_inh_c () INHERITS (reenc_inh);
SELECT tenant_iso.protect('reenc_inh') \g /dev/null
GRANT SELECT, INSERT ON reenc_inh, reenc_inh_c TO reenc_a, reenc_b;
SET ROLE reenc_a;
INSERT INTO reenc_inh (id, body, secret)
	SELECT g, 'ia-' || g, tenant_iso.encrypt('ia-' || g) FROM generate_series(1, 5) g;
SET ROLE reenc_b;
INSERT INTO reenc_inh_c (id, body, secret)
	SELECT g, 'ib-' || g, tenant_iso.encrypt('ib-' || g) FROM generate_series(1, 5) g;
RESET ROLE;
SELECT tenant_iso.rotate_tenant_key('ra') \g /dev/null
SELECT tenant_iso.rotate_tenant_key('rb') \g /dev/null
SELECT is((SELECT count(*) FROM ONLY reenc_inh p JOIN reenc_inh_c c ON p.ctid = c.ctid), 5::bigint,
	'setup: the 5 parent rows and the 5 child rows have the same ctids');
SELECT is(reenc_old_rows('reenc_inh', 'secret'), 10::bigint,
	'setup: 10 values of parent and child under old versions');
SELECT is(tenant_iso.reencrypt('reenc_inh', 'secret'), 10::bigint,
	'inheritance parent: reencrypt returns 10');
SELECT is(reenc_old_rows('reenc_inh', 'secret'), 0::bigint,
	'inheritance: none left under an old version');
SET ROLE reenc_a;
SELECT is((SELECT count(*) FROM reenc_inh WHERE reenc_try_decrypt(secret, '') IS NOT DISTINCT FROM body),
	5::bigint, 'inheritance: reenc_a''s 5 parent values decrypt to their plaintext');
SET ROLE reenc_b;
SELECT is((SELECT count(*) FROM reenc_inh WHERE reenc_try_decrypt(secret, '') IS NOT DISTINCT FROM body),
	5::bigint, 'inheritance: reenc_b''s 5 child values decrypt to their plaintext');
RESET ROLE;

-- ===================================================================
-- after all the rotations above: ra and rb values of reenc_docs are old again
-- ===================================================================
SELECT is((SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tenant_iso reencrypt'), 0::bigint,
	'no reencrypt worker is left running');
SELECT is(reenc_old_rows('reenc_docs', 'secret'), 115::bigint,
	'reenc_docs: 40 ra + 55 rb + 20 shredded rc values not under an active version');
SELECT is(tenant_iso.reencrypt('reenc_docs', 'secret', 'docs', 7), 95::bigint,
	'reencrypt rewrites the 95 ra and rb values (several versions behind), skips rc');
SELECT is(reenc_old_rows('reenc_docs', 'secret'), 20::bigint,
	'only the 20 shredded rc values remain');
SET ROLE reenc_a;
SELECT is((SELECT count(*) FROM reenc_docs WHERE id < 1000
	        AND reenc_try_decrypt(secret, 'docs') IS NOT DISTINCT FROM body), 40::bigint,
	'reenc_a: all 40 values decrypt');
SET ROLE reenc_b;
SELECT is((SELECT count(*) FROM reenc_docs
	        WHERE reenc_try_decrypt(secret, 'docs') IS NOT DISTINCT FROM body), 55::bigint,
	'reenc_b: all 55 values decrypt');
RESET ROLE;

SELECT * FROM finish();

-- ===================================================================
-- cleanup (roles are cluster-wide)
-- ===================================================================
RESET ROLE;
DROP TABLE IF EXISTS reenc_docs, reenc_snap, reenc_ctx, reenc_plain_t, reenc_priv, reenc_owned,
	reenc_part, reenc_inh_c, reenc_inh, public.reenc_trg_log;
DROP SCHEMA reenc_owner_s CASCADE;
DROP FUNCTION public.reenc_try_decrypt(bytea, text), public.reenc_old_rows(regclass, name);
SELECT tenant_iso.remove_member(member) FROM tenant_iso.members
 WHERE member::text IN ('reenc_a', 'reenc_b', 'reenc_c') \g /dev/null
REVOKE ALL ON FUNCTION tenant_iso.reencrypt(regclass, name, text, int)
	FROM reenc_exec, reenc_sel, reenc_upd, reenc_selupd, reenc_owner;
DROP OWNED BY reenc_a, reenc_b, reenc_c, reenc_plain, reenc_exec, reenc_sel, reenc_upd,
	reenc_selupd, reenc_owner;
DROP ROLE reenc_a, reenc_b, reenc_c, reenc_plain, reenc_exec, reenc_sel, reenc_upd,
	reenc_selupd, reenc_owner;
