-- test/pgtap/registry.sql: the tenant registry and its administration
-- functions: create_tenant, suspend_tenant, resume_tenant, add_member,
-- remove_member, grant_switch, revoke_switch; the configuration tables, their
-- privileges and their pg_dump registration.
--
-- Roles (cluster-wide) carry the prefix reg_ and are dropped at the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

-- leftovers of an earlier, aborted run
DROP ROLE IF EXISTS reg_m1, reg_m2, reg_pool, reg_plain, reg_admin;
CREATE ROLE reg_m1;
CREATE ROLE reg_m2;
CREATE ROLE reg_pool;
CREATE ROLE reg_plain;
CREATE ROLE reg_admin;

SELECT plan(116);

-- the time before any row is written: the NOT NULL DEFAULT now() columns
-- must hold a time between it and the statement that checks them
SELECT now() AS reg_t0 \gset

-- ===================================================================
-- create_tenant
-- ===================================================================
SELECT lives_ok($$SELECT tenant_iso.create_tenant('acme', 'Acme Inc.')$$,
	'create_tenant(acme, display name)');
SELECT lives_ok($$SELECT tenant_iso.create_tenant('beta')$$,
	'create_tenant(beta) without display name');
SELECT lives_ok($$SELECT tenant_iso.create_tenant('A-z_0.9:x')$$,
	'create_tenant accepts every allowed character class [A-Za-z0-9_.:-]');
SELECT lives_ok($$SELECT tenant_iso.create_tenant(repeat('x', 63))$$,
	'create_tenant accepts a 63-character id');
SELECT lives_ok($$SELECT tenant_iso.create_tenant('z')$$,
	'create_tenant accepts a 1-character id');

SELECT results_eq(
	$$SELECT tenant_id, display_name, status FROM tenant_iso.tenants ORDER BY tenant_id COLLATE "C"$$,
	$$VALUES ('A-z_0.9:x'::text, NULL::text, 'active'::text),
	         ('acme', 'Acme Inc.', 'active'),
	         ('beta', NULL, 'active'),
	         (repeat('x', 63), NULL, 'active'),
	         ('z', NULL, 'active')$$,
	'tenants table holds the created tenants, all active');
SELECT results_eq(
	$$SELECT c.relname::text COLLATE "default", a.attname::text COLLATE "default", pg_get_expr(d.adbin, d.adrelid) COLLATE "default",
	           a.attnotnull
	    FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
	    JOIN pg_class c ON c.oid = d.adrelid
	   WHERE d.adrelid IN ('tenant_iso.tenants'::regclass, 'tenant_iso.members'::regclass,
	                       'tenant_iso.switchers'::regclass)
	   ORDER BY 1, 2$$,
	$$VALUES ('members', 'added_at', 'now()', true), ('switchers', 'granted_at', 'now()', true),
	         ('tenants', 'created_at', 'now()', true), ('tenants', 'status', '''active''::text', true)$$,
	'the registry tables'' NOT NULL DEFAULT columns and their defaults');
SELECT ok((SELECT bool_and(created_at >= :'reg_t0'::timestamptz AND created_at <= now()) FROM tenant_iso.tenants),
	'created_at is the creation time of every tenant (after the run started, not in the future)');

-- invalid ids: 22023
SELECT throws_ok($$SELECT tenant_iso.create_tenant('')$$, '22023', 'invalid tenant id',
	'create_tenant: empty id -> 22023');
SELECT throws_ok($$SELECT tenant_iso.create_tenant(repeat('x', 64))$$, '22023', 'invalid tenant id',
	'create_tenant: 64-character id -> 22023');
SELECT throws_ok($$SELECT tenant_iso.create_tenant('ac me')$$, '22023', 'invalid tenant id',
	'create_tenant: id with a space -> 22023');
SELECT throws_ok($$SELECT tenant_iso.create_tenant('ac''me')$$, '22023', 'invalid tenant id',
	'create_tenant: id with a quote -> 22023');
SELECT throws_ok($$SELECT tenant_iso.create_tenant('acmé')$$, '22023', 'invalid tenant id',
	'create_tenant: id with a non-ASCII letter -> 22023');
SELECT throws_ok($$SELECT tenant_iso.create_tenant('ａｃｍｅ')$$, '22023', 'invalid tenant id',
	'create_tenant: id in full-width unicode -> 22023');
SELECT throws_ok($$SELECT tenant_iso.create_tenant(NULL)$$, '22023', 'invalid tenant id',
	'create_tenant: NULL id -> 22023');
SELECT throws_ok($$SELECT tenant_iso.create_tenant(E'acme\n')$$, '22023', 'invalid tenant id',
	'create_tenant: id with a trailing newline -> 22023');
SELECT throws_ok($$SELECT tenant_iso.create_tenant('a/b')$$, '22023', 'invalid tenant id',
	'create_tenant: id with a slash -> 22023');
SELECT throws_ok($$SELECT tenant_iso.create_tenant('a%')$$, '22023', 'invalid tenant id',
	'create_tenant: id with a percent sign -> 22023');

-- duplicates: 23505
SELECT throws_ok($$SELECT tenant_iso.create_tenant('acme')$$, '23505', 'tenant "acme" already exists',
	'create_tenant: duplicate id -> 23505');
SELECT throws_ok($$SELECT tenant_iso.create_tenant('acme', 'Another name')$$, '23505', NULL,
	'create_tenant: duplicate id with another display name -> 23505');
SELECT is((SELECT display_name FROM tenant_iso.tenants WHERE tenant_id = 'acme'), 'Acme Inc.',
	'a refused duplicate does not change the existing tenant');
SELECT is((SELECT count(*)::int FROM tenant_iso.tenants), 5,
	'no invalid or duplicate tenant was registered');

-- ===================================================================
-- suspend_tenant / resume_tenant
-- ===================================================================
SELECT lives_ok($$SELECT tenant_iso.suspend_tenant('beta')$$, 'suspend_tenant(beta)');
SELECT is((SELECT status FROM tenant_iso.tenants WHERE tenant_id = 'beta'), 'suspended',
	'beta is suspended');
SELECT lives_ok($$SELECT tenant_iso.suspend_tenant('beta')$$,
	'suspend_tenant on a suspended tenant is a no-op');
SELECT is((SELECT status FROM tenant_iso.tenants WHERE tenant_id = 'acme'), 'active',
	'suspending beta leaves acme active');
SELECT lives_ok($$SELECT tenant_iso.resume_tenant('beta')$$, 'resume_tenant(beta)');
SELECT is((SELECT status FROM tenant_iso.tenants WHERE tenant_id = 'beta'), 'active',
	'beta is active again');
SELECT lives_ok($$SELECT tenant_iso.resume_tenant('beta')$$,
	'resume_tenant on an active tenant is a no-op');
SELECT throws_ok($$SELECT tenant_iso.suspend_tenant('nosuch')$$, '42704', 'tenant "nosuch" does not exist',
	'suspend_tenant: unknown tenant -> 42704');
SELECT throws_ok($$SELECT tenant_iso.resume_tenant('nosuch')$$, '42704', 'tenant "nosuch" does not exist',
	'resume_tenant: unknown tenant -> 42704');
SELECT throws_ok($$SELECT tenant_iso.suspend_tenant('no such')$$, '22023', 'invalid tenant id',
	'suspend_tenant: invalid id -> 22023');
SELECT throws_ok($$SELECT tenant_iso.suspend_tenant(NULL)$$, '22023', 'invalid tenant id',
	'suspend_tenant: NULL id -> 22023');
SELECT throws_ok($$SELECT tenant_iso.resume_tenant('')$$, '22023', 'invalid tenant id',
	'resume_tenant: empty id -> 22023');

-- ===================================================================
-- add_member / remove_member
-- ===================================================================
SELECT lives_ok($$SELECT tenant_iso.add_member('reg_m1', 'acme')$$, 'add_member(reg_m1, acme)');
SELECT results_eq(
	$$SELECT member::text, tenant_id FROM tenant_iso.members$$,
	$$VALUES ('reg_m1'::text, 'acme'::text)$$,
	'members table holds reg_m1 -> acme');
SELECT ok((SELECT added_at >= :'reg_t0'::timestamptz AND added_at <= now()
	           AND added_at >= (SELECT max(created_at) FROM tenant_iso.tenants WHERE tenant_id = 'acme')
	      FROM tenant_iso.members WHERE member = 'reg_m1'::regrole),
	'added_at is the time add_member ran (after acme was created, not in the future)');
SELECT lives_ok($$SELECT tenant_iso.add_member('reg_m1', 'acme')$$,
	'add_member again to the same tenant is a no-op');
SELECT is((SELECT count(*)::int FROM tenant_iso.members), 1, 'still one membership');

SELECT throws_ok($$SELECT tenant_iso.add_member('reg_m1', 'beta')$$, '23505',
	'role "reg_m1" is already a member of tenant "acme"',
	'add_member: a role already member of another tenant -> 23505');
SELECT is((SELECT tenant_id FROM tenant_iso.members WHERE member = 'reg_m1'::regrole), 'acme',
	'the refused second membership left the first one alone');
SELECT throws_ok($$SELECT tenant_iso.add_member('reg_m2', 'nosuch')$$, '42704',
	'tenant "nosuch" does not exist', 'add_member: unknown tenant -> 42704');
SELECT throws_ok($$SELECT tenant_iso.add_member('reg_m2', 'no such')$$, '22023', 'invalid tenant id',
	'add_member: invalid tenant id -> 22023');
SELECT throws_ok($$SELECT tenant_iso.add_member('reg_m2', NULL)$$, '22023', 'invalid tenant id',
	'add_member: NULL tenant id -> 22023');
SELECT throws_ok($$SELECT tenant_iso.add_member(NULL, 'acme')$$, '22004', NULL,
	'add_member: NULL role -> 22004');
SELECT throws_ok($$SELECT tenant_iso.add_member('reg_nosuchrole', 'acme')$$, '42704', NULL,
	'add_member: a role that does not exist -> 42704');

SELECT lives_ok($$SELECT tenant_iso.grant_switch('reg_pool')$$, 'grant_switch(reg_pool)');
SELECT throws_ok($$SELECT tenant_iso.add_member('reg_pool', 'acme')$$, '0LP01',
	'role "reg_pool" is a switcher and cannot be a tenant member',
	'add_member: a switcher role -> 0LP01');
SELECT ok(NOT EXISTS (SELECT 1 FROM tenant_iso.members WHERE member = 'reg_pool'::regrole),
	'the switcher did not become a member');

SELECT lives_ok($$SELECT tenant_iso.add_member('reg_m2', 'beta')$$, 'add_member(reg_m2, beta)');
SELECT throws_ok($$SELECT tenant_iso.remove_member('reg_plain')$$, '42704',
	'role "reg_plain" is not a tenant member', 'remove_member: not a member -> 42704');
SELECT throws_ok($$SELECT tenant_iso.remove_member('reg_pool')$$, '42704', NULL,
	'remove_member: a switcher is not a member -> 42704');

-- the registry is live: membership applies at once, removal too
SET ROLE reg_m1;
SELECT is(tenant_iso.current_tenant(), 'acme', 'member reg_m1 is in tenant acme right away');
RESET ROLE;
SELECT lives_ok($$SELECT tenant_iso.remove_member('reg_m1')$$, 'remove_member(reg_m1)');
SELECT ok(NOT EXISTS (SELECT 1 FROM tenant_iso.members WHERE member = 'reg_m1'::regrole),
	'reg_m1 is gone from members');
SET ROLE reg_m1;
SELECT is(tenant_iso.current_tenant(), NULL, 'after remove_member reg_m1 has no tenant');
RESET ROLE;
SELECT lives_ok($$SELECT tenant_iso.add_member('reg_m1', 'beta')$$,
	'a removed member can join another tenant');
SELECT is((SELECT tenant_id FROM tenant_iso.members WHERE member = 'reg_m1'::regrole), 'beta',
	'reg_m1 -> beta');
SELECT lives_ok($$SELECT tenant_iso.remove_member('reg_m1')$$, 'remove_member(reg_m1) again');
SELECT throws_ok($$SELECT tenant_iso.remove_member('reg_m1')$$, '42704', NULL,
	'remove_member twice -> 42704');

-- a tenant with members cannot be deleted behind their back (FK)
SELECT throws_ok($$DELETE FROM tenant_iso.tenants WHERE tenant_id = 'beta'$$, '23503', NULL,
	'deleting a tenant that still has members is refused by the foreign key');

-- ===================================================================
-- grant_switch / revoke_switch
-- ===================================================================
SELECT results_eq($$SELECT grantee::text FROM tenant_iso.switchers$$, $$VALUES ('reg_pool'::text)$$,
	'switchers table holds reg_pool');
SELECT ok((SELECT granted_at >= :'reg_t0'::timestamptz AND granted_at <= now()
	      FROM tenant_iso.switchers WHERE grantee = 'reg_pool'::regrole),
	'granted_at is the time grant_switch ran (after the run started, not in the future)');
SELECT lives_ok($$SELECT tenant_iso.grant_switch('reg_pool')$$, 'grant_switch twice is a no-op');
SELECT is((SELECT count(*)::int FROM tenant_iso.switchers), 1, 'still one switcher');
SELECT throws_ok($$SELECT tenant_iso.grant_switch('reg_m2')$$, '0LP01',
	'role "reg_m2" is a tenant member and cannot be a switcher',
	'grant_switch: a member role -> 0LP01');
SELECT ok(NOT EXISTS (SELECT 1 FROM tenant_iso.switchers WHERE grantee = 'reg_m2'::regrole),
	'the member did not become a switcher');
SELECT throws_ok($$SELECT tenant_iso.grant_switch(NULL)$$, '22004', NULL,
	'grant_switch: NULL role -> 22004');
SELECT throws_ok($$SELECT tenant_iso.grant_switch('reg_nosuchrole')$$, '42704', NULL,
	'grant_switch: a role that does not exist -> 42704');

SET ROLE reg_pool;
SELECT lives_ok($$SELECT tenant_iso.set_tenant('acme')$$, 'switcher reg_pool can set_tenant');
SELECT is(tenant_iso.current_tenant(), 'acme', 'reg_pool is in acme');
SELECT lives_ok($$SELECT tenant_iso.reset_tenant()$$, 'reg_pool leaves with reset_tenant');
RESET ROLE;
SELECT lives_ok($$SELECT tenant_iso.revoke_switch('reg_pool')$$, 'revoke_switch(reg_pool)');
SELECT is((SELECT count(*)::int FROM tenant_iso.switchers), 0, 'switchers table is empty');
SELECT lives_ok($$SELECT tenant_iso.revoke_switch('reg_pool')$$,
	'revoke_switch of a non-switcher is a no-op');
SET ROLE reg_pool;
SELECT throws_ok($$SELECT tenant_iso.set_tenant('acme')$$, '42501', 'permission denied to switch tenant context',
	'after revoke_switch, set_tenant -> 42501');
SELECT is(tenant_iso.current_tenant(), NULL, 'and reg_pool has no tenant');
RESET ROLE;
SELECT lives_ok($$SELECT tenant_iso.add_member('reg_pool', 'acme')$$,
	'after revoke_switch the role may become a member');
SELECT lives_ok($$SELECT tenant_iso.remove_member('reg_pool')$$, 'and be removed again');

-- ===================================================================
-- Privileges: admin functions are not for PUBLIC
-- ===================================================================
SET ROLE reg_plain;
SELECT throws_ok($$SELECT tenant_iso.create_tenant('evil')$$, '42501',
	'permission denied for function create_tenant', 'plain role: create_tenant -> 42501');
SELECT throws_ok($$SELECT tenant_iso.suspend_tenant('acme')$$, '42501',
	'permission denied for function suspend_tenant', 'plain role: suspend_tenant -> 42501');
SELECT throws_ok($$SELECT tenant_iso.resume_tenant('acme')$$, '42501',
	'permission denied for function resume_tenant', 'plain role: resume_tenant -> 42501');
SELECT throws_ok($$SELECT tenant_iso.add_member('reg_plain', 'acme')$$, '42501',
	'permission denied for function add_member', 'plain role: add_member -> 42501');
SELECT throws_ok($$SELECT tenant_iso.remove_member('reg_m2')$$, '42501',
	'permission denied for function remove_member', 'plain role: remove_member -> 42501');
SELECT throws_ok($$SELECT tenant_iso.grant_switch('reg_plain')$$, '42501',
	'permission denied for function grant_switch', 'plain role: grant_switch -> 42501');
SELECT throws_ok($$SELECT tenant_iso.revoke_switch('reg_plain')$$, '42501',
	'permission denied for function revoke_switch', 'plain role: revoke_switch -> 42501');
SELECT throws_ok($$SELECT tenant_iso._set_tenant_status('acme', 'suspended')$$, '42501', NULL,
	'plain role: internal _set_tenant_status -> 42501');
-- ... and the configuration tables are closed to it
SELECT throws_ok($$SELECT * FROM tenant_iso.tenants$$, '42501', NULL,
	'plain role cannot read tenant_iso.tenants');
SELECT throws_ok($$SELECT * FROM tenant_iso.members$$, '42501', NULL,
	'plain role cannot read tenant_iso.members');
SELECT throws_ok($$SELECT * FROM tenant_iso.switchers$$, '42501', NULL,
	'plain role cannot read tenant_iso.switchers');
SELECT throws_ok($$SELECT * FROM tenant_iso.protected$$, '42501', NULL,
	'plain role cannot read tenant_iso.protected');
SELECT throws_ok($$INSERT INTO tenant_iso.switchers (grantee) VALUES ('reg_plain')$$, '42501', NULL,
	'plain role cannot make itself a switcher by writing tenant_iso.switchers');
SELECT throws_ok($$INSERT INTO tenant_iso.members (member, tenant_id) VALUES ('reg_plain', 'acme')$$, '42501', NULL,
	'plain role cannot write tenant_iso.members');
SELECT throws_ok($$UPDATE tenant_iso.tenants SET status = 'suspended'$$, '42501', NULL,
	'plain role cannot write tenant_iso.tenants');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM tenant_iso.tenants WHERE tenant_id = 'evil'), 0,
	'the refused calls changed nothing (no tenant evil)');
SELECT is((SELECT count(*)::int FROM tenant_iso.tenants WHERE status <> 'active'), 0,
	'the refused calls changed nothing (no tenant suspended)');

-- no PUBLIC privilege on any configuration table (catalog view)
SELECT is(
	(SELECT count(*)::int FROM information_schema.role_table_grants
	  WHERE table_schema = 'tenant_iso' AND grantee = 'PUBLIC'
	    AND table_name IN ('tenants', 'members', 'switchers', 'protected')),
	0, 'no privilege on the configuration tables is granted to PUBLIC');
SELECT ok(NOT has_table_privilege('reg_plain', 'tenant_iso.tenants', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE'),
	'has_table_privilege: reg_plain has no privilege on tenants');
SELECT ok(NOT has_table_privilege('reg_plain', 'tenant_iso.switchers', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE'),
	'has_table_privilege: reg_plain has no privilege on switchers');
SELECT ok(NOT has_function_privilege('reg_plain', 'tenant_iso.issue_token(text, interval)', 'EXECUTE'),
	'has_function_privilege: reg_plain cannot execute issue_token');
SELECT ok(NOT has_function_privilege('reg_plain', 'tenant_iso.master_key_loadable()', 'EXECUTE'),
	'has_function_privilege: reg_plain cannot execute master_key_loadable');
SELECT ok(has_function_privilege('reg_plain', 'tenant_iso.set_tenant_token(text, boolean)', 'EXECUTE')
      AND has_function_privilege('reg_plain', 'tenant_iso.current_tenant()', 'EXECUTE'),
	'set_tenant_token and current_tenant are public');

-- EXECUTE can be delegated
GRANT EXECUTE ON FUNCTION tenant_iso.create_tenant(text, text), tenant_iso.suspend_tenant(text),
	tenant_iso.resume_tenant(text), tenant_iso.add_member(regrole, text),
	tenant_iso.remove_member(regrole), tenant_iso.grant_switch(regrole),
	tenant_iso.revoke_switch(regrole) TO reg_admin;
SET ROLE reg_admin;
SELECT lives_ok($$SELECT tenant_iso.create_tenant('delegated', 'By reg_admin')$$,
	'after GRANT EXECUTE, reg_admin can create_tenant');
SELECT lives_ok($$SELECT tenant_iso.suspend_tenant('delegated')$$, '... suspend_tenant');
SELECT lives_ok($$SELECT tenant_iso.resume_tenant('delegated')$$, '... resume_tenant');
SELECT lives_ok($$SELECT tenant_iso.add_member('reg_plain', 'delegated')$$, '... add_member');
SELECT lives_ok($$SELECT tenant_iso.remove_member('reg_plain')$$, '... remove_member');
SELECT lives_ok($$SELECT tenant_iso.grant_switch('reg_plain')$$, '... grant_switch');
SELECT lives_ok($$SELECT tenant_iso.revoke_switch('reg_plain')$$, '... revoke_switch');
SELECT throws_ok($$SELECT * FROM tenant_iso.tenants$$, '42501', NULL,
	'a delegated admin still cannot read the tables directly');
RESET ROLE;
SELECT results_eq(
	$$SELECT display_name, status FROM tenant_iso.tenants WHERE tenant_id = 'delegated'$$,
	$$VALUES ('By reg_admin'::text, 'active'::text)$$,
	'the delegated admin''s tenant is registered');
SELECT is((SELECT count(*)::int FROM tenant_iso.members WHERE member = 'reg_plain'::regrole)
        + (SELECT count(*)::int FROM tenant_iso.switchers WHERE grantee = 'reg_plain'::regrole), 0,
	'the delegated admin''s membership and switch grant are gone again');
REVOKE EXECUTE ON FUNCTION tenant_iso.create_tenant(text, text) FROM reg_admin;
SET ROLE reg_admin;
SELECT throws_ok($$SELECT tenant_iso.create_tenant('again')$$, '42501', NULL,
	'after REVOKE EXECUTE, reg_admin cannot create_tenant');
RESET ROLE;

-- ===================================================================
-- pg_dump registration
-- ===================================================================
SELECT ok((SELECT ARRAY['tenant_iso.tenants', 'tenant_iso.members', 'tenant_iso.switchers',
                         'tenant_iso.protected']::regclass[]::oid[] <@ extconfig
              FROM pg_extension WHERE extname = 'tenant_iso'),
	'the four configuration tables are registered with pg_extension_config_dump');
SELECT ok((SELECT bool_and(c = '') FROM pg_extension, unnest(extcondition) c WHERE extname = 'tenant_iso'),
	'pg_dump dumps all their rows (empty filter conditions)');
SELECT is((SELECT array_length(extconfig, 1) = array_length(extcondition, 1)
             FROM pg_extension WHERE extname = 'tenant_iso'), true,
	'extconfig and extcondition have the same length');

SELECT * FROM finish();

-- ===================================================================
-- cleanup (roles are cluster-wide)
-- ===================================================================
RESET ROLE;
SELECT tenant_iso.remove_member(member) FROM tenant_iso.members \g /dev/null
SELECT tenant_iso.revoke_switch(grantee) FROM tenant_iso.switchers \g /dev/null
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tenant_iso FROM reg_admin;
DROP OWNED BY reg_m1, reg_m2, reg_pool, reg_plain, reg_admin;
DROP ROLE reg_m1, reg_m2, reg_pool, reg_plain, reg_admin;
