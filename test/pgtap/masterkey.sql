-- test/pgtap/masterkey.sql: a missing or broken master key (THREATS class 9:
-- "crypto fails clearly, and everything else keeps working").
--
-- tenant_iso.master_key_command is changed with ALTER SYSTEM and a reload
-- (ALTER SYSTEM cannot run in a transaction block, so this file is not
-- wrapped in one).  For each broken command: master_key_loadable() is
-- false, issue_token and set_tenant_token fail with 39000, the error never
-- shows the command's output, and set_tenant, member sessions and
-- protected-table reads keep working.  At the end the setting is reset and
-- the key works again.  A different but well-formed key makes tokens signed
-- under the real key invalid (28000).
--
-- Roles (cluster-wide) carry the prefix mk_ and are dropped at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

-- an earlier aborted run may have left a broken command behind
ALTER SYSTEM RESET tenant_iso.master_key_command;
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null

DROP ROLE IF EXISTS mk_m, mk_pool, mk_plain;
CREATE ROLE mk_m;       -- member of acme
CREATE ROLE mk_pool;    -- switcher
CREATE ROLE mk_plain;   -- neither

SELECT tenant_iso.create_tenant(t) FROM unnest(ARRAY['acme', 'beta']) t \g /dev/null
SELECT tenant_iso.add_member('mk_m', 'acme') \g /dev/null
SELECT tenant_iso.grant_switch('mk_pool') \g /dev/null

CREATE TABLE public.mk_data (tenant_id text NOT NULL, v int NOT NULL);
INSERT INTO public.mk_data VALUES ('acme', 1), ('acme', 2), ('beta', 3);
SELECT tenant_iso.protect('public.mk_data') \g /dev/null
GRANT SELECT, INSERT ON public.mk_data TO mk_m, mk_pool, mk_plain;

CREATE SCHEMA mk_s;
GRANT USAGE ON SCHEMA mk_s TO PUBLIC;
-- the error a statement raises: SQLSTATE, message, detail and hint (the
-- fields tenant_iso writes; the context would only echo the statement)
CREATE FUNCTION mk_s.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text; d text; h text;
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN others THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
		h = PG_EXCEPTION_HINT;
	RETURN st || ' | ' || m || ' | ' || coalesce(d, '') || ' | ' || coalesce(h, '');
END $$;
-- which tenants' rows the current role sees
CREATE FUNCTION mk_s.seen() RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce(string_agg(tenant_id || ':' || n, ',' ORDER BY tenant_id), '')
	  FROM (SELECT tenant_id, count(*) n FROM public.mk_data GROUP BY tenant_id) s $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA mk_s TO PUBLIC;
-- The server log, when this superuser session can read it: the file named
-- by pg_current_logfile(), or server.log in the data directory (where
-- scripts/test and test/lib/cluster.sh have pg_ctl write it).
CREATE FUNCTION mk_s.log_file() RETURNS text LANGUAGE plpgsql AS $$
DECLARE f text := coalesce(pg_current_logfile(), 'server.log');
BEGIN
	PERFORM pg_stat_file(f);
	RETURN f;
EXCEPTION WHEN others THEN
	RETURN NULL;
END $$;
CREATE FUNCTION mk_s.log_size() RETURNS bigint LANGUAGE sql AS
	$$ SELECT (pg_stat_file(mk_s.log_file())).size $$;
CREATE FUNCTION mk_s.log_since(off bigint) RETURNS text LANGUAGE sql AS
	$$ SELECT pg_read_file(mk_s.log_file(), off, mk_s.log_size() - off) $$;
REVOKE ALL ON FUNCTION mk_s.log_file(), mk_s.log_size(), mk_s.log_since(bigint) FROM PUBLIC;

-- After pg_reload_conf(), wait (at most ~4 s) until this backend has
-- processed the reload, i.e. the command equals mk.want.  A backend applies
-- a reload between statements, so each wait is a separate statement.
\set wait 'SELECT pg_sleep(0.2) WHERE current_setting(''tenant_iso.master_key_command'') IS DISTINCT FROM current_setting(''mk.want'')'

SELECT current_setting('tenant_iso.master_key_command') AS orig_cmd \gset
SELECT tenant_iso.issue_token('acme') AS tok_acme \gset

SELECT plan(65);

-- ===================================================================
-- 0. With the configured key
-- ===================================================================
SELECT ok(tenant_iso.master_key_loadable(), 'the configured master key is loadable');
SELECT matches(:'tok_acme'::text, '^ti2\.', 'issue_token works');
SET ROLE mk_plain;
SELECT throws_ok($$SELECT tenant_iso.master_key_loadable()$$, '42501', NULL,
	'master_key_loadable() is not for PUBLIC (42501)');
SELECT throws_ok($$SELECT current_setting('tenant_iso.master_key_command')$$, '42501', NULL,
	'a plain role cannot read tenant_iso.master_key_command');
SELECT throws_ok($$SET tenant_iso.master_key_command = 'echo 00'$$, '55P02', NULL,
	'a plain role cannot change tenant_iso.master_key_command (sighup setting)');
RESET ROLE;

-- ===================================================================
-- 1. Command that fails: 'false'
-- ===================================================================
ALTER SYSTEM SET tenant_iso.master_key_command = 'false';
SET mk.want = 'false';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
SELECT is(current_setting('tenant_iso.master_key_command'), 'false', 'false: the new command is in effect');
SELECT is(tenant_iso.master_key_loadable(), false, 'false: master_key_loadable() is false');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme')$$, '39000', 'master key is not available',
	'false: issue_token -> 39000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme'), '39000', 'master key is not available',
	'false: set_tenant_token with a token that was valid -> 39000');
SELECT unalike(mk_s.error_of(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme')), '%' || :'tok_acme' || '%',
	'false: the set_tenant_token error does not show the token');
-- an uncaught 39000 at top level: its STATEMENT must not put the token in the log
SELECT mk_s.log_file() IS NOT NULL AS log_ok \gset
\if :log_ok
SELECT mk_s.log_size() AS log_off \gset
SET ROLE mk_plain;
\set ON_ERROR_STOP 0
SELECT tenant_iso.set_tenant_token(:'tok_acme');
\set ON_ERROR_STOP 1
RESET ROLE;
SELECT pg_sleep(0.2) \g /dev/null
SELECT ok(strpos(mk_s.log_since(:log_off), 'ERROR:  master key is not available') > 0,
	'false: (control) the failed set_tenant_token is logged');
SELECT is(strpos(mk_s.log_since(:log_off), substr(:'tok_acme'::text, 5, 24)), 0,
	'false: the token of the failed set_tenant_token is not in the server log');
\else
SELECT skip('the server log is not readable from this session', 2);
\endif
-- everything else keeps working
SELECT is(tenant_iso.current_tenant(), NULL, 'false: current_tenant() works');
SELECT lives_ok($$SELECT tenant_iso.create_tenant('made_without_key')$$, 'false: create_tenant works');
SELECT lives_ok($$SELECT tenant_iso.suspend_tenant('made_without_key')$$, 'false: suspend_tenant works');
SET ROLE mk_pool;
SELECT lives_ok($$SELECT tenant_iso.set_tenant('acme')$$, 'false: set_tenant works for the switcher');
SELECT is(mk_s.seen(), 'acme:2', 'false: the switcher reads acme''s protected rows only');
SELECT lives_ok($$INSERT INTO public.mk_data (v) VALUES (10)$$, 'false: the switcher inserts into a protected table');
SELECT throws_ok($$INSERT INTO public.mk_data (tenant_id, v) VALUES ('beta', 11)$$, '42501', NULL,
	'false: ... and row isolation still refuses another tenant''s row');
SELECT lives_ok($$SELECT tenant_iso.set_tenant('beta', true)$$, 'false: local set_tenant works');
SELECT lives_ok($$SELECT tenant_iso.reset_tenant()$$, 'false: reset_tenant works');
RESET ROLE;
SET ROLE mk_m;
SELECT is(tenant_iso.current_tenant(), 'acme', 'false: the member is in acme');
SELECT is(mk_s.seen(), 'acme:3', 'false: the member reads acme''s protected rows only');
SELECT throws_ok($$SELECT tenant_iso.set_tenant('beta')$$, '42501', NULL, 'false: the member still cannot switch');
SELECT throws_ok($$SET tenant_iso.tenant = 'beta'$$, '42501', NULL, 'false: SET tenant_iso.tenant still refused');
RESET ROLE;

-- ===================================================================
-- 2. Command that prints something that is not a key
-- ===================================================================
-- 'echo SECRETOUTPUT nothex | tr A-Z a-z' prints "secretoutput nothex": the
-- output differs from the command text, so it can be told apart in errors.
ALTER SYSTEM SET tenant_iso.master_key_command = 'echo SECRETOUTPUT nothex | tr A-Z a-z';
SET mk.want = 'echo SECRETOUTPUT nothex | tr A-Z a-z';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
SELECT is(current_setting('tenant_iso.master_key_command'), 'echo SECRETOUTPUT nothex | tr A-Z a-z',
	'nothex: the new command is in effect');
SELECT is(tenant_iso.master_key_loadable(), false, 'nothex: master_key_loadable() is false');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme')$$, '39000', 'master key is not available',
	'nothex: issue_token -> 39000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme'), '39000', 'master key is not available',
	'nothex: set_tenant_token -> 39000');
SELECT alike(mk_s.error_of($$SELECT tenant_iso.issue_token('acme')$$), '39000 | master key is not available | %',
	'nothex: (the error is the expected one)');
SELECT unalike(mk_s.error_of($$SELECT tenant_iso.issue_token('acme')$$), '%secretoutput%',
	'nothex: the issue_token error does not contain the command output');
SELECT unalike(mk_s.error_of($$SELECT tenant_iso.issue_token('acme')$$), '%nothex%',
	'nothex: ... not even part of it');
\if :log_ok
SELECT mk_s.log_size() AS log_off \gset
\set ON_ERROR_STOP 0
SELECT tenant_iso.issue_token('acme');
SELECT tenant_iso.master_key_loadable() \g /dev/null
\set ON_ERROR_STOP 1
SELECT pg_sleep(0.2) \g /dev/null
SELECT ok(strpos(mk_s.log_since(:log_off), 'master key is not available') > 0,
	'nothex: (control) the failure is logged');
SELECT is(strpos(mk_s.log_since(:log_off), 'secretoutput'), 0,
	'nothex: the command output is not in the server log');
\else
SELECT skip('the server log is not readable from this session', 2);
\endif
SELECT unalike(mk_s.error_of(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme')), '%secretoutput%',
	'nothex: the set_tenant_token error does not contain the command output');
SET ROLE mk_pool;
SELECT lives_ok($$SELECT tenant_iso.set_tenant('beta')$$, 'nothex: set_tenant works');
SELECT is(mk_s.seen(), 'beta:1', 'nothex: protected reads work');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;

-- 63 hex digits: one short of a key
ALTER SYSTEM SET tenant_iso.master_key_command = 'printf %063d 7';
SET mk.want = 'printf %063d 7';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
SELECT is(current_setting('tenant_iso.master_key_command'), 'printf %063d 7', '63 digits: the new command is in effect');
SELECT is(tenant_iso.master_key_loadable(), false, '63 digits: master_key_loadable() is false');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme')$$, '39000', 'master key is not available',
	'63 digits: issue_token -> 39000');
SELECT unalike(mk_s.error_of($$SELECT tenant_iso.issue_token('acme')$$), '%0000000000000007%',
	'63 digits: the error does not contain the printed digits');

-- 65 hex digits: one too many
ALTER SYSTEM SET tenant_iso.master_key_command = 'printf %065d 9';
SET mk.want = 'printf %065d 9';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
SELECT is(current_setting('tenant_iso.master_key_command'), 'printf %065d 9', '65 digits: the new command is in effect');
SELECT is(tenant_iso.master_key_loadable(), false, '65 digits: master_key_loadable() is false');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme')$$, '39000', 'master key is not available',
	'65 digits: issue_token -> 39000');
SELECT unalike(mk_s.error_of($$SELECT tenant_iso.issue_token('acme')$$), '%0000000000000009%',
	'65 digits: the error does not contain the printed digits');

-- the right key, but the command exits with a failure status
SELECT set_config('mk.want', :'orig_cmd' || '; exit 3', false) \g /dev/null
SELECT format('ALTER SYSTEM SET tenant_iso.master_key_command = %L', :'orig_cmd' || '; exit 3') \gexec
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
SELECT is(current_setting('tenant_iso.master_key_command'), :'orig_cmd' || '; exit 3',
	'key then exit 3: the new command is in effect');
SELECT is(tenant_iso.master_key_loadable(), false, 'key then exit 3: master_key_loadable() is false');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme')$$, '39000', 'master key is not available',
	'key then exit 3: issue_token -> 39000');

-- empty command
ALTER SYSTEM SET tenant_iso.master_key_command = '';
SET mk.want = '';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
SELECT is(current_setting('tenant_iso.master_key_command'), '', 'empty: the new command is in effect');
SELECT is(tenant_iso.master_key_loadable(), false, 'empty: master_key_loadable() is false');
SELECT throws_ok($$SELECT tenant_iso.issue_token('acme')$$, '39000', 'master key is not available',
	'empty: issue_token -> 39000');
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme'), '39000', 'master key is not available',
	'empty: set_tenant_token -> 39000');
SET ROLE mk_m;
SELECT is(mk_s.seen(), 'acme:3', 'empty: the member reads its protected rows');
RESET ROLE;

-- ===================================================================
-- 3. A different, well-formed key: tokens signed under the real key fail
-- ===================================================================
ALTER SYSTEM SET tenant_iso.master_key_command = 'printf %064d 0';
SET mk.want = 'printf %064d 0';
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
SELECT is(current_setting('tenant_iso.master_key_command'), 'printf %064d 0', 'other key: the new command is in effect');
SELECT is(tenant_iso.master_key_loadable(), true, 'other key: master_key_loadable() is true');
SELECT tenant_iso.issue_token('acme') AS tok_other \gset
SET ROLE mk_plain;
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme'), '28000', 'invalid tenant token',
	'other key: a token signed under the real key is invalid (28000)');
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_other'),
	'other key: a token signed under this key works');
SELECT is(mk_s.seen(), 'acme:3', 'other key: ... and gives acme''s rows');
SELECT tenant_iso.reset_tenant() \g /dev/null
RESET ROLE;

-- ===================================================================
-- 4. Back to the configured key
-- ===================================================================
ALTER SYSTEM RESET tenant_iso.master_key_command;
SELECT set_config('mk.want', :'orig_cmd', false) \g /dev/null
SELECT pg_reload_conf() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
:wait \g /dev/null
SELECT is(current_setting('tenant_iso.master_key_command'), :'orig_cmd'::text, 'reset: the configured command is back');
SELECT is(tenant_iso.master_key_loadable(), true, 'reset: master_key_loadable() is true again');
SELECT lives_ok($$SELECT tenant_iso.issue_token('beta')$$, 'reset: issue_token works again');
SET ROLE mk_plain;
SELECT lives_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_acme'),
	'reset: the token issued before the outage works again');
SELECT is(mk_s.seen(), 'acme:3', 'reset: ... giving acme''s rows');
SELECT tenant_iso.reset_tenant() \g /dev/null
SELECT throws_ok(format('SELECT tenant_iso.set_tenant_token(%L)', :'tok_other'), '28000', 'invalid tenant token',
	'reset: the token signed under the other key is invalid (28000)');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_file_settings WHERE name = 'tenant_iso.master_key_command'
             AND sourcefile LIKE '%postgresql.auto.conf'), 0,
	'reset: postgresql.auto.conf no longer sets the command');

SELECT * FROM finish();

-- ===================================================================
-- cleanup (roles are cluster-wide)
-- ===================================================================
RESET ROLE;
SELECT tenant_iso.remove_member(member) FROM tenant_iso.members \g /dev/null
SELECT tenant_iso.revoke_switch(grantee) FROM tenant_iso.switchers \g /dev/null
DROP SCHEMA mk_s CASCADE;
DROP TABLE public.mk_data;
DROP OWNED BY mk_m, mk_pool, mk_plain;
DROP ROLE mk_m, mk_pool, mk_plain;
