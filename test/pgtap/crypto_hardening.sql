-- test/pgtap/crypto_hardening.sql: key work that one tenant cannot stall
-- (issue 11 §4).
--
--   R. reencrypt() skips a value that does not open (a tenant's garbage, a
--      header claiming a key version the tenant does not have), reports it
--      by table, ctid and tenant through reencrypt_failures(), and finishes
--      for every other tenant.
--   P. A parallel query that decrypts runs master_key_command at most once
--      (in the leader), not once per worker: counted with a command that
--      appends a line to a file before printing the key.
--   C. The per-backend key cache evicts the least recently used entry (300
--      tenants, capacity 256), and a miss reads one data_keys row (a
--      primary-key lookup), not the table: tenant_iso._key_cache_stats().
--   B. Row binding: encrypt/decrypt/decrypt_text(data, context, row_id); a
--      ciphertext copied to another row does not open (39000).
--   D. The cached keys' pool is marked MADV_DONTDUMP (VmFlags "dd" of its
--      mapping in /proc/<pid>/smaps).
--   K. Separate subkeys, known answers under a fixed master key and data
--      key (generated outside the server): a 0.1.0 (format 1) ciphertext
--      opens; a format 2 ciphertext sealed under the labelled AES subkey
--      opens, one sealed under the data key itself does not; blind_index is
--      unchanged; reencrypt moves the format 1 value to format 2.
--
-- Not wrapped in a transaction: reencrypt's worker sees only committed
-- rows, and master_key_command is changed with ALTER SYSTEM (restored at
-- the end).  Roles carry the prefix crypt_h_ and are dropped at the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = error;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

-- leftovers of an earlier run that died half-way (settings are cluster-wide)
SELECT current_setting('tenant_iso.master_key_command') ~ '^echo run >> /tmp/tiso_mkcount_' AS mk_leftover \gset
\if :mk_leftover
ALTER SYSTEM RESET tenant_iso.master_key_command;
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
\endif
SELECT current_setting('tenant_iso.master_key_command') AS mk_orig,
       coalesce((SELECT sourcefile LIKE '%postgresql.auto.conf' FROM pg_settings
                  WHERE name = 'tenant_iso.master_key_command'), false) AS mk_in_auto,
       format('/tmp/tiso_mkcount_%s_%s', current_setting('port'), pg_backend_pid()) AS count_path
\gset
SELECT format('echo run >> %s; %s', :'count_path', :'mk_orig') AS count_cmd \gset

DROP ROLE IF EXISTS crypt_h_a, crypt_h_b, crypt_h_c;
CREATE ROLE crypt_h_a;
CREATE ROLE crypt_h_b;
CREATE ROLE crypt_h_c;
SELECT tenant_iso.create_tenant(t) FROM unnest(ARRAY['ha', 'hb', 'hc']) t \g /dev/null
SELECT tenant_iso.add_member('crypt_h_a', 'ha') \g /dev/null
SELECT tenant_iso.add_member('crypt_h_b', 'hb') \g /dev/null
SELECT tenant_iso.add_member('crypt_h_c', 'hc') \g /dev/null

-- Decrypt without aborting the statement: NULL when the value does not open.
CREATE FUNCTION crypt_h_try(v bytea, ctx text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	RETURN tenant_iso.decrypt_text(v, ctx);
EXCEPTION WHEN OTHERS THEN
	RETURN NULL;
END $$;
CREATE FUNCTION crypt_h_plan(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
	p text := '';
BEGIN
	FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || sql LOOP
		p := p || r || E'\n';
	END LOOP;
	RETURN p;
END
$$;
-- lines in the counter file (0 if it does not exist yet)
CREATE FUNCTION crypt_h_runs(path text) RETURNS int LANGUAGE sql AS $$
	SELECT coalesce(array_length(regexp_split_to_array(
		rtrim(pg_read_file(path, 0, 1000000, true), E'\n'), E'\n'), 1), 0)
$$;

SELECT plan(43);

-- ===================================================================
-- R. reencrypt: one tenant's bad values do not stall the others
-- ===================================================================
CREATE TABLE crypt_h_docs (
	tenant_id text NOT NULL,
	id int NOT NULL,
	body text NOT NULL,
	secret bytea,
	PRIMARY KEY (tenant_id, id)
) WITH (fillfactor = 10);
SELECT tenant_iso.protect('crypt_h_docs') \g /dev/null
GRANT SELECT, INSERT ON crypt_h_docs TO crypt_h_a, crypt_h_b, crypt_h_c;
SET ROLE crypt_h_a;
INSERT INTO crypt_h_docs (id, body, secret)
	SELECT g, 'a-' || g, tenant_iso.encrypt('a-' || g, 'docs') FROM generate_series(1, 10) g;
SET ROLE crypt_h_b;
INSERT INTO crypt_h_docs (id, body, secret)
	SELECT g, 'b-' || g, tenant_iso.encrypt('b-' || g, 'docs') FROM generate_series(1, 10) g;
SET ROLE crypt_h_c;
INSERT INTO crypt_h_docs (id, body, secret)
	SELECT g, 'c-' || g, tenant_iso.encrypt('c-' || g, 'docs') FROM generate_series(1, 10) g;
RESET ROLE;
-- hb's bad values, physically first and in the middle of the table:
--   id 3: garbage with a valid header for hb's (soon retired) version 1
--   id 7: a real ciphertext of hb whose header claims key version 99
UPDATE crypt_h_docs SET secret = '\x01' || '\x00000001'::bytea || decode(repeat('5a', 44), 'hex')
 WHERE tenant_id = 'hb' AND id = 3;
UPDATE crypt_h_docs SET secret = overlay(secret placing '\x00000063'::bytea from 2 for 4)
 WHERE tenant_id = 'hb' AND id = 7;
SELECT tenant_iso.rotate_tenant_key(t) FROM unnest(ARRAY['ha', 'hb', 'hc']) t \g /dev/null

SELECT is(tenant_iso.reencrypt('crypt_h_docs', 'secret', 'docs', 1), 28::bigint,
	'R1 reencrypt completes: the 28 good values of ha, hb and hc are rewritten');
SELECT is((SELECT count(*) FROM crypt_h_docs d JOIN tenant_iso.keys k
	          ON k.tenant_id = d.tenant_id::text AND k.state = 'active'
	        WHERE tenant_iso.key_version(d.secret) = k.version), 28::bigint,
	'R2 every other value is under its tenant''s new active key');
SELECT results_eq(
	$$SELECT rel, row_ctid, tenant_id, reason FROM tenant_iso.reencrypt_failures() ORDER BY 2$$,
	$$SELECT 'crypt_h_docs'::regclass, ctid, tenant_id::text,
	         CASE id WHEN 3 THEN 'does not open' ELSE 'unknown key version' END
	    FROM crypt_h_docs WHERE tenant_id = 'hb' AND id IN (3, 7) ORDER BY ctid$$,
	'R3 the two bad values are reported by table, ctid and tenant, with the reason');
SELECT is((SELECT count(*) FROM crypt_h_docs WHERE tenant_id = 'hb' AND id IN (3, 7)
	        AND tenant_iso.key_version(secret) IN (1, 99)), 2::bigint,
	'R4 the bad values are left as they were');
SET ROLE crypt_h_a;
SELECT is((SELECT count(*) FROM crypt_h_docs WHERE crypt_h_try(secret, 'docs') = body), 10::bigint,
	'R5 ha: its 10 values decrypt to their plaintext');
SET ROLE crypt_h_b;
SELECT is((SELECT count(*) FROM crypt_h_docs WHERE crypt_h_try(secret, 'docs') = body), 8::bigint,
	'R6 hb: its 8 good values decrypt to their plaintext');
SET ROLE crypt_h_c;
SELECT is((SELECT count(*) FROM crypt_h_docs WHERE crypt_h_try(secret, 'docs') = body), 10::bigint,
	'R7 hc: its 10 values decrypt to their plaintext');
RESET ROLE;
SELECT is(tenant_iso.reencrypt('crypt_h_docs', 'secret', 'docs'), 0::bigint,
	'R8 a rerun rewrites nothing more');
SELECT is((SELECT count(*) FROM tenant_iso.reencrypt_failures()), 2::bigint,
	'R9 ... and reports the same two values again');

-- ===================================================================
-- C. key cache: LRU eviction, index lookups
-- ===================================================================
SELECT tenant_iso.create_tenant(format('hk_%s', i)) FROM generate_series(1, 300) i \g /dev/null
CREATE TABLE crypt_h_many (i int PRIMARY KEY, t text, ct bytea);
DO $$
BEGIN
	FOR i IN 1..300 LOOP
		PERFORM tenant_iso.set_tenant(format('hk_%s', i));
		INSERT INTO crypt_h_many VALUES (i, format('hk_%s', i), tenant_iso.encrypt('many ' || i));
	END LOOP;
	PERFORM tenant_iso.reset_tenant();
END
$$;
-- open the values of tenants lo..hi in turn; the count that opened
CREATE FUNCTION crypt_h_open(lo int, hi int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	r record;
	n int := 0;
BEGIN
	FOR r IN SELECT * FROM crypt_h_many WHERE i BETWEEN lo AND hi ORDER BY i LOOP
		PERFORM tenant_iso.set_tenant(r.t);
		IF tenant_iso.decrypt_text(r.ct) = 'many ' || r.i THEN
			n := n + 1;
		END IF;
	END LOOP;
	PERFORM tenant_iso.reset_tenant();
	RETURN n;
END
$$;
-- a configuration change empties the cache: start from empty
SELECT tenant_iso.create_tenant('hk_flush') \g /dev/null
SELECT * FROM tenant_iso._key_cache_stats() \gset c0_
SELECT is(:c0_entries, 0, 'C1 after a configuration change the cache is empty');
SELECT is(crypt_h_open(1, 300), 300, 'C2 one backend opens the values of 300 tenants in turn');
SELECT * FROM tenant_iso._key_cache_stats() \gset c1_
SELECT is(ARRAY[:c1_entries, :c1_capacity, (:c1_misses - :c0_misses)::int, (:c1_evictions - :c0_evictions)::int],
	ARRAY[256, 256, 300, 44],
	'C3 300 keys through a cache of 256: 300 misses, 44 evictions, the cache stays full');
SELECT is((:c1_rows_read - :c0_rows_read)::int, 300,
	'C4 each miss read exactly one data_keys row (an index lookup, not a scan of the 300+ rows)');
SELECT is(crypt_h_open(201, 300), 100, 'C5 the 100 most recently used tenants open again');
SELECT * FROM tenant_iso._key_cache_stats() \gset c2_
SELECT is(ARRAY[(:c2_hits - :c1_hits)::int, (:c2_misses - :c1_misses)::int], ARRAY[100, 0],
	'C6 ... all from the cache: 100 hits, no miss (least recently used entries were evicted, not all)');
SELECT is(crypt_h_open(1, 1), 1, 'C7 the least recently used tenant (evicted) opens again');
SELECT * FROM tenant_iso._key_cache_stats() \gset c3_
SELECT is(ARRAY[(:c3_misses - :c2_misses)::int, (:c3_rows_read - :c2_rows_read)::int, (:c3_evictions - :c2_evictions)::int],
	ARRAY[1, 1, 1], 'C8 ... by one miss that reads one row and evicts one entry');
SELECT is(has_function_privilege('public', 'tenant_iso._key_cache_stats()', 'EXECUTE'), false,
	'C9 _key_cache_stats() is not executable by PUBLIC');

-- ===================================================================
-- B. row binding
-- ===================================================================
CREATE TABLE crypt_h_rows (id int PRIMARY KEY, v bytea);
SELECT tenant_iso.set_tenant('ha') \g /dev/null
INSERT INTO crypt_h_rows VALUES
	(1, tenant_iso.encrypt('row one', 'card', '1')),
	(2, tenant_iso.encrypt('row two', 'card', '2')),
	(3, tenant_iso.encrypt('unbound', 'card')),
	(4, tenant_iso.encrypt('\xdeadbeef'::bytea, 'card', '4'));
SELECT is((SELECT tenant_iso.decrypt_text(v, 'card', id::text) FROM crypt_h_rows WHERE id = 1), 'row one',
	'B1 a value bound to row 1 opens with row_id 1');
SELECT is((SELECT tenant_iso.decrypt(v, 'card', id::text) FROM crypt_h_rows WHERE id = 4), '\xdeadbeef'::bytea,
	'B2 decrypt(bytea, context, row_id) round-trips a binary value');
-- the attack: a member copies row 1's ciphertext into row 2
UPDATE crypt_h_rows SET v = (SELECT v FROM crypt_h_rows WHERE id = 1) WHERE id = 2;
SELECT throws_ok($$SELECT tenant_iso.decrypt_text(v, 'card', id::text) FROM crypt_h_rows WHERE id = 2$$,
	'39000', 'decryption failed', 'B3 a ciphertext copied to another row does not open there (39000)');
SELECT throws_ok($$SELECT tenant_iso.decrypt_text(v, 'card') FROM crypt_h_rows WHERE id = 1$$,
	'39000', 'decryption failed', 'B4 a row-bound value does not open without its row_id');
SELECT throws_ok($$SELECT tenant_iso.decrypt_text(v, 'card', '3') FROM crypt_h_rows WHERE id = 3$$,
	'39000', 'decryption failed', 'B5 an unbound value does not open with a row_id');
SELECT is((SELECT tenant_iso.decrypt_text(v, 'card') FROM crypt_h_rows WHERE id = 3), 'unbound',
	'B6 without row_id behaviour is as before');
SELECT throws_ok($$SELECT tenant_iso.encrypt('x', 'card', NULL)$$, '22004', 'row_id must not be null',
	'B7 an explicit NULL row_id is refused, not taken as "no binding"');
SELECT tenant_iso.reset_tenant() \g /dev/null

-- ===================================================================
-- D. cached keys are kept out of core dumps
-- ===================================================================
SELECT * FROM tenant_iso._key_cache_stats() \gset d_
SELECT ok(:'d_pool_dontdump'::boolean, 'D1 madvise(MADV_DONTDUMP) succeeded on the key pool');
SELECT alike((SELECT m[1] FROM regexp_matches(pg_read_file(format('/proc/%s/smaps', pg_backend_pid())),
	        '(?:^|\n)0*' || :'d_pool_address' || '-[0-9a-f]+ [^\n]*\n(?:[A-Za-z_]+:[^\n]*\n)*?VmFlags:([^\n]*)') m),
	'% dd%', 'D2 the key pool''s mapping has VmFlags dd (not in core dumps)');

-- ===================================================================
-- P. parallel workers do not run master_key_command
-- ===================================================================
CREATE TABLE crypt_h_par (id int, v bytea);
GRANT SELECT ON crypt_h_par TO crypt_h_a;
SELECT tenant_iso.set_tenant('ha') \g /dev/null
INSERT INTO crypt_h_par SELECT i, tenant_iso.encrypt('p' || i, 'par') FROM generate_series(1, 20000) i;
SELECT tenant_iso.reset_tenant() \g /dev/null
ANALYZE crypt_h_par;

ALTER SYSTEM SET tenant_iso.master_key_command = :'count_cmd';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
SELECT is(current_setting('tenant_iso.master_key_command'), :'count_cmd',
	'P0 setup: master_key_command counts its runs');
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 4;
SET parallel_leader_participation = off;
SELECT crypt_h_runs(:'count_path') AS runs0 \gset
SET ROLE crypt_h_a;
SELECT crypt_h_plan($$SELECT count(tenant_iso.decrypt(v, 'par')) FROM crypt_h_par$$) AS plan1 \gset
SELECT count(*) AS n_p1 FROM crypt_h_par WHERE tenant_iso.decrypt_text(v, 'par') LIKE 'p1%' \gset
RESET ROLE;
SELECT crypt_h_runs(:'count_path') AS runs1 \gset
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

SELECT ok(substring(:'plan1' from 'Workers Planned: (\d+)')::int >= 1 AND :'plan1' ~ 'Parallel Seq Scan',
	'P1 setup: the decrypting aggregate runs over a Gather with workers planned');
SELECT is(:n_p1::int, (SELECT count(*)::int FROM generate_series(1, 20000) i WHERE ('p' || i) LIKE 'p1%'),
	'P3 the parallel query decrypts every row correctly');
SELECT cmp_ok(:runs1 - :runs0, '<=', 1,
	'P4 the parallel queries ran master_key_command at most once (the leader), not once per worker');
SELECT has_function('tenant_iso', 'reencrypt_failures', ARRAY[]::name[], 'P5 reencrypt_failures() exists');
SELECT is((SELECT string_agg(DISTINCT p.proparallel::text, '') FROM pg_proc p
	        WHERE p.pronamespace = 'tenant_iso'::regnamespace AND p.proname IN ('decrypt', 'decrypt_text')),
	'r', 'P6 every decrypt and decrypt_text is PARALLEL RESTRICTED');

-- ===================================================================
-- K. separate subkeys and format 2, known answers (fixed master key)
-- ===================================================================
-- master key a0a1..bf; tenant hlegacy's data key 1 (bytes 0x11*(i%15)+i),
-- wrapped under it; ciphertexts of the 0.1.0 code (format 1) and of this
-- code's layout (format 2), sealed outside the server.
SELECT format('/tmp/tiso_fixture_%s_%s', current_setting('port'), pg_backend_pid()) AS fx_path \gset
COPY (SELECT 'a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf') TO :'fx_path';
SELECT format('cat %s', :'fx_path') AS fx_cmd \gset
ALTER SYSTEM SET tenant_iso.master_key_command = :'fx_cmd';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
SELECT tenant_iso.create_tenant('hlegacy') \g /dev/null
INSERT INTO tenant_iso.data_keys (tenant_id, version, state, wrapped) VALUES ('hlegacy', 1, 'active',
	'\x42434445464748494a4b4c4dbb48e639741ac33c9f0a6ed7af61e8376210a90d24e2b8d6159ee956bde3efa05ed9b00d488385ce2cd9d8eb0e4949c5');
SELECT tenant_iso.set_tenant('hlegacy') \g /dev/null
SELECT is(crypt_h_try('\x010000000142434445464748494a4b4c4d7e8c7947a0f289485b1cc82eb478ef511588486429da21fd351363d02d', 'old'),
	'legacy secret', 'K1 a 0.1.0 ciphertext (format 1, the data key as AES key) still opens');
SELECT is(crypt_h_try('\x020000000142434445464748494a4b4c4d52a6b1525290b297b200ebfa13bd97b7921afbb3bca88117e107', 'new'),
	'format two', 'K2 format 2 opens under the AES subkey HKDF(data key, "tenant_iso envelope v2") (known answer)');
SELECT throws_ok($$SELECT tenant_iso.decrypt_text('\x020000000142434445464748494a4b4c4d7e8c7947a0f289485b1cc82eb4f80db3166db9f2d790a3505ffa1be3c3', 'old')$$,
	'39000', 'decryption failed', 'K3 a format 2 value sealed under the data key itself does not open: the data key is not the AES key');
SELECT is(tenant_iso.blind_index('needle', 'bi'), '\xfec7214aabab73804fbf46e10c7c1a6c'::bytea,
	'K4 blind_index is unchanged (existing indexes keep working)');
SELECT is(get_byte(tenant_iso.encrypt('fresh', 'new'), 0), 2, 'K5 new ciphertexts are format 2');
SELECT tenant_iso.reset_tenant() \g /dev/null
CREATE TABLE crypt_h_legacy (tenant_id text NOT NULL, id int PRIMARY KEY, secret bytea);
SELECT tenant_iso.protect('crypt_h_legacy') \g /dev/null
INSERT INTO crypt_h_legacy VALUES ('hlegacy', 1,
	'\x010000000142434445464748494a4b4c4d7e8c7947a0f289485b1cc82eb478ef511588486429da21fd351363d02d');
SELECT is(tenant_iso.reencrypt('crypt_h_legacy', 'secret', 'old'), 1::bigint,
	'K6 reencrypt rewrites the format 1 value under the (unchanged) active key');
SELECT is((SELECT ARRAY[get_byte(secret, 0), tenant_iso.key_version(secret)::int] FROM crypt_h_legacy),
	ARRAY[2, 1], 'K7 ... into format 2, key version 1');
SELECT tenant_iso.set_tenant('hlegacy') \g /dev/null
SELECT is((SELECT tenant_iso.decrypt_text(secret, 'old') FROM crypt_h_legacy), 'legacy secret',
	'K8 ... and it opens to the same plaintext');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT is(tenant_iso.reencrypt('crypt_h_legacy', 'secret', 'old'), 0::bigint, 'K9 a rerun has nothing to do');

-- restore the master key command
\if :mk_in_auto
ALTER SYSTEM SET tenant_iso.master_key_command = :'mk_orig';
\else
ALTER SYSTEM RESET tenant_iso.master_key_command;
\endif
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
SELECT is(current_setting('tenant_iso.master_key_command'), :'mk_orig',
	'P7 the master key command is restored');

SELECT * FROM finish();

-- ===================================================================
-- cleanup (roles are cluster-wide)
-- ===================================================================
RESET ROLE;
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT tenant_iso.remove_member(member) FROM tenant_iso.members \g /dev/null
DROP OWNED BY crypt_h_a, crypt_h_b, crypt_h_c;
COPY (SELECT 'removed') TO :'fx_path';
DROP ROLE crypt_h_a, crypt_h_b, crypt_h_c;
