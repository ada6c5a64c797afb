-- test/pgtap/tokens.sql: signed tenant tokens (issue_token / set_tenant_token).
--
-- Happy path for a role that is neither member nor switcher; altered,
-- forged, truncated, extended, empty, garbage and NULL tokens; expiry and
-- replay after expiry; unknown and suspended tenants; a member presenting a
-- token for another tenant; uniqueness; the token never appearing in an
-- error; privileges and argument checks of issue_token.
--
-- Token format (src/token.h): 'ti2.' || base64url(payload || HMAC-SHA256),
-- payload = version(1) = 2 | kid uint32 BE | issued int64 BE (Unix us) |
-- expiry int64 BE (Unix s) | audience id(16) | nonce(16) | idlen(1) | id.
-- Byte offsets (0-based): kid 1, issued 5, expiry 13, audience 21, nonce
-- 37, idlen 53, id 54; the MAC follows the id.
--
-- Sections 11-16 (issue 11): token_max_ttl, revoke_tokens, suspend and
-- resume, rotate_token_key, token_audience, and a token replayed into
-- another database of this cluster (dblink).  Another cluster is
-- test/cluster/t_token_audience.sh.
-- The helpers tok_s.raw() / tok_s.enc() decode and re-encode it, so that
-- forgeries change exactly the field they mean to change.
--
-- Roles (cluster-wide) carry the prefix tok_ and are dropped at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;
CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public;

DROP ROLE IF EXISTS tok_plain, tok_m, tok_pool, tok_issuer, tok_login;
DROP DATABASE IF EXISTS pgtap_tokens_other WITH (FORCE);
CREATE DATABASE pgtap_tokens_other;  -- section 16: same cluster, same master key
CREATE ROLE tok_login LOGIN;  -- a second session (dblink), neither member nor switcher
CREATE ROLE tok_plain;    -- neither member nor switcher: enters with tokens only
CREATE ROLE tok_m;        -- member of acme
CREATE ROLE tok_pool;     -- switcher
CREATE ROLE tok_issuer;   -- granted EXECUTE on issue_token

SELECT tenant_iso.create_tenant(t) FROM unnest(ARRAY['acme', 'beta', 'gone', 'susp']) t \g /dev/null
SELECT tenant_iso.add_member('tok_m', 'acme') \g /dev/null
SELECT tenant_iso.grant_switch('tok_pool') \g /dev/null

CREATE TABLE public.tok_data (tenant_id text NOT NULL, v int NOT NULL);
INSERT INTO public.tok_data VALUES ('acme', 1), ('acme', 2), ('beta', 3), ('susp', 4), ('gone', 5);
SELECT tenant_iso.protect('public.tok_data') \g /dev/null
GRANT SELECT ON public.tok_data TO tok_plain, tok_m, tok_pool, tok_issuer;

CREATE SCHEMA tok_s;
GRANT USAGE ON SCHEMA tok_s TO PUBLIC;
-- the raw bytes of a token (payload || mac)
CREATE FUNCTION tok_s.raw(t text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
	SELECT decode(b || repeat('=', (4 - length(b) % 4) % 4), 'base64')
	  FROM (SELECT translate(substr(t, 5), '-_', '+/') AS b) s $$;
-- the token text for raw bytes
CREATE FUNCTION tok_s.enc(r bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT 'ti2.' || rtrim(translate(replace(encode(r, 'base64'), E'\n', ''), '+/', '-_'), '=') $$;
-- the expiry field (Unix seconds)
CREATE FUNCTION tok_s.expiry(t text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
	SELECT ('x' || encode(substring(tok_s.raw(t) FROM 14 FOR 8), 'hex'))::bit(64)::bigint $$;
-- the issue time field (Unix microseconds)
CREATE FUNCTION tok_s.issued(t text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
	SELECT ('x' || encode(substring(tok_s.raw(t) FROM 6 FOR 8), 'hex'))::bit(64)::bigint $$;
-- the key id field
CREATE FUNCTION tok_s.kid(t text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
	SELECT ('x' || encode(substring(tok_s.raw(t) FROM 2 FOR 4), 'hex'))::bit(32)::int $$;
-- the token with its key id field replaced (MAC left as it was)
CREATE FUNCTION tok_s.with_kid(t text, k int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT tok_s.enc(overlay(tok_s.raw(t) PLACING decode(lpad(to_hex(k), 8, '0'), 'hex') FROM 2 FOR 4)) $$;
-- the audience id field
CREATE FUNCTION tok_s.aud(t text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
	SELECT substring(tok_s.raw(t) FROM 22 FOR 16) $$;
-- the token with its expiry field replaced (MAC left as it was)
CREATE FUNCTION tok_s.with_expiry(t text, e bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT tok_s.enc(overlay(tok_s.raw(t) PLACING decode(lpad(to_hex(e), 16, '0'), 'hex') FROM 14 FOR 8)) $$;
-- the token with character i (1-based) replaced by another base64url character
CREATE FUNCTION tok_s.flip(t text, i int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT overlay(t PLACING CASE WHEN substr(t, i, 1) = 'A' THEN 'B' ELSE 'A' END FROM i FOR 1) $$;
-- which tenants' rows the current role sees
CREATE FUNCTION tok_s.seen() RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce(string_agg(tenant_id || ':' || n, ',' ORDER BY tenant_id), '')
	  FROM (SELECT tenant_id, count(*) n FROM public.tok_data GROUP BY tenant_id) s $$;
-- every text field of the error set_tenant_token raises for a token
CREATE FUNCTION tok_s.error_of(t text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text; d text; h text; c text;
BEGIN
	PERFORM tenant_iso.set_tenant_token(t);
	RETURN 'no error';
EXCEPTION WHEN others THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
		h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT;
	RETURN st || ' | ' || m || ' | ' || coalesce(d, '') || ' | ' || coalesce(h, '') || ' | ' || coalesce(c, '');
END $$;
-- true when no text field of that error contains the token or a piece of it
CREATE FUNCTION tok_s.error_hides(t text) RETURNS boolean LANGUAGE sql AS $$
	SELECT e <> 'no error' AND strpos(e, t) = 0 AND strpos(e, substr(t, 5, 16)) = 0
	   AND strpos(e, substr(t, length(t) - 15)) = 0
	  FROM (SELECT tok_s.error_of(t) AS e) s $$;
-- present a token the way an application wrapper with dynamic SQL would
-- (the token is a literal in the statement text); errors are swallowed
CREATE FUNCTION tok_s.present(t text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('SELECT tenant_iso.set_tenant_token(%L)', t);
EXCEPTION WHEN others THEN
	NULL;
END $$;
-- a libpq connection string for a second session on this server
CREATE FUNCTION tok_s.connstr(u text, db text) RETURNS text LANGUAGE sql STABLE AS $$
	SELECT format('host=127.0.0.1 port=%s dbname=%s user=%s', current_setting('port'), db, u) $$;
-- present a token on a dblink connection (errors come back with their SQLSTATE)
CREATE FUNCTION tok_s.present_on(conn text, t text) RETURNS void LANGUAGE sql AS $$
	SELECT FROM public.dblink(conn, format('SELECT tenant_iso.set_tenant_token(%L)::text', t)) AS r(v text) $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tok_s TO PUBLIC;
-- The server log, when this superuser session can read it: the file named
-- by pg_current_logfile(), or server.log in the data directory (where
-- scripts/test and test/lib/cluster.sh have pg_ctl write it).  These run as
-- the superuser only.
CREATE FUNCTION tok_s.log_file() RETURNS text LANGUAGE plpgsql AS $$
DECLARE f text := coalesce(pg_current_logfile(), 'server.log');
BEGIN
	PERFORM pg_stat_file(f);
	RETURN f;
EXCEPTION WHEN others THEN
	RETURN NULL;
END $$;
CREATE FUNCTION tok_s.log_size() RETURNS bigint LANGUAGE sql AS
	$$ SELECT (pg_stat_file(tok_s.log_file())).size $$;
CREATE FUNCTION tok_s.log_since(off bigint) RETURNS text LANGUAGE sql AS
	$$ SELECT pg_read_file(tok_s.log_file(), off, tok_s.log_size() - off) $$;
REVOKE ALL ON FUNCTION tok_s.log_file(), tok_s.log_size(), tok_s.log_since(bigint) FROM PUBLIC;

-- tokens issued by the superuser, kept in psql variables
SELECT tenant_iso.issue_token('acme') AS tok_acme,
       tenant_iso.issue_token('acme') AS tok_acme2,
       tenant_iso.issue_token('beta') AS tok_beta,
       tenant_iso.issue_token('gone') AS tok_gone,
       tenant_iso.issue_token('susp') AS tok_susp,
       tenant_iso.issue_token('acme', '1 second') AS tok_1s \gset

SELECT plan(185);

-- ===================================================================
-- 1. Format and uniqueness
-- ===================================================================
SELECT matches(:'tok_acme'::text, '^ti2\.[A-Za-z0-9_-]+$', 'a token is ti2. followed by base64url');
SELECT is(length(tok_s.raw(:'tok_acme'::text)), 1 + 4 + 8 + 8 + 16 + 16 + 1 + 4 + 32,
	'decoded: version, kid, issued, expiry, audience, nonce, id length, id (acme) and a 32-byte MAC');
SELECT is(tok_s.enc(tok_s.raw(:'tok_acme'::text)), :'tok_acme'::text,
	'(test helper) decoding and re-encoding gives the token back');
SELECT is(get_byte(tok_s.raw(:'tok_acme'::text), 0), 2, 'version byte is 2');
SELECT is(get_byte(tok_s.raw(:'tok_acme'::text), 53), 4, 'id length byte is 4');
SELECT is(substring(tok_s.raw(:'tok_acme'::text) FROM 55 FOR 4), 'acme'::bytea, 'the id is acme');
SELECT ok(tok_s.expiry(:'tok_acme'::text) BETWEEN extract(epoch FROM now())::bigint + 290
                                        AND extract(epoch FROM now())::bigint + 310,
	'the default lifetime is 5 minutes');
SELECT isnt(:'tok_acme'::text, :'tok_acme2'::text, 'two tokens for the same tenant differ');
SELECT isnt(substring(tok_s.raw(:'tok_acme'::text) FROM 38 FOR 16), substring(tok_s.raw(:'tok_acme2'::text) FROM 38 FOR 16),
	'... in their random nonce');
SELECT is((SELECT count(DISTINCT tenant_iso.issue_token('acme'))::int FROM generate_series(1, 50)), 50,
	'50 tokens issued in one statement are all different');

-- ===================================================================
-- 2. Happy path: a plain role enters via a token
-- ===================================================================
SET ROLE tok_plain;
SELECT is(tenant_iso.current_tenant(), NULL, 'plain role: no tenant at first');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('acme')$$, '42501', NULL,
	'plain role: set_tenant is refused (not a switcher)');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme'::text),
	'plain role: set_tenant_token(acme token)');
SELECT is(tenant_iso.current_tenant(), 'acme', 'plain role: now in acme');
SELECT is(tok_s.seen(), 'acme:2', 'plain role: sees only acme rows');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta')$$, '42501', NULL,
	'plain role in a token context: still cannot set_tenant');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_beta'::text),
	'plain role: a token for beta moves it to beta');
SELECT is(tok_s.seen(), 'beta:1', 'plain role: sees only beta rows');
SELECT lives_ok($$SELECT tenant_iso.reset_tenant()$$, 'plain role: reset_tenant leaves the token context');
SELECT is(tenant_iso.current_tenant(), NULL, 'plain role: no tenant after reset_tenant');

-- ===================================================================
-- 3. Altered, forged and malformed tokens: 28000, context unchanged
-- ===================================================================
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', tok_s.flip(:'tok_acme'::text, length(:'tok_acme'::text) / 2)),
	'28000', 'invalid tenant token', 'one character in the middle flipped -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', tok_s.flip(:'tok_acme'::text, 5)),
	'28000', 'invalid tenant token', 'first character after the prefix flipped -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', tok_s.flip(:'tok_acme'::text, length(:'tok_acme'::text))),
	'28000', 'invalid tenant token', 'last character flipped -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)',
		tok_s.enc(overlay(tok_s.raw(:'tok_acme'::text) PLACING 'beta'::bytea FROM 55 FOR 4))),
	'28000', 'invalid tenant token', 'tenant id changed from acme to beta (same length, old MAC) -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)',
		tok_s.enc(overlay(tok_s.raw(:'tok_acme'::text) PLACING '\x05'::bytea || 'acmex'::bytea FROM 54 FOR 5))),
	'28000', 'invalid tenant token', 'tenant id changed to a longer one -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)',
		tok_s.with_expiry(:'tok_acme'::text, tok_s.expiry(:'tok_acme'::text) + 86400 * 365)),
	'28000', 'invalid tenant token', 'expiry pushed a year later (old MAC) -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)',
		tok_s.enc(set_byte(tok_s.raw(:'tok_acme'::text), 0, 1))),
	'28000', 'invalid tenant token', 'version byte changed to 1 (0.1.0) -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)',
		tok_s.enc(set_byte(tok_s.raw(:'tok_acme'::text), 61, get_byte(tok_s.raw(:'tok_acme'::text), 61) # 1))),
	'28000', 'invalid tenant token', 'one bit of the MAC flipped -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)',
		tok_s.enc(substring(tok_s.raw(:'tok_beta'::text) FROM 1 FOR 58) || substring(tok_s.raw(:'tok_acme'::text) FROM 59))),
	'28000', 'invalid tenant token', 'beta payload spliced with acme''s MAC -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)',
		tok_s.enc(substring(tok_s.raw(:'tok_1s'::text) FROM 1 FOR 21) || substring(tok_s.raw(:'tok_acme'::text) FROM 22))),
	'28000', 'invalid tenant token', 'kid, issue time and expiry of one token, audience, nonce, id and MAC of another -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', left(:'tok_acme'::text, -1)),
	'28000', 'invalid tenant token', 'truncated by one character -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', left(:'tok_acme'::text, -4)),
	'28000', 'invalid tenant token', 'truncated by four characters -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', left(:'tok_acme'::text, length(:'tok_acme'::text) / 2)),
	'28000', 'invalid tenant token', 'truncated to half -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)',
		tok_s.enc(substring(tok_s.raw(:'tok_acme'::text) FROM 1 FOR 89))),
	'28000', 'invalid tenant token', 'last MAC byte removed (well-formed base64url) -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme'::text || 'A'),
	'28000', 'invalid tenant token', 'extended by one character -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme'::text || 'AAAA'),
	'28000', 'invalid tenant token', 'extended by four characters -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', tok_s.enc(tok_s.raw(:'tok_acme'::text) || '\x00'::bytea)),
	'28000', 'invalid tenant token', 'extended by one byte -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme'::text || ' '),
	'28000', 'invalid tenant token', 'trailing space -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', ' ' || :'tok_acme'::text),
	'28000', 'invalid tenant token', 'leading space -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', 'TI2.' || substr(:'tok_acme'::text, 5)),
	'28000', 'invalid tenant token', 'prefix in upper case -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', 'ti1.' || substr(:'tok_acme'::text, 5)),
	'28000', 'invalid tenant token', 'another prefix (0.1.0''s ti1.) -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)',
		overlay(:'tok_acme'::text PLACING '+' FROM length(:'tok_acme'::text) / 2 FOR 1)),
	'28000', 'invalid tenant token', 'a character of the standard base64 alphabet (+) -> 28000');
SELECT throws_ok($$SELECT tenant_iso.set_tenant_token('')$$, '28000', 'invalid tenant token', 'empty token -> 28000');
SELECT throws_ok($$SELECT tenant_iso.set_tenant_token('ti2.')$$, '28000', 'invalid tenant token', 'prefix only -> 28000');
SELECT throws_ok($$SELECT tenant_iso.set_tenant_token('hello world')$$, '28000', 'invalid tenant token',
	'garbage -> 28000');
SELECT throws_ok($$SELECT tenant_iso.set_tenant_token('ti2.!!!!%%%%')$$, '28000', 'invalid tenant token',
	'prefix and garbage -> 28000');
SELECT throws_ok($$SELECT tenant_iso.set_tenant_token('ti2.' || repeat('A', 100000))$$, '28000',
	'invalid tenant token', 'a 100 kB token -> 28000');
SELECT throws_ok($$SELECT tenant_iso.set_tenant_token(NULL)$$, '28000', 'invalid tenant token', 'NULL token -> 28000');
SELECT throws_ok($$SELECT tenant_iso.set_tenant_token(NULL, true)$$, '28000', 'invalid tenant token',
	'NULL token, local -> 28000');
SELECT is(tenant_iso.current_tenant(), NULL, 'after all refused tokens, the plain role still has no tenant');
SELECT throws_ok($$SELECT count(*) FROM public.tok_data$$, '42501', 'no tenant context',
	'... and cannot read protected rows');
RESET ROLE;

-- ===================================================================
-- 4. Expiry and replay after expiry
-- ===================================================================
SELECT tenant_iso.issue_token('acme', '2 seconds') AS tok_2s \gset
SET ROLE tok_plain;
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_2s'::text),
	'a 2-second token works right after it was issued');
SELECT is(tenant_iso.current_tenant(), 'acme', '... entering acme');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_2s'::text),
	'the same token can be used again before it expires');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT pg_sleep(2.1) \g /dev/null
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_1s'::text),
	'28000', 'tenant token has expired', 'a 1-second token is refused 2.1 s later (28000)');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_2s'::text),
	'28000', 'tenant token has expired', 'the token used before is refused once expired (replay after expiry)');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L, true)', :'tok_2s'::text),
	'28000', 'tenant token has expired', '... also with local => true');
SELECT is(tenant_iso.current_tenant(), NULL, 'the expired token did not set any context');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)',
		tok_s.with_expiry(:'tok_2s'::text, tok_s.expiry(:'tok_2s'::text) + 3600)),
	'28000', 'invalid tenant token', 'the expired token with its expiry moved forward -> 28000 (MAC)');
RESET ROLE;

-- ===================================================================
-- 5. Unknown and suspended tenants
-- ===================================================================
DELETE FROM tenant_iso.tenants WHERE tenant_id = 'gone';
SELECT is((SELECT count(*)::int FROM tenant_iso.tenants WHERE tenant_id = 'gone'), 0,
	'(setup) tenant gone was deleted');
SET ROLE tok_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_gone'::text),
	'28000', 'tenant token names an unknown tenant', 'a valid token for a deleted tenant -> 28000');
SELECT is(tenant_iso.current_tenant(), NULL, '... no context');
RESET ROLE;

SELECT tenant_iso.suspend_tenant('susp') \g /dev/null
SELECT throws_ok($$SELECT tenant_iso.issue_token('susp')$$, '55000', 'tenant "susp" is suspended',
	'issue_token for a suspended tenant -> 55000');
SET ROLE tok_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_susp'::text),
	'28000', 'tenant token names a suspended tenant', 'a valid token for a suspended tenant -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L, true)', :'tok_susp'::text),
	'28000', 'tenant token names a suspended tenant', '... also with local => true');
SELECT is(tenant_iso.current_tenant(), NULL, '... no context');
RESET ROLE;
SELECT tenant_iso.resume_tenant('susp') \g /dev/null
SET ROLE tok_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_susp'::text),
	'28000', 'tenant token has been revoked',
	'after resume_tenant a token issued before the suspension stays refused (28000)');
SELECT is(tenant_iso.current_tenant(), NULL, '... no context');
RESET ROLE;
SELECT tenant_iso.issue_token('susp') AS tok_susp_new \gset
SET ROLE tok_plain;
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_susp_new'::text),
	'a token issued after resume_tenant works');
SELECT is(tok_s.seen(), 'susp:1', '... and shows only susp rows');
RESET ROLE;
SELECT tenant_iso.suspend_tenant('susp') \g /dev/null
SET ROLE tok_plain;
SELECT throws_ok($$SELECT count(*) FROM public.tok_data$$, '42501', 'tenant "susp" is suspended',
	'a token session whose tenant is then suspended is refused at its next read');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;

-- ===================================================================
-- 6. Member roles and tokens
-- ===================================================================
SET ROLE tok_m;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_beta'::text),
	'42501', 'role "tok_m" is a tenant member and cannot switch tenants',
	'member of acme presenting a valid token for beta -> 42501');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L, true)', :'tok_beta'::text),
	'42501', NULL, '... also with local => true');
SELECT is(tenant_iso.current_tenant(), 'acme', '... still in acme');
SELECT is(tok_s.seen(), 'acme:2', '... seeing only acme rows');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme'::text),
	'member presenting a token for its own tenant: no-op');
SELECT is(tenant_iso.current_tenant(), 'acme', '... still in acme');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', tok_s.flip(:'tok_beta'::text, length(:'tok_beta'::text) / 2)),
	'28000', 'invalid tenant token', 'member presenting an altered token -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_1s'::text),
	'28000', 'tenant token has expired', 'member presenting an expired token -> 28000');
SELECT is(current_setting('tenant_iso.tenant'), '', 'the member''s hidden setting is untouched');
RESET ROLE;

-- ===================================================================
-- 7. Tokens and transactions
-- ===================================================================
SET ROLE tok_plain;
BEGIN;
SELECT tenant_iso.set_tenant_token(:'tok_acme'::text) \g /dev/null
SELECT coalesce(tenant_iso.current_tenant(), '-') AS ctx_tok_txn \gset
ROLLBACK;
SELECT is(:'ctx_tok_txn'::text, 'acme', 'set_tenant_token inside a transaction takes effect');
SELECT is(tenant_iso.current_tenant(), NULL, 'ROLLBACK undoes set_tenant_token');
BEGIN;
SAVEPOINT s1;
SELECT tenant_iso.set_tenant_token(:'tok_acme'::text) \g /dev/null
ROLLBACK TO SAVEPOINT s1;
SELECT coalesce(tenant_iso.current_tenant(), '-') AS ctx_tok_sp \gset
COMMIT;
SELECT is(:'ctx_tok_sp'::text, '-', 'ROLLBACK TO SAVEPOINT undoes set_tenant_token');
BEGIN;
SELECT tenant_iso.set_tenant_token(:'tok_acme'::text, local => true) \g /dev/null
SELECT coalesce(tenant_iso.current_tenant(), '-') AS ctx_tok_local, tok_s.seen() AS seen_tok_local \gset
COMMIT;
SELECT is(:'ctx_tok_local'::text, 'acme', 'set_tenant_token(local => true) inside the transaction');
SELECT is(:'seen_tok_local'::text, 'acme:2', '... sees acme rows');
SELECT is(tenant_iso.current_tenant(), NULL, 'a local token context is gone after COMMIT (pooled connection)');
RESET ROLE;

-- ===================================================================
-- 8. Tokens never appear in errors
-- ===================================================================
SET ROLE tok_plain;
SELECT ok(tok_s.error_hides(tok_s.flip(:'tok_acme'::text, length(:'tok_acme'::text) / 2)),
	'altered token: no error field contains the token');
SELECT ok(tok_s.error_hides(:'tok_acme'::text || 'AAAA'), 'extended token: no error field contains the token');
SELECT ok(tok_s.error_hides(left(:'tok_acme'::text, -1)), 'truncated token: no error field contains the token');
SELECT ok(tok_s.error_hides(:'tok_2s'::text), 'expired token: no error field contains the token');
SELECT ok(tok_s.error_hides(:'tok_gone'::text), 'token of an unknown tenant: no error field contains the token');
SELECT ok(tok_s.error_hides(:'tok_susp'::text), 'token of a suspended tenant: no error field contains the token');
SELECT ok(tok_s.error_hides('ti2.' || repeat('QUJD', 30)), 'garbage token: no error field contains it');
SELECT alike(tok_s.error_of(:'tok_2s'::text), '28000 | tenant token has expired | %',
	'(the helper sees the expected error)');
SET ROLE tok_m;
SELECT ok(tok_s.error_hides(:'tok_beta'::text), 'member with another tenant''s token: no error field contains the token');
SELECT alike(tok_s.error_of(:'tok_beta'::text), '42501 | %', '(the helper sees the expected error)');
RESET ROLE;

-- ===================================================================
-- 9. issue_token: privileges and arguments
-- ===================================================================
SET ROLE tok_plain;
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme')$$, '42501', 'permission denied for function issue_token',
	'plain role: issue_token -> 42501');
SET ROLE tok_m;
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme')$$, '42501', 'permission denied for function issue_token',
	'member role: issue_token for its own tenant -> 42501');
SET ROLE tok_pool;
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme')$$, '42501', 'permission denied for function issue_token',
	'switcher role: issue_token -> 42501');
RESET ROLE;
SELECT ok(NOT has_function_privilege('public', 'tenant_iso.issue_token(text, interval)', 'EXECUTE'),
	'PUBLIC has no EXECUTE on issue_token');
GRANT EXECUTE ON FUNCTION tenant_iso.issue_token(text, interval) TO tok_issuer;
SET ROLE tok_issuer;
SELECT tenant_iso.issue_token('beta', '1 minute') AS tok_delegated \gset
RESET ROLE;
SET ROLE tok_plain;
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_delegated'::text),
	'a token issued by a role granted EXECUTE works');
SELECT is(tok_s.seen(), 'beta:1', '... for beta');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;

SELECT throws_ok($$SELECT tenant_iso.issue_token('acme', '0 seconds')$$, '22023', NULL, 'ttl 0 -> 22023');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme', '-1 minute')$$, '22023', NULL, 'negative ttl -> 22023');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme', '1 day -25 hours')$$, '22023', NULL,
	'ttl that adds up to a negative span -> 22023');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme', '11 years')$$, '22023', NULL, 'ttl over ten years -> 22023');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme', NULL)$$, '22023', NULL, 'NULL ttl -> 22023');
SET tenant_iso.token_max_ttl = '3660 days';
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme', '11 years')$$, '22023', NULL,
	'ttl over ten years -> 22023 even with the highest token_max_ttl');
SELECT lives_ok($$SELECT tenant_iso.issue_token('acme', '10 years')$$,
	'ttl of ten years is accepted when token_max_ttl allows it');
RESET tenant_iso.token_max_ttl;
SELECT throws_ok($$SELECT tenant_iso.issue_token('nosuch')$$, '42704', 'tenant "nosuch" does not exist',
	'issue_token for an unknown tenant -> 42704');
SELECT throws_ok($$SELECT tenant_iso.issue_token('no such')$$, '22023', NULL, 'issue_token: invalid id -> 22023');
SELECT throws_ok($$SELECT tenant_iso.issue_token(NULL)$$, '22023', NULL, 'issue_token: NULL id -> 22023');

-- ===================================================================
-- 10. Tokens never appear in the server log
-- ===================================================================
SELECT tok_s.log_file() IS NOT NULL AS log_ok \gset
\if :log_ok
SELECT tok_s.log_size() AS log_off \gset
SET ROLE tok_m;
SELECT tok_s.present(:'tok_beta'::text) \g /dev/null
RESET ROLE;
SELECT pg_sleep(0.2) \g /dev/null
SELECT ok(strpos(tok_s.log_since(:log_off), 'refused tenant context change for role "tok_m"') > 0,
	'log: (control) the refusal of the member''s token is logged');
SELECT is(strpos(tok_s.log_since(:log_off), substr(:'tok_beta'::text, 5, 24)), 0,
	'log: a valid token refused for a member (presented through dynamic SQL) is not in the server log');

SELECT tok_s.log_size() AS log_off \gset
SET ROLE tok_plain;
SELECT tok_s.present(:'tok_susp'::text) \g /dev/null
RESET ROLE;
SELECT pg_sleep(0.2) \g /dev/null
SELECT is(strpos(tok_s.log_since(:log_off), substr(:'tok_susp'::text, 5, 24)), 0,
	'log: a valid token of a suspended tenant (dynamic SQL) is not in the server log');

SELECT tok_s.log_size() AS log_off \gset
SET ROLE tok_plain;
SELECT tok_s.present(:'tok_2s'::text) \g /dev/null
SELECT tok_s.present(tok_s.flip(:'tok_acme'::text, 40)) \g /dev/null
RESET ROLE;
SELECT pg_sleep(0.2) \g /dev/null
SELECT is(strpos(tok_s.log_since(:log_off), substr(:'tok_2s'::text, 5, 24)), 0,
	'log: an expired token (dynamic SQL) is not in the server log');
SELECT is(strpos(tok_s.log_since(:log_off), substr(tok_s.flip(:'tok_acme'::text, 40), 5, 24)), 0,
	'log: an altered token (dynamic SQL) is not in the server log');

-- uncaught errors at top level (their STATEMENT would be logged)
SELECT tok_s.log_size() AS log_off \gset
\set ON_ERROR_STOP 0
SET ROLE tok_m;
SELECT tenant_iso.set_tenant_token(:'tok_beta');
SET ROLE tok_plain;
SELECT tenant_iso.set_tenant_token(:'tok_susp');
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT pg_sleep(0.2) \g /dev/null
SELECT ok(strpos(tok_s.log_since(:log_off), 'ERROR:  tenant token names a suspended tenant') > 0,
	'log: (control) the top-level refusals are logged as errors');
SELECT is(strpos(tok_s.log_since(:log_off), substr(:'tok_beta'::text, 5, 24)), 0,
	'log: a member''s refused token at top level is not in the server log');
SELECT is(strpos(tok_s.log_since(:log_off), substr(:'tok_susp'::text, 5, 24)), 0,
	'log: a suspended tenant''s token at top level is not in the server log');
\else
SELECT skip('the server log is not readable from this session', 8);
\endif

-- ===================================================================
-- 11. Lifetime: tenant_iso.token_max_ttl
-- ===================================================================
SELECT is(current_setting('tenant_iso.token_max_ttl'), '1 day', 'token_max_ttl defaults to 1 day');
SELECT lives_ok($$SELECT tenant_iso.issue_token('acme', '1 day')$$, 'a ttl of exactly token_max_ttl is accepted');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme', '1 day 1 second')$$, '22023',
	'token lifetime exceeds tenant_iso.token_max_ttl', 'one second over token_max_ttl -> 22023');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme', '1 mon')$$, '22023',
	'token lifetime exceeds tenant_iso.token_max_ttl', 'a month -> 22023');
SET tenant_iso.token_max_ttl = '1 hour';
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme', '61 minutes')$$, '22023',
	'token lifetime exceeds tenant_iso.token_max_ttl', 'token_max_ttl lowered to 1 hour: 61 minutes -> 22023');
SELECT lives_ok($$SELECT tenant_iso.issue_token('acme', '1 hour')$$, '... 1 hour is accepted');
SELECT throws_ok($$SET tenant_iso.token_max_ttl = 'banana'$$, '22023', NULL, 'token_max_ttl must be an interval');
SELECT throws_ok($$SET tenant_iso.token_max_ttl = '0'$$, '22023', NULL, 'token_max_ttl of 0 -> 22023');
SELECT throws_ok($$SET tenant_iso.token_max_ttl = '11 years'$$, '22023', NULL, 'token_max_ttl over ten years -> 22023');
RESET tenant_iso.token_max_ttl;
-- lowering the setting also shortens the tokens already issued
SELECT tenant_iso.issue_token('acme', '1 hour') AS tok_hour \gset
SET tenant_iso.token_max_ttl = '1 second';
SELECT pg_sleep(1.1) \g /dev/null
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_hour'::text),
	'28000', 'tenant token has expired', 'a 1-hour token older than a lowered token_max_ttl (1 s) -> 28000');
RESET tenant_iso.token_max_ttl;
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_hour'::text),
	'... accepted again under the default token_max_ttl');
SELECT tenant_iso.reset_tenant() \g /dev/null
SET ROLE tok_plain;
SELECT throws_ok($$SET tenant_iso.token_max_ttl = '10 years'$$, '42501', NULL,
	'a non-superuser cannot change token_max_ttl');
SELECT throws_ok($$SET tenant_iso.token_audience = 'x'$$, '42501', NULL,
	'a non-superuser cannot change token_audience');
SELECT throws_ok($$SELECT set_config('tenant_iso.token_audience', 'x', false)$$, '42501', NULL,
	'... nor with set_config()');
RESET ROLE;

-- ===================================================================
-- 12. revoke_tokens()
-- ===================================================================
SELECT tenant_iso.issue_token('acme') AS rv_acme1, tenant_iso.issue_token('beta') AS rv_beta1 \gset
SELECT lives_ok(format($$SELECT tenant_iso.revoke_tokens('acme', %L)$$, clock_timestamp()),
	'revoke_tokens(acme, now)');
SELECT is((SELECT status FROM tenant_iso.tenants WHERE tenant_id = 'acme'), 'active', '... acme is not suspended');
SELECT tenant_iso.issue_token('acme') AS rv_acme2 \gset
SET ROLE tok_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rv_acme1'::text),
	'28000', 'tenant token has been revoked', 'a revoked token -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L, true)', :'rv_acme1'::text),
	'28000', 'tenant token has been revoked', '... also with local => true');
SELECT is(tenant_iso.current_tenant(), NULL, '... no context');
SELECT ok(tok_s.error_hides(:'rv_acme1'::text), '... and no error field contains the token');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rv_acme2'::text),
	'a token issued after the revocation works');
SELECT is(tok_s.seen(), 'acme:2', '... in acme');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rv_beta1'::text),
	'another tenant''s token issued before the revocation is unaffected');
SELECT is(tok_s.seen(), 'beta:1', '... in beta');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT tenant_iso.revoke_tokens('beta') \g /dev/null
SET ROLE tok_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rv_beta1'::text),
	'28000', 'tenant token has been revoked', 'revoke_tokens(beta) with the default time (now()) revokes it');
RESET ROLE;
SELECT tenant_iso.revoke_tokens('acme', '2000-01-01') \g /dev/null
SET ROLE tok_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rv_acme1'::text),
	'28000', 'tenant token has been revoked', 'an earlier issued_before does not un-revoke');
SELECT throws_ok($$SELECT tenant_iso.revoke_tokens('acme')$$, '42501', NULL, 'plain role: revoke_tokens -> 42501');
RESET ROLE;
SELECT ok(NOT has_function_privilege('public', 'tenant_iso.revoke_tokens(text, timestamptz)', 'EXECUTE'),
	'PUBLIC has no EXECUTE on revoke_tokens');
SELECT throws_ok($$SELECT tenant_iso.revoke_tokens('nosuch')$$, '42704', NULL, 'revoke_tokens: unknown tenant -> 42704');
SELECT throws_ok($$SELECT tenant_iso.revoke_tokens('acme', NULL)$$, '22023', NULL, 'revoke_tokens: NULL time -> 22023');

-- another backend that has the revocations cached learns of a new one
SELECT tenant_iso.issue_token('acme') AS rv_acme3 \gset
SELECT public.dblink_connect('tok_c1', tok_s.connstr('tok_login', current_database())) \g /dev/null
SELECT lives_ok(format($$SELECT tok_s.present_on('tok_c1', %L)$$, :'rv_acme3'::text),
	'second session: the token works (revocations now cached there)');
SELECT tenant_iso.revoke_tokens('acme', clock_timestamp()) \g /dev/null
SELECT throws_ok(format($$SELECT tok_s.present_on('tok_c1', %L)$$, :'rv_acme3'::text),
	'28000', 'tenant token has been revoked', 'second session: refused after the revocation committed (cache invalidated)');
SELECT public.dblink_disconnect('tok_c1') \g /dev/null

-- ===================================================================
-- 13. Suspend and resume do not revive a token
-- ===================================================================
SELECT tenant_iso.issue_token('beta') AS sr_beta1 \gset
SELECT tenant_iso.suspend_tenant('beta') \g /dev/null
SELECT tenant_iso.resume_tenant('beta') \g /dev/null
SET ROLE tok_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'sr_beta1'::text),
	'28000', 'tenant token has been revoked', 'a token issued before suspend/resume -> 28000');
RESET ROLE;
SELECT tenant_iso.issue_token('beta') AS sr_beta2 \gset
SET ROLE tok_plain;
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'sr_beta2'::text),
	'a token issued after the resume works');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
-- a tenant deleted and created again does not accept the old tenant's tokens
SELECT tenant_iso.create_tenant('phoenix') \g /dev/null
SELECT tenant_iso.issue_token('phoenix') AS ph1 \gset
DELETE FROM tenant_iso.tenants WHERE tenant_id = 'phoenix';
SELECT tenant_iso.create_tenant('phoenix') \g /dev/null
SET ROLE tok_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'ph1'::text),
	'28000', 'tenant token has been revoked', 'a token of a deleted tenant does not enter a new tenant of the same id');
RESET ROLE;

-- ===================================================================
-- 14. rotate_token_key()
-- ===================================================================
SELECT tenant_iso.issue_token('acme') AS rk1 \gset
SELECT is(tok_s.kid(:'rk1'::text), 1, 'before any rotation tokens carry kid 1');
SELECT is(tenant_iso.rotate_token_key(), 2, 'rotate_token_key() returns the new kid 2');
SELECT tenant_iso.issue_token('acme') AS rk2 \gset
SELECT is(tok_s.kid(:'rk2'::text), 2, 'new tokens carry kid 2');
SELECT ok((SELECT accept_until BETWEEN clock_timestamp() + '23 hours' AND clock_timestamp() + '1 day'
             FROM tenant_iso.token_keys WHERE kid = 1),
	'kid 1 is accepted for token_max_ttl (1 day) more');
SET ROLE tok_plain;
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rk1'::text), 'kid 1 token works within the overlap');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rk2'::text), 'kid 2 token works');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', tok_s.with_kid(:'rk2'::text, 1)),
	'28000', 'invalid tenant token', 'kid 2 token relabelled as kid 1 -> 28000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', tok_s.with_kid(:'rk2'::text, 99)),
	'28000', 'invalid tenant token', 'an unknown kid -> 28000');
SELECT throws_ok($$SELECT tenant_iso.rotate_token_key()$$, '42501', NULL, 'plain role: rotate_token_key -> 42501');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT ok(NOT has_function_privilege('public', 'tenant_iso.rotate_token_key(interval)', 'EXECUTE'),
	'PUBLIC has no EXECUTE on rotate_token_key');
SELECT throws_ok($$SELECT tenant_iso.rotate_token_key('-1 second')$$, '22023', NULL, 'negative overlap -> 22023');
SELECT is(tenant_iso.rotate_token_key('1 second'), 3, 'rotate_token_key(1 second) -> kid 3');
SELECT tenant_iso.issue_token('acme') AS rk3 \gset
SELECT pg_sleep(1.1) \g /dev/null
SET ROLE tok_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rk2'::text),
	'28000', 'invalid tenant token', 'kid 2 token after its 1-second overlap -> 28000');
SELECT ok(tok_s.error_hides(:'rk2'::text), '... and no error field contains the token');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rk3'::text), 'kid 3 token works');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rk1'::text), 'kid 1 token still within its own overlap');
RESET ROLE;
DELETE FROM tenant_iso.token_keys WHERE kid = 1;
SET ROLE tok_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'rk1'::text),
	'28000', 'invalid tenant token', 'kid 1 row deleted: its token is refused at once');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;
SELECT is(tenant_iso.master_key_loadable(), true, 'the master key was not rotated (still loadable, same key)');

-- ===================================================================
-- 15. Audience: tenant_iso.token_audience
-- ===================================================================
SELECT tenant_iso.issue_token('acme') AS au_default \gset
SET tenant_iso.token_audience = 'deploy-x';
SELECT tenant_iso.issue_token('acme') AS au_x \gset
SELECT isnt(tok_s.aud(:'au_x'::text), tok_s.aud(:'au_default'::text), 'the audience id in the payload differs');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'au_default'::text),
	'28000', 'invalid tenant token', 'audience deploy-x: a token of this database''s default audience -> 28000');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'au_x'::text), 'audience deploy-x: its own token works');
SELECT tenant_iso.reset_tenant() \g /dev/null
SET tenant_iso.token_audience = 'deploy-y';
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'au_x'::text),
	'28000', 'invalid tenant token', 'audience deploy-y: a deploy-x token -> 28000');
RESET tenant_iso.token_audience;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'au_x'::text),
	'28000', 'invalid tenant token', 'default audience: a deploy-x token -> 28000');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'au_default'::text), 'default audience: its token works');
SELECT tenant_iso.reset_tenant() \g /dev/null

-- ===================================================================
-- 16. A token replayed into another database of this cluster
-- ===================================================================
SELECT public.dblink_connect('tok_o', tok_s.connstr('postgres', 'pgtap_tokens_other')) \g /dev/null
SELECT public.dblink_exec('tok_o', 'SET client_min_messages = warning') \g /dev/null
SELECT public.dblink_exec('tok_o', 'CREATE EXTENSION IF NOT EXISTS tenant_iso') \g /dev/null
SELECT v FROM public.dblink('tok_o', $$SELECT tenant_iso.create_tenant('acme')::text$$) AS t(v text) \g /dev/null
-- the key ring is per database: bring the other one to the same current
-- kid as this one (3), so that only the audience tells the two apart
SELECT v FROM public.dblink('tok_o', $$SELECT tenant_iso.rotate_token_key()::text$$) AS t(v text) \g /dev/null
SELECT v FROM public.dblink('tok_o', $$SELECT tenant_iso.rotate_token_key()::text$$) AS t(v text) \g /dev/null
SELECT is(tok_s.kid(v), 3, '(setup) the other database also signs with kid 3')
  FROM public.dblink('tok_o', $$SELECT tenant_iso.issue_token('acme')$$) AS t(v text);
SELECT tenant_iso.issue_token('acme') AS db_here \gset
SELECT v AS db_there FROM public.dblink('tok_o', $$SELECT tenant_iso.issue_token('acme')$$) AS t(v text) \gset
SELECT throws_ok(format($$SELECT tok_s.present_on('tok_o', %L)$$, :'db_here'::text),
	'28000', 'invalid tenant token', 'a token of this database replayed into another database of the cluster -> 28000');
SELECT lives_ok(format($$SELECT tok_s.present_on('tok_o', %L)$$, :'db_there'::text),
	'(control) the other database accepts its own token');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'db_there'::text),
	'28000', 'invalid tenant token', 'a token of the other database replayed here -> 28000');
-- the same configured audience on both: shared on purpose
SELECT public.dblink_exec('tok_o', $$SET tenant_iso.token_audience = 'shared-aud'$$) \g /dev/null
SET tenant_iso.token_audience = 'shared-aud';
SELECT v AS db_shared FROM public.dblink('tok_o', $$SELECT tenant_iso.issue_token('acme')$$) AS t(v text) \gset
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'db_shared'::text),
	'with the same token_audience on both, the other database''s token works here');
SELECT is(tenant_iso.current_tenant(), 'acme', '... entering acme');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET tenant_iso.token_audience;
SELECT public.dblink_disconnect('tok_o') \g /dev/null

SELECT * FROM finish();

-- ===================================================================
-- cleanup (roles are cluster-wide)
-- ===================================================================
RESET ROLE;
SELECT tenant_iso.remove_member(member) FROM tenant_iso.members \g /dev/null
SELECT tenant_iso.revoke_switch(grantee) FROM tenant_iso.switchers \g /dev/null
DROP SCHEMA tok_s CASCADE;
DROP TABLE public.tok_data;
DROP OWNED BY tok_plain, tok_m, tok_pool, tok_issuer, tok_login;
DROP ROLE tok_plain, tok_m, tok_pool, tok_issuer, tok_login;
DROP DATABASE pgtap_tokens_other WITH (FORCE);
