-- test/pgtap/crypto.sql: column-level encryption with per-tenant data keys.
--
-- encrypt / decrypt / decrypt_text round trips (empty, binary, unicode,
-- several MB, NULL); refusal of other tenants' and other contexts'
-- ciphertexts; tamper refusal for every region of the envelope (format byte,
-- key version, nonce, ciphertext, tag), truncation and extension, all with
-- the same SQLSTATE, message, detail and hint; rotate_tenant_key (also
-- rolled back); blind_index; shred_tenant; privileges and the keys view;
-- the per-backend key cache with many tenants and many key versions; a
-- parallel worker decrypting.
--
-- Envelope (src/envelope.h), 0-based offsets as used by get_byte/set_byte:
--   0 format (2; 1 for 0.1.0 data) | 1..4 key version BE | 5..16 nonce | 17.. ciphertext | last 16 tag
-- The tamper target 'a_tamper' seals a 16-byte plaintext, so it is 49 bytes:
-- ciphertext 17..32, tag 33..48.
--
-- Master-key changes (rewrap_keys, missing master key) are in
-- crypto_masterkey.sql.  Roles (cluster-wide) carry the prefix crypt_ and are
-- dropped at the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

-- leftovers of an earlier, aborted run
DROP ROLE IF EXISTS crypt_a, crypt_a2, crypt_b, crypt_c, crypt_d, crypt_pool, crypt_plain;
CREATE ROLE crypt_a;		-- member of ta
CREATE ROLE crypt_a2;		-- second member of ta
CREATE ROLE crypt_b;		-- member of tb
CREATE ROLE crypt_c;		-- member of tc (shredded below)
CREATE ROLE crypt_d;		-- member of td (first key made by rotate_tenant_key)
CREATE ROLE crypt_pool;		-- switcher
CREATE ROLE crypt_plain;	-- no tenant at all

SELECT tenant_iso.create_tenant(t) FROM unnest(ARRAY['ta', 'tb', 'tc', 'td']) t \g /dev/null
SELECT tenant_iso.add_member('crypt_a', 'ta') \g /dev/null
SELECT tenant_iso.add_member('crypt_a2', 'ta') \g /dev/null
SELECT tenant_iso.add_member('crypt_b', 'tb') \g /dev/null
SELECT tenant_iso.add_member('crypt_c', 'tc') \g /dev/null
SELECT tenant_iso.add_member('crypt_d', 'td') \g /dev/null
SELECT tenant_iso.grant_switch('crypt_pool') \g /dev/null

-- ciphertexts and blind indexes handed from one role to another
CREATE TABLE crypt_store (k text PRIMARY KEY, v bytea);
GRANT ALL ON crypt_store TO PUBLIC;
CREATE FUNCTION crypt_ct(key text) RETURNS bytea LANGUAGE sql STABLE
	AS $$SELECT v FROM crypt_store WHERE k = key$$;

-- outcome of a statement: 'no error' or 'SQLSTATE|message|detail|hint'
CREATE FUNCTION crypt_err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
	hnt text;
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	RETURN st || '|' || msg || '|' || coalesce(det, '') || '|' || coalesce(hnt, '');
END
$$;
CREATE TABLE crypt_errs (kind text PRIMARY KEY, outcome text);
GRANT ALL ON crypt_errs TO PUBLIC;

-- a value of several MB (6.4 MB of hex text, not compressible to nothing)
CREATE TABLE crypt_big AS
	SELECT t, convert_to(t, 'UTF8') AS b
	  FROM (SELECT string_agg(md5(i::text), '') AS t FROM generate_series(1, 200000) i) s;
GRANT SELECT ON crypt_big TO PUBLIC;

-- every byte value
CREATE TABLE crypt_bytes AS
	SELECT string_agg(set_byte('\x00'::bytea, 0, i), ''::bytea ORDER BY i) AS b
	  FROM generate_series(0, 255) i;
GRANT SELECT ON crypt_bytes TO PUBLIC;

SELECT plan(197);

-- before any key exists: created_at (NOT NULL DEFAULT now()) must fall after it
SELECT now() AS crypt_t0 \gset

-- ===================================================================
-- Surface and privileges
-- ===================================================================
SELECT ok(has_function_privilege('public', 'tenant_iso.encrypt(bytea, text)', 'EXECUTE'),
	'PUBLIC may execute encrypt(bytea, text)');
SELECT ok(has_function_privilege('public', 'tenant_iso.encrypt(text, text)', 'EXECUTE'),
	'PUBLIC may execute encrypt(text, text)');
SELECT ok(has_function_privilege('public', 'tenant_iso.decrypt(bytea, text)', 'EXECUTE'),
	'PUBLIC may execute decrypt(bytea, text)');
SELECT ok(has_function_privilege('public', 'tenant_iso.decrypt_text(bytea, text)', 'EXECUTE'),
	'PUBLIC may execute decrypt_text(bytea, text)');
SELECT ok(has_function_privilege('public', 'tenant_iso.blind_index(text, text, int)', 'EXECUTE'),
	'PUBLIC may execute blind_index(text, text, int)');
SELECT ok(has_function_privilege('public', 'tenant_iso.blind_index(bytea, text, int)', 'EXECUTE'),
	'PUBLIC may execute blind_index(bytea, text, int)');
SELECT ok(NOT has_function_privilege('public', 'tenant_iso.rotate_tenant_key(text)', 'EXECUTE'),
	'PUBLIC may not execute rotate_tenant_key');
SELECT ok(NOT has_function_privilege('public', 'tenant_iso.shred_tenant(text)', 'EXECUTE'),
	'PUBLIC may not execute shred_tenant');
SELECT ok(NOT has_function_privilege('public', 'tenant_iso.rewrap_keys()', 'EXECUTE'),
	'PUBLIC may not execute rewrap_keys');
SELECT ok(NOT has_function_privilege('public', 'tenant_iso.key_version(bytea)', 'EXECUTE'),
	'PUBLIC may not execute key_version');
SELECT ok(NOT has_table_privilege('public', 'tenant_iso.data_keys',
		'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
	'PUBLIC has no privilege at all on tenant_iso.data_keys');
SELECT columns_are('tenant_iso', 'keys',
	ARRAY['tenant_id', 'version', 'state', 'created_at', 'retired_at'],
	'the keys view has exactly tenant_id, version, state, created_at, retired_at (no key material)');
SELECT is((SELECT count(*)::int FROM information_schema.columns
            WHERE table_schema = 'tenant_iso' AND table_name = 'keys' AND data_type = 'bytea'), 0,
	'the keys view has no bytea column');
SELECT ok((SELECT 'tenant_iso.data_keys'::regclass::oid = ANY (extconfig)
             FROM pg_extension WHERE extname = 'tenant_iso'),
	'data_keys is registered with pg_extension_config_dump (dumped with the data)');

SET ROLE crypt_plain;
SELECT throws_ok($$SELECT tenant_iso.rotate_tenant_key('ta')$$, '42501',
	'permission denied for function rotate_tenant_key', 'plain role: rotate_tenant_key -> 42501');
SELECT throws_ok($$SELECT tenant_iso.shred_tenant('ta')$$, '42501',
	'permission denied for function shred_tenant', 'plain role: shred_tenant -> 42501');
SELECT throws_ok($$SELECT tenant_iso.rewrap_keys()$$, '42501',
	'permission denied for function rewrap_keys', 'plain role: rewrap_keys -> 42501');
SELECT throws_ok($$SELECT tenant_iso.key_version('\x01'::bytea)$$, '42501',
	'permission denied for function key_version', 'plain role: key_version -> 42501');
SELECT throws_ok($$SELECT * FROM tenant_iso.data_keys$$, '42501',
	'permission denied for table data_keys', 'plain role cannot read data_keys');
SELECT throws_ok($$UPDATE tenant_iso.data_keys SET state = 'destroyed'$$, '42501', NULL,
	'plain role cannot write data_keys');
RESET ROLE;

SET ROLE crypt_a;
SELECT throws_ok($$SELECT tenant_iso.rotate_tenant_key('ta')$$, '42501',
	'permission denied for function rotate_tenant_key', 'member: rotate_tenant_key of its own tenant -> 42501');
SELECT throws_ok($$SELECT tenant_iso.shred_tenant('tb')$$, '42501',
	'permission denied for function shred_tenant', 'member: shred_tenant -> 42501');
SELECT throws_ok($$SELECT tenant_iso.rewrap_keys()$$, '42501',
	'permission denied for function rewrap_keys', 'member: rewrap_keys -> 42501');
SELECT throws_ok($$SELECT wrapped FROM tenant_iso.data_keys$$, '42501',
	'permission denied for table data_keys', 'member cannot read data_keys');
SELECT throws_ok($$DELETE FROM tenant_iso.data_keys$$, '42501', NULL,
	'member cannot delete from data_keys');
RESET ROLE;

-- ===================================================================
-- No tenant context: 42501
-- ===================================================================
SELECT throws_ok($$SELECT tenant_iso.encrypt('x'::text)$$, '42501', 'no tenant context',
	'superuser without a context: encrypt(text) -> 42501');
SELECT throws_ok($$SELECT tenant_iso.encrypt('\x00'::bytea)$$, '42501', 'no tenant context',
	'superuser without a context: encrypt(bytea) -> 42501');
SELECT throws_ok($$SELECT tenant_iso.decrypt('\x01'::bytea)$$, '42501', 'no tenant context',
	'superuser without a context: decrypt -> 42501');
SELECT throws_ok($$SELECT tenant_iso.decrypt_text('\x01'::bytea)$$, '42501', 'no tenant context',
	'superuser without a context: decrypt_text -> 42501');
SELECT throws_ok($$SELECT tenant_iso.blind_index('x'::text)$$, '42501', 'no tenant context',
	'superuser without a context: blind_index(text) -> 42501');
SELECT throws_ok($$SELECT tenant_iso.blind_index('\x00'::bytea)$$, '42501', 'no tenant context',
	'superuser without a context: blind_index(bytea) -> 42501');
SET ROLE crypt_plain;
SELECT throws_ok($$SELECT tenant_iso.encrypt('x'::text, 'ctx')$$, '42501', 'no tenant context',
	'plain role: encrypt -> 42501');
SELECT throws_ok($$SELECT tenant_iso.decrypt('\x01'::bytea, 'ctx')$$, '42501', 'no tenant context',
	'plain role: decrypt -> 42501');
SELECT throws_ok($$SELECT tenant_iso.blind_index('x'::text, 'ctx', 8)$$, '42501', 'no tenant context',
	'plain role: blind_index -> 42501');
RESET ROLE;
SET ROLE crypt_pool;
SELECT throws_ok($$SELECT tenant_iso.encrypt('x'::text)$$, '42501', 'no tenant context',
	'switcher before set_tenant: encrypt -> 42501');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM tenant_iso.keys), 0,
	'no data key exists before the first encryption');

-- ===================================================================
-- Round trips
-- ===================================================================
SET ROLE crypt_a;
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('a_hello', tenant_iso.encrypt('hello'::text))$$,
	'member crypt_a encrypts (first use creates the key)');
SELECT is(tenant_iso.decrypt_text(crypt_ct('a_hello')), 'hello', 'decrypt_text gives the plaintext back');
SELECT is(tenant_iso.decrypt(crypt_ct('a_hello')), '\x68656c6c6f'::bytea, 'decrypt gives the bytes back');
SELECT is(length(crypt_ct('a_hello')), 5 + 33, 'envelope = plaintext + 33 bytes (17 header + 16 tag)');
SELECT is(get_byte(crypt_ct('a_hello'), 0), 2, 'byte 0 is the format version 2');
SELECT is(substr(crypt_ct('a_hello'), 2, 4), '\x00000001'::bytea, 'bytes 1-4: key version 1, big-endian');
RESET ROLE;
SELECT results_eq(
	$$SELECT tenant_id, version, state, created_at BETWEEN $$ || quote_literal(:'crypt_t0') || $$ AND now(),
	         retired_at IS NULL FROM tenant_iso.keys$$,
	$$VALUES ('ta'::text, 1, 'active'::text, true, true)$$,
	'the first use created exactly one active key, version 1, for ta');
SELECT is(tenant_iso.key_version(crypt_ct('a_hello')), 1::bigint, 'superuser: key_version() reads version 1');
SELECT is(tenant_iso.key_version('\x00'::bytea), NULL::bigint, 'key_version() of a non-envelope is NULL');

SET ROLE crypt_a;
SELECT is((SELECT tenant_iso.decrypt(tenant_iso.encrypt(b)) FROM crypt_bytes),
	(SELECT b FROM crypt_bytes), 'every byte value 0..255 round-trips through encrypt(bytea)/decrypt');
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('a_ssn', tenant_iso.encrypt('123-45-6789'::text, 'ssn'))$$,
	'encrypt with context ssn');
SELECT is(tenant_iso.decrypt_text(crypt_ct('a_ssn'), 'ssn'), '123-45-6789', 'decrypt with the same context');
SELECT is(tenant_iso.decrypt_text(tenant_iso.encrypt(''::text)), '', 'empty text round-trips');
SELECT is(tenant_iso.decrypt(tenant_iso.encrypt(''::bytea)), ''::bytea, 'empty bytea round-trips');
SELECT is(length(tenant_iso.encrypt(''::text)), 33, 'the envelope of an empty value is 33 bytes');
SELECT is(tenant_iso.decrypt_text(tenant_iso.encrypt('Grüße ☃ 日本語 🙂'::text, 'ünï'), 'ünï'), 'Grüße ☃ 日本語 🙂',
	'multi-byte UTF-8 text (and context) round-trips');
SELECT is(tenant_iso.decrypt(tenant_iso.encrypt('héllo'::text)), convert_to('héllo', 'UTF8'),
	'decrypt() of an encrypted text gives its UTF-8 bytes');
SELECT ok((SELECT tenant_iso.decrypt(tenant_iso.encrypt(b)) = b FROM crypt_big),
	'a 6.4 MB bytea round-trips');
SELECT ok((SELECT tenant_iso.decrypt_text(tenant_iso.encrypt(t, 'big'), 'big') = t FROM crypt_big),
	'a 6.4 MB text round-trips (with a context)');
SELECT is((SELECT length(tenant_iso.encrypt(b)) FROM crypt_big), 6400000 + 33,
	'the 6.4 MB envelope is 33 bytes longer');
SELECT is(tenant_iso.encrypt(NULL::text), NULL::bytea, 'encrypt(NULL::text) is NULL');
SELECT is(tenant_iso.encrypt(NULL::bytea, 'ctx'), NULL::bytea, 'encrypt(NULL::bytea) is NULL');
SELECT is(tenant_iso.decrypt(NULL::bytea), NULL::bytea, 'decrypt(NULL) is NULL');
SELECT is(tenant_iso.decrypt_text(NULL::bytea, 'ctx'), NULL::text, 'decrypt_text(NULL) is NULL');
SELECT is(tenant_iso.blind_index(NULL::text), NULL::bytea, 'blind_index(NULL) is NULL');
SELECT is((SELECT count(DISTINCT substr(tenant_iso.encrypt('same'::text), 6, 12))::int
             FROM generate_series(1, 1000)), 1000,
	'1000 encryptions of one value use 1000 different nonces');
SELECT is((SELECT count(DISTINCT tenant_iso.encrypt('same'::text))::int FROM generate_series(1, 100)), 100,
	'encryption is randomized: 100 different ciphertexts for one value');
SELECT throws_ok($$SELECT tenant_iso.decrypt_text(tenant_iso.encrypt('\xff00'::bytea))$$, '22021', NULL,
	'decrypt_text of a non-UTF-8 plaintext -> 22021 (decrypt() is for binary)');
RESET ROLE;

SET ROLE crypt_a2;
SELECT is(tenant_iso.decrypt_text(crypt_ct('a_hello')), 'hello',
	'another member of the same tenant decrypts it');
RESET ROLE;
SET ROLE crypt_pool;
SELECT tenant_iso.set_tenant('ta') \g /dev/null
SELECT is(tenant_iso.decrypt_text(crypt_ct('a_hello')), 'hello', 'a switcher in ta decrypts it');
SELECT tenant_iso.set_tenant('tb') \g /dev/null
SELECT throws_ok($$SELECT tenant_iso.decrypt_text(crypt_ct('a_hello'))$$, '39000', 'decryption failed',
	'the same switcher in tb cannot');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT tenant_iso.set_tenant('ta') \g /dev/null
SELECT is(tenant_iso.decrypt_text(crypt_ct('a_hello')), 'hello', 'a superuser after set_tenant(ta) decrypts it');
SELECT tenant_iso.reset_tenant() \g /dev/null

-- ===================================================================
-- Other tenant, other context: 39000 'decryption failed'
-- ===================================================================
SET ROLE crypt_b;
SELECT throws_ok($$SELECT tenant_iso.decrypt(crypt_ct('a_hello'))$$, '39000', 'decryption failed',
	'tenant tb (no key yet) cannot decrypt ta''s ciphertext');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM tenant_iso.keys WHERE tenant_id = 'tb'), 0,
	'a failed decryption does not create a key');
SET ROLE crypt_b;
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('b_hello', tenant_iso.encrypt('b hello'::text))$$,
	'crypt_b encrypts (tb key version 1)');
SELECT throws_ok($$SELECT tenant_iso.decrypt(crypt_ct('a_hello'))$$, '39000', 'decryption failed',
	'tb (own version 1 key) cannot decrypt ta''s version-1 ciphertext');
SELECT throws_ok($$SELECT tenant_iso.decrypt_text(crypt_ct('a_hello'))$$, '39000', 'decryption failed',
	'nor with decrypt_text');
SELECT throws_ok($$SELECT tenant_iso.decrypt(crypt_ct('a_ssn'), 'ssn')$$, '39000', 'decryption failed',
	'nor with the right context');
RESET ROLE;
SET ROLE crypt_a;
SELECT throws_ok($$SELECT tenant_iso.decrypt(crypt_ct('b_hello'))$$, '39000', 'decryption failed',
	'ta cannot decrypt tb''s ciphertext');
SELECT throws_ok($$SELECT tenant_iso.decrypt(crypt_ct('a_ssn'))$$, '39000', 'decryption failed',
	'context ssn, opened with the default context -> 39000');
SELECT throws_ok($$SELECT tenant_iso.decrypt(crypt_ct('a_ssn'), 'SSN')$$, '39000', 'decryption failed',
	'context ssn, opened with SSN -> 39000');
SELECT throws_ok($$SELECT tenant_iso.decrypt(crypt_ct('a_ssn'), 'ssn ')$$, '39000', 'decryption failed',
	'context ssn, opened with ''ssn '' -> 39000');
SELECT throws_ok($$SELECT tenant_iso.decrypt(crypt_ct('a_hello'), 'ssn')$$, '39000', 'decryption failed',
	'default context, opened with ssn -> 39000');

-- ===================================================================
-- Tampering: every region, truncation, extension -> 39000, same message
-- ===================================================================
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('a_tamper', tenant_iso.encrypt('attack at dawn!!'::text, 'ctx')),
                                                 ('a_other', tenant_iso.encrypt('attack at dusk!!'::text, 'ctx')),
                                                 ('a_empty', tenant_iso.encrypt(''::text, 'ctx'))$$,
	'seal the tamper targets');
SELECT is(length(crypt_ct('a_tamper')), 49, 'the tamper target is 49 bytes');
SELECT is(tenant_iso.decrypt_text(crypt_ct('a_tamper'), 'ctx'), 'attack at dawn!!', 'untouched it opens');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 0, 1), 'ctx')$$,
	'39000', 'decryption failed', 'format byte 2 -> 1 (a downgrade to the 0.1.0 format)');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 0, 0), 'ctx')$$,
	'39000', 'decryption failed', 'format byte 2 -> 0');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 0, 129), 'ctx')$$,
	'39000', 'decryption failed', 'format byte 2 -> 0x81 (the key-wrapping domain)');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 4, 0), 'ctx')$$,
	'39000', 'decryption failed', 'key version 1 -> 0 (low byte)');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 1, 1), 'ctx')$$,
	'39000', 'decryption failed', 'key version 1 -> 0x01000001 (high byte)');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 4, 2), 'ctx')$$,
	'39000', 'decryption failed', 'key version 1 -> 2 (unknown version)');
SELECT throws_ok($$SELECT tenant_iso.decrypt(overlay(crypt_ct('a_tamper') placing '\x7fffffff' from 2), 'ctx')$$,
	'39000', 'decryption failed', 'key version 1 -> 0x7fffffff');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 5, get_byte(crypt_ct('a_tamper'), 5) # 1), 'ctx')$$,
	'39000', 'decryption failed', 'nonce: first byte flipped');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 16, get_byte(crypt_ct('a_tamper'), 16) # 128), 'ctx')$$,
	'39000', 'decryption failed', 'nonce: last byte flipped');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 17, get_byte(crypt_ct('a_tamper'), 17) # 1), 'ctx')$$,
	'39000', 'decryption failed', 'ciphertext: first byte flipped');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 32, get_byte(crypt_ct('a_tamper'), 32) # 64), 'ctx')$$,
	'39000', 'decryption failed', 'ciphertext: last byte flipped');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 33, get_byte(crypt_ct('a_tamper'), 33) # 1), 'ctx')$$,
	'39000', 'decryption failed', 'tag: first byte flipped');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 48, get_byte(crypt_ct('a_tamper'), 48) # 1), 'ctx')$$,
	'39000', 'decryption failed', 'tag: last byte flipped');
SELECT throws_ok($$SELECT tenant_iso.decrypt(overlay(crypt_ct('a_tamper') placing '\x00000000000000000000000000000000' from 34), 'ctx')$$,
	'39000', 'decryption failed', 'tag: zeroed');
-- swap two adjacent ciphertext bytes that differ (equal ones would swap to the same value)
SELECT throws_ok($$SELECT tenant_iso.decrypt(
		(SELECT overlay(c placing substr(c, i + 1, 1) || substr(c, i, 1) from i)
		   FROM (SELECT crypt_ct('a_tamper') AS c) x,
				LATERAL (SELECT min(g) AS i FROM generate_series(18, 32) g
						  WHERE substr(c, g, 1) <> substr(c, g + 1, 1)) y), 'ctx')$$,
	'39000', 'decryption failed', 'ciphertext: two bytes swapped (overlay)');
SELECT throws_ok($$SELECT tenant_iso.decrypt(substr(crypt_ct('a_tamper'), 1, 48), 'ctx')$$,
	'39000', 'decryption failed', 'truncated by 1 byte at the end');
SELECT throws_ok($$SELECT tenant_iso.decrypt(substr(crypt_ct('a_tamper'), 2), 'ctx')$$,
	'39000', 'decryption failed', 'truncated by 1 byte at the start');
SELECT throws_ok($$SELECT tenant_iso.decrypt(crypt_ct('a_tamper') || '\x00'::bytea, 'ctx')$$,
	'39000', 'decryption failed', 'extended by 1 byte at the end');
SELECT throws_ok($$SELECT tenant_iso.decrypt('\x01'::bytea || crypt_ct('a_tamper'), 'ctx')$$,
	'39000', 'decryption failed', 'extended by 1 byte at the start');
SELECT throws_ok($$SELECT tenant_iso.decrypt(substr(crypt_ct('a_empty'), 1, 32), 'ctx')$$,
	'39000', 'decryption failed', 'envelope of an empty value truncated to 32 bytes (shorter than any envelope)');
SELECT throws_ok($$SELECT tenant_iso.decrypt(''::bytea, 'ctx')$$,
	'39000', 'decryption failed', 'empty bytea');
SELECT throws_ok($$SELECT tenant_iso.decrypt(overlay(crypt_ct('a_other') placing substr(crypt_ct('a_tamper'), 1, 17) from 1), 'ctx')$$,
	'39000', 'decryption failed', 'header (nonce) of one envelope spliced onto another');
SELECT throws_ok($$SELECT tenant_iso.decrypt(overlay(crypt_ct('a_tamper') placing substr(crypt_ct('a_other'), 34, 16) from 34), 'ctx')$$,
	'39000', 'decryption failed', 'tag of another envelope');
SELECT throws_ok($$SELECT tenant_iso.decrypt_text(set_byte(crypt_ct('a_tamper'), 40, get_byte(crypt_ct('a_tamper'), 40) # 1), 'ctx')$$,
	'39000', 'decryption failed', 'decrypt_text of a tampered envelope: same error');

-- exhaustive: every bit, every truncation, extensions; recorded, then compared
INSERT INTO crypt_errs
SELECT format('flip byte %s bit %s', p, b),
       crypt_err(format('SELECT tenant_iso.decrypt(set_byte(crypt_ct(%L), %s, get_byte(crypt_ct(%L), %s) # %s), %L)',
                        'a_tamper', p, 'a_tamper', p, 1 << b, 'ctx'))
  FROM generate_series(0, 48) p, generate_series(0, 7) b;
INSERT INTO crypt_errs
SELECT format('truncate to %s', n),
       crypt_err(format('SELECT tenant_iso.decrypt(substr(crypt_ct(%L), 1, %s), %L)', 'a_tamper', n, 'ctx'))
  FROM generate_series(0, 48) n;
INSERT INTO crypt_errs
SELECT format('drop first %s', n),
       crypt_err(format('SELECT tenant_iso.decrypt(substr(crypt_ct(%L), %s), %L)', 'a_tamper', n + 1, 'ctx'))
  FROM generate_series(1, 48) n;
INSERT INTO crypt_errs
SELECT format('append %s', x),
       crypt_err(format('SELECT tenant_iso.decrypt(crypt_ct(%L) || %L::bytea, %L)', 'a_tamper', x, 'ctx'))
  FROM unnest(ARRAY['\x00', '\x01', '\xff', '\x0000', '\x00000000000000000000000000000000']) x;
INSERT INTO crypt_errs VALUES
	('other context', crypt_err($$SELECT tenant_iso.decrypt(crypt_ct('a_tamper'), 'ctx2')$$)),
	('no context', crypt_err($$SELECT tenant_iso.decrypt(crypt_ct('a_tamper'))$$)),
	('version 2 unknown', crypt_err($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 4, 2), 'ctx')$$)),
	('format 1 (downgrade)', crypt_err($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_tamper'), 0, 1), 'ctx')$$)),
	('text: other context', crypt_err($$SELECT tenant_iso.decrypt_text(crypt_ct('a_tamper'), 'ctx2')$$)),
	('other tenant (ta opens tb)', crypt_err($$SELECT tenant_iso.decrypt(crypt_ct('b_hello'))$$));
RESET ROLE;
SET ROLE crypt_b;
INSERT INTO crypt_errs VALUES
	('other tenant (tb opens ta)', crypt_err($$SELECT tenant_iso.decrypt(crypt_ct('a_tamper'), 'ctx')$$)),
	('other tenant, text', crypt_err($$SELECT tenant_iso.decrypt_text(crypt_ct('a_tamper'), 'ctx')$$));
RESET ROLE;

SELECT is((SELECT count(*)::int FROM crypt_errs WHERE kind LIKE 'flip %' AND outcome LIKE '39000|decryption failed|%'),
	49 * 8, 'each of the 392 single-bit flips (every byte of the envelope) -> 39000 decryption failed');
SELECT is((SELECT count(*)::int FROM crypt_errs WHERE kind LIKE 'truncate %' AND outcome LIKE '39000|decryption failed|%'),
	49, 'every truncation of the end (0..48 bytes kept) -> 39000 decryption failed');
SELECT is((SELECT count(*)::int FROM crypt_errs WHERE kind LIKE 'drop first %' AND outcome LIKE '39000|decryption failed|%'),
	48, 'dropping 1..48 leading bytes -> 39000 decryption failed');
SELECT is((SELECT count(*)::int FROM crypt_errs WHERE kind LIKE 'append %' AND outcome LIKE '39000|decryption failed|%'),
	5, 'appending 1, 2 or 16 bytes -> 39000 decryption failed');
SELECT is((SELECT count(*)::int FROM crypt_errs), 392 + 49 + 48 + 5 + 6 + 2, 'all refusals were recorded');
SELECT results_eq($$SELECT DISTINCT outcome FROM crypt_errs$$,
	$$SELECT outcome FROM crypt_errs WHERE kind = 'other tenant (tb opens ta)'$$,
	'tampering, truncation, extension, wrong version/format, other context and other tenant: '
	'one identical error (SQLSTATE, message, detail, hint)');
SELECT is((SELECT split_part(outcome, '|', 1) || ' ' || split_part(outcome, '|', 2)
             FROM crypt_errs WHERE kind = 'other tenant (tb opens ta)'),
	'39000 decryption failed', 'and that error is 39000 decryption failed');

-- ===================================================================
-- Rotation
-- ===================================================================
SELECT is(tenant_iso.rotate_tenant_key('ta'), 2, 'rotate_tenant_key(ta) returns the new version 2');
SELECT results_eq(
	$$SELECT version, state, retired_at IS NOT NULL FROM tenant_iso.keys WHERE tenant_id = 'ta' ORDER BY version$$,
	$$VALUES (1, 'retired'::text, true), (2, 'active', false)$$,
	'keys: ta version 1 retired (retired_at set), version 2 active');
SET ROLE crypt_a;
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('a_v2', tenant_iso.encrypt('after rotation'::text))$$,
	'crypt_a encrypts after the rotation');
SELECT is(substr(crypt_ct('a_v2'), 2, 4), '\x00000002'::bytea, 'the new envelope carries version 2');
SELECT is(tenant_iso.decrypt_text(crypt_ct('a_v2')), 'after rotation', 'it decrypts');
SELECT is(tenant_iso.decrypt_text(crypt_ct('a_hello')), 'hello', 'a version-1 ciphertext still decrypts');
SELECT is(tenant_iso.decrypt_text(crypt_ct('a_ssn'), 'ssn'), '123-45-6789', 'with its context too');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_v2'), 4, 1))$$, '39000', 'decryption failed',
	'a version-2 envelope relabelled as version 1 (an existing key) -> 39000');
SELECT throws_ok($$SELECT tenant_iso.decrypt(set_byte(crypt_ct('a_hello'), 4, 2))$$, '39000', 'decryption failed',
	'a version-1 envelope relabelled as version 2 (the active key) -> 39000');
RESET ROLE;
SELECT is(tenant_iso.key_version(crypt_ct('a_v2')), 2::bigint, 'superuser: key_version() shows 2');
SELECT is(tenant_iso.rotate_tenant_key('ta'), 3, 'a second rotation returns 3');
SELECT results_eq(
	$$SELECT version, state FROM tenant_iso.keys WHERE tenant_id = 'ta' ORDER BY version$$,
	$$VALUES (1, 'retired'::text), (2, 'retired'), (3, 'active')$$,
	'keys: ta 1 and 2 retired, 3 active');
SET ROLE crypt_a;
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('a_v3', tenant_iso.encrypt('third'::text))$$,
	'encrypt after the second rotation');
SELECT is(ARRAY[tenant_iso.decrypt_text(crypt_ct('a_hello')), tenant_iso.decrypt_text(crypt_ct('a_v2')),
                tenant_iso.decrypt_text(crypt_ct('a_v3'))],
	ARRAY['hello', 'after rotation', 'third'], 'versions 1, 2 and 3 all decrypt');
RESET ROLE;
SELECT is(tenant_iso.key_version(crypt_ct('a_v3')), 3::bigint, 'the new envelope carries version 3');
SELECT is((SELECT count(*)::int FROM tenant_iso.keys WHERE tenant_id = 'tb'), 1,
	'rotating ta did not touch tb');

-- a tenant without any key: rotation creates version 1
SELECT is(tenant_iso.rotate_tenant_key('td'), 1, 'rotate_tenant_key of a tenant without keys returns 1');
SET ROLE crypt_d;
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('d_one', tenant_iso.encrypt('dee'::text))$$, 'crypt_d encrypts');
SELECT is(tenant_iso.decrypt_text(crypt_ct('d_one')), 'dee', 'and decrypts');
RESET ROLE;
SELECT results_eq($$SELECT version, state FROM tenant_iso.keys WHERE tenant_id = 'td'$$,
	$$VALUES (1, 'active'::text)$$, 'td has exactly the key made by rotate_tenant_key, version 1, active');

SELECT throws_ok($$SELECT tenant_iso.rotate_tenant_key('nosuch')$$, '42704', NULL,
	'rotate_tenant_key of an unknown tenant -> 42704');
SELECT throws_ok($$SELECT tenant_iso.rotate_tenant_key('bad id')$$, '22023', NULL,
	'rotate_tenant_key with an invalid id -> 22023');
SELECT throws_ok($$SELECT tenant_iso.rotate_tenant_key('')$$, '22023', NULL,
	'rotate_tenant_key with an empty id -> 22023');
SELECT throws_ok($$SELECT tenant_iso.rotate_tenant_key(NULL)$$, '22023', NULL,
	'rotate_tenant_key(NULL) -> 22023');

-- a rolled-back rotation leaves no trace, also not in this backend's key cache
BEGIN;
SELECT tenant_iso.rotate_tenant_key('ta') AS rb_version \gset
SET LOCAL ROLE crypt_a;
SELECT substr(tenant_iso.encrypt('rolled back'::text), 2, 4) AS rb_header \gset
ROLLBACK;
SELECT is(:'rb_version'::text, '4', 'inside the transaction the rotation returned 4');
SELECT is(:'rb_header'::text, '\x00000004', 'and encrypt used version 4 there');
SET ROLE crypt_a;
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('a_after_rb', tenant_iso.encrypt('after rollback'::text))$$,
	'encrypt after the ROLLBACK');
RESET ROLE;
SELECT is(tenant_iso.key_version(crypt_ct('a_after_rb')), 3::bigint,
	'after ROLLBACK new encryptions use version 3 again');
SELECT is((SELECT max(version) FROM tenant_iso.keys WHERE tenant_id = 'ta'), 3, 'version 4 does not exist');
BEGIN;
SAVEPOINT s1;
SELECT tenant_iso.rotate_tenant_key('ta') \g /dev/null
ROLLBACK TO SAVEPOINT s1;
SET LOCAL ROLE crypt_a;
SELECT substr(tenant_iso.encrypt('after savepoint'::text), 2, 4) AS sp_header \gset
COMMIT;
SELECT is(:'sp_header'::text, '\x00000003', 'a rotation rolled back to a savepoint is forgotten at once');
-- and a first key created in a rolled-back transaction
BEGIN;
SET LOCAL ROLE crypt_c;
SELECT tenant_iso.encrypt('gone'::text) \g /dev/null
ROLLBACK;
SELECT is((SELECT count(*)::int FROM tenant_iso.keys WHERE tenant_id = 'tc'), 0,
	'a first key created in a rolled-back transaction is gone');

-- ===================================================================
-- Blind index
-- ===================================================================
SET ROLE crypt_a;
SELECT is(tenant_iso.blind_index('alice@example.com'), tenant_iso.blind_index('alice@example.com'),
	'blind_index is deterministic');
SELECT is(length(tenant_iso.blind_index('x')), 16, 'default length 16 bytes');
SELECT is(length(tenant_iso.blind_index('x', '', 32)), 32, '32 bytes');
SELECT is(length(tenant_iso.blind_index('x'::bytea, '', 1)), 1, '1 byte (bytea variant)');
SELECT is(tenant_iso.blind_index('x', 'c', 8), substr(tenant_iso.blind_index('x', 'c', 32), 1, 8),
	'a shorter index is a prefix of the longer one');
SELECT isnt(tenant_iso.blind_index('x'), tenant_iso.blind_index('y'), 'different values, different indexes');
SELECT isnt(tenant_iso.blind_index('x', 'c1'), tenant_iso.blind_index('x', 'c2'), 'different contexts differ');
SELECT isnt(tenant_iso.blind_index('x', ''), tenant_iso.blind_index('x', 'c1'), 'default context differs from c1');
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('a_bi_x', tenant_iso.blind_index('x', 'email'))$$,
	'store ta''s blind index of x');
SELECT throws_ok($$SELECT tenant_iso.blind_index('x', '', 0)$$, '22023',
	'blind index length must be between 1 and 32 bytes', 'bytes = 0 -> 22023');
SELECT throws_ok($$SELECT tenant_iso.blind_index('x', '', 33)$$, '22023', NULL, 'bytes = 33 -> 22023');
SELECT throws_ok($$SELECT tenant_iso.blind_index('x', '', -1)$$, '22023', NULL, 'bytes = -1 -> 22023');
SELECT throws_ok($$SELECT tenant_iso.blind_index('x'::bytea, 'c', 1000)$$, '22023', NULL,
	'bytes = 1000 (bytea variant) -> 22023');
RESET ROLE;
SET ROLE crypt_a2;
SELECT is(tenant_iso.blind_index('x', 'email'), crypt_ct('a_bi_x'), 'another member of ta computes the same index');
RESET ROLE;
SET ROLE crypt_pool;
SELECT tenant_iso.set_tenant('ta') \g /dev/null
SELECT is(tenant_iso.blind_index('x', 'email'), crypt_ct('a_bi_x'), 'a switcher in ta computes the same index');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SET ROLE crypt_b;
SELECT isnt(tenant_iso.blind_index('x', 'email'), crypt_ct('a_bi_x'), 'tenant tb gets a different index');
RESET ROLE;
SET ROLE crypt_d;
SELECT isnt(tenant_iso.blind_index('x', 'email'), crypt_ct('a_bi_x'), 'tenant td gets a different index');
RESET ROLE;
SELECT is(tenant_iso.rotate_tenant_key('ta'), 4, 'rotate ta to version 4');
SET ROLE crypt_a;
SELECT isnt(tenant_iso.blind_index('x', 'email'), crypt_ct('a_bi_x'),
	'after rotation the blind index changes (documented)');
SELECT is(tenant_iso.blind_index('x', 'email'), tenant_iso.blind_index('x', 'email'),
	'and is deterministic under the new version');
SELECT is(ARRAY[tenant_iso.decrypt_text(crypt_ct('a_hello')), tenant_iso.decrypt_text(crypt_ct('a_v2')),
                tenant_iso.decrypt_text(crypt_ct('a_v3')), tenant_iso.decrypt_text(crypt_ct('a_after_rb'))],
	ARRAY['hello', 'after rotation', 'third', 'after rollback'], 'all older versions still decrypt');
RESET ROLE;

-- ===================================================================
-- Shredding
-- ===================================================================
SET ROLE crypt_c;
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('c_one', tenant_iso.encrypt('doomed'::text, 'x'))$$,
	'crypt_c encrypts (version 1)');
RESET ROLE;
SELECT is(tenant_iso.rotate_tenant_key('tc'), 2, 'rotate tc to version 2');
SET ROLE crypt_c;
SELECT lives_ok($$INSERT INTO crypt_store VALUES ('c_two', tenant_iso.encrypt('doomed too'::text))$$,
	'crypt_c encrypts (version 2)');
SELECT is(ARRAY[tenant_iso.decrypt_text(crypt_ct('c_one'), 'x'), tenant_iso.decrypt_text(crypt_ct('c_two'))],
	ARRAY['doomed', 'doomed too'], 'before shredding both decrypt');
RESET ROLE;
SELECT is(tenant_iso.shred_tenant('tc'), 2, 'shred_tenant(tc) destroys 2 keys');
SELECT results_eq($$SELECT version, state FROM tenant_iso.keys WHERE tenant_id = 'tc' ORDER BY version$$,
	$$VALUES (1, 'destroyed'::text), (2, 'destroyed')$$, 'keys: both tc versions destroyed');
SELECT ok((SELECT bool_and(wrapped IS NULL AND destroyed_at IS NOT NULL)
             FROM tenant_iso.data_keys WHERE tenant_id = 'tc'),
	'the wrapped key material is gone from data_keys');
SET ROLE crypt_c;
SELECT throws_ok($$SELECT tenant_iso.decrypt(crypt_ct('c_one'), 'x')$$, '55000', 'key destroyed',
	'shredded tenant: decrypt of a version-1 ciphertext -> 55000 key destroyed');
SELECT throws_ok($$SELECT tenant_iso.decrypt_text(crypt_ct('c_two'))$$, '55000', 'key destroyed',
	'shredded tenant: decrypt_text of a version-2 ciphertext -> 55000 key destroyed');
SELECT throws_ok($$SELECT tenant_iso.encrypt('new'::text)$$, '55000', 'key destroyed',
	'shredded tenant: encrypt -> 55000');
SELECT throws_ok($$SELECT tenant_iso.blind_index('x')$$, '55000', 'key destroyed',
	'shredded tenant: blind_index -> 55000');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM tenant_iso.keys WHERE tenant_id = 'tc'), 2,
	'the refused encrypt did not create a new key');
SET ROLE crypt_a;
SELECT is(tenant_iso.decrypt_text(crypt_ct('a_hello')), 'hello', 'other tenants unaffected: ta still decrypts');
SELECT is(tenant_iso.decrypt_text(tenant_iso.encrypt('fresh'::text)), 'fresh', 'and encrypts');
RESET ROLE;
SET ROLE crypt_b;
SELECT is(tenant_iso.decrypt_text(crypt_ct('b_hello')), 'b hello', 'tb still decrypts');
RESET ROLE;
SELECT is(tenant_iso.shred_tenant('tc'), 0, 'shredding again destroys 0 keys');
SELECT throws_ok($$SELECT tenant_iso.shred_tenant('nosuch')$$, '42704', NULL, 'shred_tenant of an unknown tenant -> 42704');
SELECT throws_ok($$SELECT tenant_iso.shred_tenant('bad id')$$, '22023', NULL, 'shred_tenant with an invalid id -> 22023');
-- a rolled-back shred leaves the keys usable, also in this backend
BEGIN;
SELECT tenant_iso.shred_tenant('tb') \g /dev/null
SET LOCAL ROLE crypt_b;
SELECT crypt_err($$SELECT tenant_iso.decrypt(crypt_ct('b_hello'))$$) AS shred_in_tx \gset
ROLLBACK;
SELECT alike(:'shred_in_tx'::text, '55000|key destroyed|%', 'inside the shredding transaction tb''s key is destroyed');
SET ROLE crypt_b;
SELECT is(tenant_iso.decrypt_text(crypt_ct('b_hello')), 'b hello', 'after ROLLBACK tb decrypts again');
RESET ROLE;

-- ===================================================================
-- One backend serving many tenants (a switcher pool): the per-backend key
-- cache holds 256 keys; 100 tenants with 3 versions each are 300 keys.
-- ===================================================================
SELECT tenant_iso.create_tenant('crypt_many_' || i) FROM generate_series(1, 100) i \g /dev/null
CREATE TABLE crypt_many (i int PRIMARY KEY, t text, ct bytea);
DO $$
BEGIN
	FOR i IN 1..100 LOOP
		PERFORM tenant_iso.set_tenant('crypt_many_' || i);
		INSERT INTO crypt_many VALUES (i, 'crypt_many_' || i, tenant_iso.encrypt('many ' || i));
		PERFORM tenant_iso.reset_tenant();
		PERFORM tenant_iso.rotate_tenant_key('crypt_many_' || i);
		PERFORM tenant_iso.rotate_tenant_key('crypt_many_' || i);
	END LOOP;
END
$$;
-- decrypt every tenant's version-1 ciphertext in turn; list the failures
CREATE FUNCTION crypt_many_try(upto int DEFAULT 100) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r record;
	bad text[] := '{}';
BEGIN
	FOR r IN SELECT * FROM crypt_many WHERE i <= upto ORDER BY i LOOP
		PERFORM tenant_iso.set_tenant(r.t);
		BEGIN
			IF tenant_iso.decrypt_text(r.ct) IS DISTINCT FROM 'many ' || r.i THEN
				bad := bad || (r.t || ': wrong plaintext');
			END IF;
		EXCEPTION WHEN OTHERS THEN
			bad := bad || (r.t || ': ' || SQLSTATE || ' ' || SQLERRM);
		END;
	END LOOP;
	PERFORM tenant_iso.reset_tenant();
	RETURN array_to_string(bad, '; ');
END
$$;
SELECT is((SELECT count(*)::int FROM tenant_iso.keys WHERE tenant_id LIKE 'crypt\_many\_%'), 300,
	'100 tenants with 3 key versions each');
-- any configuration change empties this backend's key cache: start from empty
SELECT tenant_iso.create_tenant('crypt_many_flush') \g /dev/null
SELECT is(crypt_many_try(), '',
	'one backend decrypts the version-1 ciphertexts of 100 tenants in turn (300 keys, more than the cache holds)');
SELECT tenant_iso.create_tenant('crypt_many_flush2') \g /dev/null
SELECT tenant_iso.set_tenant('crypt_many_86') \g /dev/null
SELECT is(tenant_iso.decrypt_text((SELECT ct FROM crypt_many WHERE i = 86)), 'many 86',
	'with an empty cache crypt_many_86''s version-1 ciphertext opens');
SELECT tenant_iso.reset_tenant() \g /dev/null

-- tenants with many key versions (e.g. rotated daily): every version stays
-- usable, whether the cache starts empty or already holds other keys
SELECT tenant_iso.create_tenant('crypt_k140') \g /dev/null
SELECT tenant_iso.create_tenant('crypt_k300') \g /dev/null
CREATE TABLE crypt_kv (t text PRIMARY KEY, ct bytea);
SELECT tenant_iso.set_tenant('crypt_k140') \g /dev/null
INSERT INTO crypt_kv VALUES ('crypt_k140', tenant_iso.encrypt('k140 v1'));
SELECT tenant_iso.set_tenant('crypt_k300') \g /dev/null
INSERT INTO crypt_kv VALUES ('crypt_k300', tenant_iso.encrypt('k300 v1'));
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT count(tenant_iso.rotate_tenant_key('crypt_k140')) FROM generate_series(2, 140) \g /dev/null
SELECT count(tenant_iso.rotate_tenant_key('crypt_k300')) FROM generate_series(2, 300) \g /dev/null
SELECT is((SELECT count(*)::int FROM tenant_iso.keys WHERE tenant_id IN ('crypt_k140', 'crypt_k300')), 440,
	'tenants crypt_k140 and crypt_k300 have 140 and 300 key versions');
SELECT tenant_iso.create_tenant('crypt_many_flush3') \g /dev/null
SELECT tenant_iso.set_tenant('crypt_k300') \g /dev/null
SELECT is(crypt_err($$SELECT tenant_iso.decrypt_text(ct) FROM crypt_kv WHERE t = 'crypt_k300'$$), 'no error',
	'a tenant with 300 key versions: its version-1 ciphertext decrypts (empty cache)');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT tenant_iso.create_tenant('crypt_many_flush4') \g /dev/null
SELECT is(crypt_many_try(42), '', 'decrypting for 42 tenants first puts their keys in the cache');
SELECT tenant_iso.set_tenant('crypt_k140') \g /dev/null
SELECT is(crypt_err($$SELECT tenant_iso.decrypt_text(ct) FROM crypt_kv WHERE t = 'crypt_k140'$$), 'no error',
	'then a tenant with 140 key versions: its version-1 ciphertext decrypts');
SELECT tenant_iso.reset_tenant() \g /dev/null

-- ===================================================================
-- Encrypted columns of a protected table; decrypt in a parallel worker
-- ===================================================================
CREATE TABLE crypt_docs (tenant_id text NOT NULL, id int, body bytea, body_bi bytea);
GRANT SELECT, INSERT ON crypt_docs TO PUBLIC;
SELECT tenant_iso.protect('crypt_docs') \g /dev/null
SET ROLE crypt_a;
INSERT INTO crypt_docs (id, body, body_bi)
	SELECT i, tenant_iso.encrypt('a' || i, 'docs.body'), tenant_iso.blind_index('a' || i, 'docs.body')
	  FROM generate_series(1, 3) i;
RESET ROLE;
SET ROLE crypt_b;
INSERT INTO crypt_docs (id, body, body_bi)
	SELECT i, tenant_iso.encrypt('b' || i, 'docs.body'), tenant_iso.blind_index('b' || i, 'docs.body')
	  FROM generate_series(1, 2) i;
SELECT results_eq($$SELECT tenant_iso.decrypt_text(body, 'docs.body') FROM crypt_docs ORDER BY id$$,
	ARRAY['b1', 'b2'], 'crypt_b reads and decrypts its own rows of a protected table');
RESET ROLE;
SET ROLE crypt_a;
SELECT results_eq($$SELECT tenant_iso.decrypt_text(body, 'docs.body') FROM crypt_docs ORDER BY id$$,
	ARRAY['a1', 'a2', 'a3'], 'crypt_a reads and decrypts its own rows');
SELECT results_eq($$SELECT id FROM crypt_docs WHERE body_bi = tenant_iso.blind_index('a2', 'docs.body')$$,
	ARRAY[2], 'equality search through the blind index finds row 2');
RESET ROLE;

CREATE TABLE crypt_par (id int, v bytea);
GRANT SELECT, INSERT ON crypt_par TO PUBLIC;
CREATE FUNCTION crypt_plan(sql text) RETURNS text LANGUAGE plpgsql AS $$
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
SET ROLE crypt_a;
INSERT INTO crypt_par SELECT i, tenant_iso.encrypt('p' || i, 'par') FROM generate_series(1, 50) i;
\ir include/parallel_guc.sql
SET :"parallel_guc" = on;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT crypt_plan($$SELECT string_agg(tenant_iso.decrypt_text(v, 'par'), ',' ORDER BY id) FROM crypt_par$$) AS par_plan \gset
SELECT string_agg(tenant_iso.decrypt_text(v, 'par'), ',' ORDER BY id) AS par_result FROM crypt_par \gset
RESET :"parallel_guc";
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
-- decrypt is PARALLEL RESTRICTED (issue 11 §4: a worker would run
-- master_key_command again): the scan runs in workers, decrypt in the leader
SELECT alike(:'par_plan'::text, '%Gather%Parallel Seq Scan%', 'the decrypting query scans in parallel workers (Gather)');
SELECT is(:'par_result'::text, (SELECT string_agg('p' || i, ',' ORDER BY i) FROM generate_series(1, 50) i),
	'a parallel query decrypts with the member''s tenant key');
RESET ROLE;

SELECT * FROM finish();

-- ===================================================================
-- cleanup (roles are cluster-wide)
-- ===================================================================
RESET ROLE;
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT tenant_iso.remove_member(member) FROM tenant_iso.members \g /dev/null
SELECT tenant_iso.revoke_switch(grantee) FROM tenant_iso.switchers \g /dev/null
DROP OWNED BY crypt_a, crypt_a2, crypt_b, crypt_c, crypt_d, crypt_pool, crypt_plain;
DROP ROLE crypt_a, crypt_a2, crypt_b, crypt_c, crypt_d, crypt_pool, crypt_plain;
