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

SELECT plan(16);

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
DROP ROLE crypt_h_a, crypt_h_b, crypt_h_c;
