-- test/pgtap/crypto_masterkey.sql: master key changes and a missing master
-- key, for column encryption.
--
--   * master key command 'false': encrypt/decrypt fail with 39000 'master key
--     is not available', protected-table isolation keeps working;
--   * a new master key: before rewrap_keys() existing data keys cannot be
--     unwrapped (39000); with tenant_iso.previous_master_key_command set,
--     rewrap_keys() rewraps them, and everything decrypts, also after the
--     previous command is reset; blind indexes do not change;
--   * and back to the original key the same way.
--
-- This changes cluster-wide settings with ALTER SYSTEM + pg_reload_conf(),
-- and empties the backend key cache with DISCARD ALL.  DISCARD ALL drops
-- temporary tables, pgTAP's among them, so the file runs in two phases:
-- first every step is carried out and its outcome recorded in a table
-- (ON_ERROR_STOP off, so that the settings are restored even if a step
-- fails), then the settings are restored, then plan() and the assertions.
--
-- The new master key is written by the server (COPY ... TO, as the server's
-- OS user) to /tmp/tiso_newkey_<port>_<pid>; its content is overwritten at
-- the end.  Roles carry the prefix crypt_mk_ and are dropped at the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

-- leftovers of an earlier run that died half-way (settings are cluster-wide)
SELECT current_setting('tenant_iso.master_key_command') ~ '^(false|cat /tmp/tiso_newkey_.*)$'
    OR current_setting('tenant_iso.previous_master_key_command') ~ '^cat /tmp/tiso_newkey_' AS mk_leftover \gset
\if :mk_leftover
ALTER SYSTEM RESET tenant_iso.master_key_command;
ALTER SYSTEM RESET tenant_iso.previous_master_key_command;
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
\endif

-- the settings to restore at the end
SELECT current_setting('tenant_iso.master_key_command') AS mk_orig,
       current_setting('tenant_iso.previous_master_key_command') AS pmk_orig,
       coalesce((SELECT sourcefile LIKE '%postgresql.auto.conf' FROM pg_settings
                  WHERE name = 'tenant_iso.master_key_command'), false) AS mk_in_auto,
       coalesce((SELECT sourcefile LIKE '%postgresql.auto.conf' FROM pg_settings
                  WHERE name = 'tenant_iso.previous_master_key_command'), false) AS pmk_in_auto,
       format('/tmp/tiso_newkey_%s_%s', current_setting('port'), pg_backend_pid()) AS newkey_path,
       encode(sha256(convert_to(random()::text || clock_timestamp()::text || pg_backend_pid(), 'UTF8')), 'hex') AS newkey
\gset
SELECT 'cat ' || :'newkey_path' AS newkey_cmd \gset

DROP ROLE IF EXISTS crypt_mk_a, crypt_mk_b, crypt_mk_c, crypt_mk_d, crypt_mk_plain;
CREATE ROLE crypt_mk_a;
CREATE ROLE crypt_mk_b;
CREATE ROLE crypt_mk_c;
CREATE ROLE crypt_mk_d;
CREATE ROLE crypt_mk_plain;
SELECT tenant_iso.create_tenant(t) FROM unnest(ARRAY['mka', 'mkb', 'mkc', 'mkd']) t \g /dev/null
SELECT tenant_iso.add_member('crypt_mk_a', 'mka') \g /dev/null
SELECT tenant_iso.add_member('crypt_mk_b', 'mkb') \g /dev/null
SELECT tenant_iso.add_member('crypt_mk_c', 'mkc') \g /dev/null
SELECT tenant_iso.add_member('crypt_mk_d', 'mkd') \g /dev/null

CREATE TABLE crypt_mk_data (k text PRIMARY KEY, v bytea);
GRANT ALL ON crypt_mk_data TO PUBLIC;
CREATE TABLE crypt_mk_out (name text PRIMARY KEY, got text);
GRANT ALL ON crypt_mk_out TO PUBLIC;
-- outcome of a statement: 'ok:<first column of the first row>' or 'err:SQLSTATE:message'
CREATE FUNCTION crypt_mk_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	v text;
BEGIN
	EXECUTE sql INTO v;
	RETURN 'ok:' || coalesce(v, '<null>');
EXCEPTION WHEN OTHERS THEN
	RETURN 'err:' || SQLSTATE || ':' || SQLERRM;
END
$$;
CREATE FUNCTION crypt_mk_ct(key text) RETURNS bytea LANGUAGE sql STABLE
	AS $$SELECT v FROM crypt_mk_data WHERE k = key$$;
CREATE FUNCTION crypt_mk_rec(name text, sql text) RETURNS void LANGUAGE sql
	AS $$INSERT INTO crypt_mk_out VALUES (name, crypt_mk_try(sql))$$;
CREATE FUNCTION crypt_mk_keys() RETURNS text LANGUAGE sql STABLE
	AS $$SELECT string_agg(tenant_id || ':' || version || ':' || state, ',' ORDER BY tenant_id, version)
	       FROM tenant_iso.keys$$;

-- a protected table, for isolation without a master key
CREATE TABLE crypt_mk_rows (tenant_id text NOT NULL, x int);
GRANT SELECT, INSERT ON crypt_mk_rows TO PUBLIC;
SELECT tenant_iso.protect('crypt_mk_rows') \g /dev/null
INSERT INTO crypt_mk_rows VALUES ('mka', 1), ('mka', 2), ('mkb', 1), ('mkb', 2), ('mkb', 3);

-- from here on, carry on after errors: the settings must be restored
\set ON_ERROR_STOP 0

-- ===================================================================
-- Phase 0: data under the original master key
-- ===================================================================
SET ROLE crypt_mk_a;
INSERT INTO crypt_mk_data VALUES ('a1', tenant_iso.encrypt('alpha'::text, 'mk'));
RESET ROLE;
SELECT crypt_mk_rec('0.rotate_a', $$SELECT tenant_iso.rotate_tenant_key('mka')$$);
SET ROLE crypt_mk_a;
INSERT INTO crypt_mk_data VALUES ('a2', tenant_iso.encrypt('alpha two'::text, 'mk')),
                                 ('a_bi', tenant_iso.blind_index('needle', 'mk'));
RESET ROLE;
SET ROLE crypt_mk_b;
INSERT INTO crypt_mk_data VALUES ('b1', tenant_iso.encrypt('beta'::bytea));
RESET ROLE;
SET ROLE crypt_mk_c;
INSERT INTO crypt_mk_data VALUES ('c1', tenant_iso.encrypt('gamma'::text));
RESET ROLE;
SELECT crypt_mk_rec('0.shred_c', $$SELECT tenant_iso.shred_tenant('mkc')$$);
SELECT crypt_mk_rec('0.keys', $$SELECT crypt_mk_keys()$$);
SELECT crypt_mk_rec('0.wrapped', $$SELECT md5(string_agg(wrapped, '' ORDER BY tenant_id, version)) FROM tenant_iso.data_keys$$);

-- ===================================================================
-- Phase M: no master key (command 'false')
-- ===================================================================
ALTER SYSTEM SET tenant_iso.master_key_command = 'false';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
DISCARD ALL;
SET client_min_messages = warning;
SELECT crypt_mk_rec('M.setting', $$SELECT current_setting('tenant_iso.master_key_command')$$);
SELECT crypt_mk_rec('M.loadable', $$SELECT tenant_iso.master_key_loadable()$$);
SET ROLE crypt_mk_a;
SELECT crypt_mk_rec('M.encrypt', $$SELECT tenant_iso.encrypt('x'::text)$$);
SELECT crypt_mk_rec('M.decrypt', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('a1'), 'mk')$$);
SELECT crypt_mk_rec('M.blind_index', $$SELECT tenant_iso.blind_index('needle', 'mk')$$);
SELECT crypt_mk_rec('M.rows_a', $$SELECT count(*) || ' ' || string_agg(DISTINCT tenant_id, ',') FROM crypt_mk_rows$$);
SELECT crypt_mk_rec('M.insert_own', $$INSERT INTO crypt_mk_rows (x) VALUES (3) RETURNING tenant_id$$);
SELECT crypt_mk_rec('M.insert_other', $$INSERT INTO crypt_mk_rows VALUES ('mkb', 99) RETURNING tenant_id$$);
RESET ROLE;
SET ROLE crypt_mk_b;
SELECT crypt_mk_rec('M.rows_b', $$SELECT count(*) || ' ' || string_agg(DISTINCT tenant_id, ',') FROM crypt_mk_rows$$);
SELECT crypt_mk_rec('M.decrypt_b', $$SELECT tenant_iso.decrypt(crypt_mk_ct('b1'))$$);
RESET ROLE;
SET ROLE crypt_mk_plain;
SELECT crypt_mk_rec('M.rows_plain', $$SELECT count(*) FROM crypt_mk_rows$$);
RESET ROLE;
SELECT crypt_mk_rec('M.set_tenant', $$SELECT tenant_iso.set_tenant('mkb')::text$$);
SELECT crypt_mk_rec('M.current_tenant', $$SELECT tenant_iso.current_tenant()$$);
SELECT crypt_mk_rec('M.rows_superuser_in_mkb', $$SELECT count(*) FROM crypt_mk_rows WHERE tenant_id = tenant_iso.current_tenant()$$);
SELECT tenant_iso.reset_tenant() \g /dev/null

-- back to the original master key
\if :mk_in_auto
ALTER SYSTEM SET tenant_iso.master_key_command = :'mk_orig';
\else
ALTER SYSTEM RESET tenant_iso.master_key_command;
\endif
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
DISCARD ALL;
SET client_min_messages = warning;
SET ROLE crypt_mk_a;
SELECT crypt_mk_rec('M2.decrypt', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('a1'), 'mk')$$);
RESET ROLE;

-- ===================================================================
-- Phase N: a new master key
-- ===================================================================
COPY (SELECT :'newkey') TO :'newkey_path';
ALTER SYSTEM SET tenant_iso.master_key_command = :'newkey_cmd';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
DISCARD ALL;
SET client_min_messages = warning;
SELECT crypt_mk_rec('N.setting', $$SELECT current_setting('tenant_iso.master_key_command') = 'cat /tmp/tiso_newkey_' || current_setting('port') || '_' || pg_backend_pid()$$);
SELECT crypt_mk_rec('N.loadable', $$SELECT tenant_iso.master_key_loadable()$$);
SET ROLE crypt_mk_a;
SELECT crypt_mk_rec('N.decrypt_a1', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('a1'), 'mk')$$);
SELECT crypt_mk_rec('N.decrypt_a2', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('a2'), 'mk')$$);
SELECT crypt_mk_rec('N.encrypt_a', $$SELECT tenant_iso.encrypt('x'::text)$$);
RESET ROLE;
SET ROLE crypt_mk_b;
SELECT crypt_mk_rec('N.decrypt_b1', $$SELECT tenant_iso.decrypt(crypt_mk_ct('b1'))$$);
RESET ROLE;
SET ROLE crypt_mk_c;
SELECT crypt_mk_rec('N.decrypt_c1', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('c1'))$$);
RESET ROLE;
-- without the previous key rewrap cannot work
SELECT crypt_mk_rec('N.rewrap_without_previous', $$SELECT tenant_iso.rewrap_keys()$$);
SELECT crypt_mk_rec('N.wrapped_after_failed_rewrap', $$SELECT md5(string_agg(wrapped, '' ORDER BY tenant_id, version)) FROM tenant_iso.data_keys$$);

ALTER SYSTEM SET tenant_iso.previous_master_key_command = :'mk_orig';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
SELECT crypt_mk_rec('N.rewrap', $$SELECT tenant_iso.rewrap_keys()$$);
SELECT crypt_mk_rec('N.rewrap_again', $$SELECT tenant_iso.rewrap_keys()$$);
SELECT crypt_mk_rec('N.keys', $$SELECT crypt_mk_keys()$$);
SELECT crypt_mk_rec('N.wrapped', $$SELECT md5(string_agg(wrapped, '' ORDER BY tenant_id, version)) FROM tenant_iso.data_keys$$);
DISCARD ALL;
SET client_min_messages = warning;
SET ROLE crypt_mk_a;
SELECT crypt_mk_rec('N2.decrypt_a1', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('a1'), 'mk')$$);
SELECT crypt_mk_rec('N2.decrypt_a2', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('a2'), 'mk')$$);
SELECT crypt_mk_rec('N2.blind_index', $$SELECT tenant_iso.blind_index('needle', 'mk') = crypt_mk_ct('a_bi')$$);
INSERT INTO crypt_mk_data VALUES ('a3', tenant_iso.encrypt('alpha three'::text, 'mk'));
SELECT crypt_mk_rec('N2.decrypt_a3', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('a3'), 'mk')$$);
RESET ROLE;
SELECT crypt_mk_rec('N2.version_a3', $$SELECT tenant_iso.key_version(crypt_mk_ct('a3'))$$);
SET ROLE crypt_mk_b;
SELECT crypt_mk_rec('N2.decrypt_b1', $$SELECT tenant_iso.decrypt(crypt_mk_ct('b1'))$$);
RESET ROLE;
SET ROLE crypt_mk_c;
SELECT crypt_mk_rec('N2.decrypt_c1', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('c1'))$$);
RESET ROLE;

-- the previous key is no longer needed
\if :pmk_in_auto
ALTER SYSTEM SET tenant_iso.previous_master_key_command = :'pmk_orig';
\else
ALTER SYSTEM RESET tenant_iso.previous_master_key_command;
\endif
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
DISCARD ALL;
SET client_min_messages = warning;
SELECT crypt_mk_rec('N3.previous_setting', $$SELECT current_setting('tenant_iso.previous_master_key_command')$$);
SET ROLE crypt_mk_a;
SELECT crypt_mk_rec('N3.decrypt_a1', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('a1'), 'mk')$$);
SELECT crypt_mk_rec('N3.decrypt_a3', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('a3'), 'mk')$$);
RESET ROLE;
SET ROLE crypt_mk_b;
SELECT crypt_mk_rec('N3.decrypt_b1', $$SELECT tenant_iso.decrypt(crypt_mk_ct('b1'))$$);
RESET ROLE;
-- a tenant whose first key is made under the new master key
SET ROLE crypt_mk_d;
INSERT INTO crypt_mk_data VALUES ('d1', tenant_iso.encrypt('delta'::text));
SELECT crypt_mk_rec('N3.decrypt_d1', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('d1'))$$);
RESET ROLE;

-- ===================================================================
-- Phase B: back to the original master key, rewrapping again
-- ===================================================================
\if :mk_in_auto
ALTER SYSTEM SET tenant_iso.master_key_command = :'mk_orig';
\else
ALTER SYSTEM RESET tenant_iso.master_key_command;
\endif
ALTER SYSTEM SET tenant_iso.previous_master_key_command = :'newkey_cmd';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
DISCARD ALL;
SET client_min_messages = warning;
SET ROLE crypt_mk_d;
SELECT crypt_mk_rec('B.decrypt_d1_before', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('d1'))$$);
RESET ROLE;
SELECT crypt_mk_rec('B.rewrap', $$SELECT tenant_iso.rewrap_keys()$$);
\if :pmk_in_auto
ALTER SYSTEM SET tenant_iso.previous_master_key_command = :'pmk_orig';
\else
ALTER SYSTEM RESET tenant_iso.previous_master_key_command;
\endif
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
DISCARD ALL;
SET client_min_messages = warning;
SET ROLE crypt_mk_a;
SELECT crypt_mk_rec('B.decrypt_a', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('a1'), 'mk') || ',' || tenant_iso.decrypt_text(crypt_mk_ct('a3'), 'mk')$$);
RESET ROLE;
SET ROLE crypt_mk_b;
SELECT crypt_mk_rec('B.decrypt_b1', $$SELECT tenant_iso.decrypt(crypt_mk_ct('b1'))$$);
RESET ROLE;
SET ROLE crypt_mk_d;
SELECT crypt_mk_rec('B.decrypt_d1', $$SELECT tenant_iso.decrypt_text(crypt_mk_ct('d1'))$$);
RESET ROLE;

-- ===================================================================
-- Restore the settings (again, in case a step above failed), wipe the key
-- ===================================================================
RESET ROLE;
\if :mk_in_auto
ALTER SYSTEM SET tenant_iso.master_key_command = :'mk_orig';
\else
ALTER SYSTEM RESET tenant_iso.master_key_command;
\endif
\if :pmk_in_auto
ALTER SYSTEM SET tenant_iso.previous_master_key_command = :'pmk_orig';
\else
ALTER SYSTEM RESET tenant_iso.previous_master_key_command;
\endif
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(1) \g /dev/null
COPY (SELECT 'wiped') TO :'newkey_path';
DISCARD ALL;
SET client_min_messages = warning;
\set ON_ERROR_STOP 1

-- ===================================================================
-- Assertions
-- ===================================================================
CREATE FUNCTION pg_temp.got(n text) RETURNS text LANGUAGE sql STABLE
	AS $$SELECT coalesce((SELECT got FROM crypt_mk_out WHERE name = n), '<step did not run>')$$;

SELECT plan(48);

SELECT is(current_setting('tenant_iso.master_key_command'), :'mk_orig', 'master_key_command is restored');
SELECT is(current_setting('tenant_iso.previous_master_key_command'), :'pmk_orig',
	'previous_master_key_command is restored');
SELECT is(pg_temp.got('0.rotate_a'), 'ok:2', 'setup: mka rotated to version 2');
SELECT is(pg_temp.got('0.shred_c'), 'ok:1', 'setup: mkc shredded');
SELECT is(pg_temp.got('0.keys'), 'ok:mka:1:retired,mka:2:active,mkb:1:active,mkc:1:destroyed',
	'setup: the keys');

-- no master key
SELECT is(pg_temp.got('M.setting'), 'ok:false', 'no master key: the command is ''false''');
SELECT is(pg_temp.got('M.loadable'), 'ok:false', 'no master key: master_key_loadable() is false');
SELECT is(pg_temp.got('M.encrypt'), 'err:39000:master key is not available',
	'no master key: encrypt -> 39000 master key is not available');
SELECT is(pg_temp.got('M.decrypt'), 'err:39000:master key is not available',
	'no master key: decrypt -> 39000 master key is not available');
SELECT is(pg_temp.got('M.decrypt_b'), 'err:39000:master key is not available',
	'no master key: decrypt of another tenant -> 39000 master key is not available');
SELECT is(pg_temp.got('M.blind_index'), 'err:39000:master key is not available',
	'no master key: blind_index -> 39000 master key is not available');
SELECT is(pg_temp.got('M.rows_a'), 'ok:2 mka', 'no master key: member of mka sees its own 2 rows only');
SELECT is(pg_temp.got('M.insert_own'), 'ok:mka', 'no master key: an insert gets the tenant column default');
SELECT alike(pg_temp.got('M.insert_other'), 'err:42501:new row violates row-level security policy%',
	'no master key: inserting a row of another tenant -> 42501');
SELECT is(pg_temp.got('M.rows_b'), 'ok:3 mkb', 'no master key: member of mkb sees its own 3 rows only');
SELECT is(pg_temp.got('M.rows_plain'), 'err:42501:no tenant context',
	'no master key: a role without tenant -> 42501 no tenant context');
SELECT is(pg_temp.got('M.set_tenant') || ' ' || pg_temp.got('M.current_tenant'), 'ok: ok:mkb',
	'no master key: a superuser can set_tenant(mkb)');
SELECT is(pg_temp.got('M.rows_superuser_in_mkb'), 'ok:3', 'no master key: superuser in mkb');
SELECT is(pg_temp.got('M2.decrypt'), 'ok:alpha', 'master key back: decrypt works again');

-- new master key, before rewrap
SELECT is(pg_temp.got('N.setting'), 'ok:true', 'new master key: the command points to the new key file');
SELECT is(pg_temp.got('N.loadable'), 'ok:true', 'new master key: loadable');
SELECT alike(pg_temp.got('N.decrypt_a1'),
	'err:39000:data key _ of tenant "mka" cannot be unwrapped with the current master key',
	'new master key, before rewrap: decrypt -> 39000, the data key cannot be unwrapped');
SELECT alike(pg_temp.got('N.decrypt_a2'),
	'err:39000:data key _ of tenant "mka" cannot be unwrapped with the current master key',
	'new master key, before rewrap: decrypt of version 2 -> 39000 too');
SELECT alike(pg_temp.got('N.encrypt_a'),
	'err:39000:data key _ of tenant "mka" cannot be unwrapped with the current master key',
	'new master key, before rewrap: encrypt -> 39000');
SELECT is(pg_temp.got('N.decrypt_b1'),
	'err:39000:data key 1 of tenant "mkb" cannot be unwrapped with the current master key',
	'new master key, before rewrap: other tenant -> 39000');
SELECT is(pg_temp.got('N.decrypt_c1'), 'err:55000:key destroyed',
	'new master key: a shredded tenant still gets 55000 key destroyed');
SELECT is(pg_temp.got('N.rewrap_without_previous'), 'err:39000:master key is not available',
	'rewrap_keys without previous_master_key_command -> 39000');
SELECT is(pg_temp.got('N.wrapped_after_failed_rewrap'), pg_temp.got('0.wrapped'),
	'the failed rewrap changed no wrapped key');

-- rewrap
SELECT is(pg_temp.got('N.rewrap'), 'ok:3', 'rewrap_keys() rewraps 3 keys (destroyed keys are skipped)');
SELECT is(pg_temp.got('N.rewrap_again'), 'ok:0', 'a second rewrap_keys() finds nothing to do');
SELECT is(pg_temp.got('N.keys'), pg_temp.got('0.keys'), 'rewrap changes no version or state');
SELECT isnt(pg_temp.got('N.wrapped'), pg_temp.got('0.wrapped'), 'but the wrapped key material changed');
SELECT is(pg_temp.got('N2.decrypt_a1'), 'ok:alpha', 'after rewrap (cache emptied): version-1 ciphertext decrypts');
SELECT is(pg_temp.got('N2.decrypt_a2'), 'ok:alpha two', 'after rewrap: version-2 ciphertext decrypts');
SELECT is(pg_temp.got('N2.blind_index'), 'ok:true', 'after rewrap: the blind index is unchanged');
SELECT is(pg_temp.got('N2.decrypt_a3'), 'ok:alpha three', 'after rewrap: encrypt and decrypt work');
SELECT is(pg_temp.got('N2.version_a3'), 'ok:2', 'after rewrap: new ciphertexts still use version 2');
SELECT is(pg_temp.got('N2.decrypt_b1'), 'ok:\x62657461', 'after rewrap: the other tenant decrypts');
SELECT is(pg_temp.got('N2.decrypt_c1'), 'err:55000:key destroyed', 'after rewrap: the shredded tenant stays shredded');
SELECT is(pg_temp.got('N3.previous_setting'), 'ok:' || :'pmk_orig', 'previous_master_key_command reset');
SELECT is(pg_temp.got('N3.decrypt_a1'), 'ok:alpha', 'without the previous key (cache emptied): version 1 decrypts');
SELECT is(pg_temp.got('N3.decrypt_a3'), 'ok:alpha three', 'without the previous key: version 2 decrypts');
SELECT is(pg_temp.got('N3.decrypt_b1'), 'ok:\x62657461', 'without the previous key: the other tenant decrypts');
SELECT is(pg_temp.got('N3.decrypt_d1'), 'ok:delta', 'a first key made under the new master key works');

-- back to the original
SELECT is(pg_temp.got('B.decrypt_d1_before'),
	'err:39000:data key 1 of tenant "mkd" cannot be unwrapped with the current master key',
	'back on the original key, before rewrap: mkd''s key cannot be unwrapped');
SELECT is(pg_temp.got('B.rewrap'), 'ok:4', 'rewrap_keys() back to the original key rewraps 4 keys');
SELECT is(pg_temp.got('B.decrypt_a') || ' ' || pg_temp.got('B.decrypt_d1'), 'ok:alpha,alpha three ok:delta',
	'on the original key again everything decrypts');
SELECT is(pg_temp.got('B.decrypt_b1'), 'ok:\x62657461', 'and the other tenant too');

SELECT * FROM finish();

-- ===================================================================
-- cleanup (roles are cluster-wide)
-- ===================================================================
RESET ROLE;
SELECT tenant_iso.remove_member(member) FROM tenant_iso.members \g /dev/null
DROP OWNED BY crypt_mk_a, crypt_mk_b, crypt_mk_c, crypt_mk_d, crypt_mk_plain;
DROP ROLE crypt_mk_a, crypt_mk_b, crypt_mk_c, crypt_mk_d, crypt_mk_plain;
