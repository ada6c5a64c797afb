-- test/pgtap/protect.sql
--
-- The protect() / unprotect() surface: supported tenant column types, the
-- errors, ownership, idempotence, the tenant DEFAULT, the RLS flags, the
-- registry, partitions and children, unprotect() and its refusal in a tenant
-- context, the covert-channel checks (unique keys and foreign keys without
-- the tenant column) and index usability of the tenant qual.
--
-- Roles start with pr_ and are dropped at the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['pr_owner', 'pr_other', 'pr_pool', 'pr_m42'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;

CREATE SCHEMA h;
GRANT USAGE ON SCHEMA h TO PUBLIC;

-- Rows of a query as sorted row literals ('none' when there is none), or
-- 'ERROR <sqlstate>'.  Effects are undone unless keep.
CREATE FUNCTION h.rows(q text, keep boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE format($x$WITH x AS (%s) SELECT coalesce(string_agg(x::text, ' ' ORDER BY x::text COLLATE "C"), 'none') FROM x$x$, q)
		INTO r;
	IF NOT keep THEN
		RAISE EXCEPTION USING ERRCODE = 'TIUND', MESSAGE = r;
	END IF;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	IF SQLSTATE = 'TIUND' THEN
		RETURN SQLERRM;
	END IF;
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

-- Run a statement and undo it: 'ok', or '<sqlstate>: <message> HINT: <hint>'.
CREATE FUNCTION h.err(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	st text;
	msg text;
	hint text;
BEGIN
	EXECUTE q;
	RAISE EXCEPTION USING ERRCODE = 'TIUND', MESSAGE = 'ok';
EXCEPTION WHEN OTHERS THEN
	IF SQLSTATE = 'TIUND' THEN
		RETURN 'ok';
	END IF;
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
	RETURN st || ': ' || msg || CASE WHEN hint <> '' THEN ' HINT: ' || hint ELSE '' END;
END
$f$;

-- EXPLAIN (COSTS OFF) output as one string
CREATE FUNCTION h.plan(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	l text;
	r text := '';
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		r := r || l || E'\n';
	END LOOP;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

-- RLS flags, tenant column default and registry entry of a table
CREATE FUNCTION h.state(rel regclass, col name DEFAULT 'tenant_id') RETURNS text
LANGUAGE sql AS $f$
	SELECT format('rls=%s force=%s default=%s registered=%s',
		c.relrowsecurity::text, c.relforcerowsecurity::text,
		coalesce((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a
				   ON a.attrelid = d.adrelid AND a.attnum = d.adnum
				  WHERE d.adrelid = rel AND a.attname = col), 'none'),
		EXISTS (SELECT 1 FROM tenant_iso.protected_tables p WHERE p.rel = state.rel)::text)
	  FROM pg_class c WHERE c.oid = rel
$f$;

-- ---------------------------------------------------------------------
-- Fixtures
-- ---------------------------------------------------------------------
CREATE ROLE pr_owner;
CREATE ROLE pr_other;
CREATE ROLE pr_pool;
CREATE ROLE pr_m42;
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('42');
	PERFORM tenant_iso.create_tenant('7');
	PERFORM tenant_iso.create_tenant('acme');
	PERFORM tenant_iso.create_tenant('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
	PERFORM tenant_iso.create_tenant('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a22');
	PERFORM tenant_iso.grant_switch('pr_pool');
	PERFORM tenant_iso.add_member('pr_m42', '42');
END
$$;
GRANT CREATE ON SCHEMA public TO pr_owner, pr_m42;

-- one table per supported tenant column type, rows for tenants 42 and 7
CREATE TABLE t_text (tenant_id text, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE t_varchar (tenant_id varchar(63), id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE t_int2 (tenant_id int2, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE t_int4 (tenant_id int4, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE t_int8 (tenant_id int8, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE t_uuid (tenant_id uuid, id int, PRIMARY KEY (tenant_id, id));
INSERT INTO t_text VALUES ('42', 1), ('42', 2), ('7', 1);
INSERT INTO t_varchar VALUES ('42', 1), ('42', 2), ('7', 1);
INSERT INTO t_int2 VALUES (42, 1), (42, 2), (7, 1);
INSERT INTO t_int4 VALUES (42, 1), (42, 2), (7, 1);
INSERT INTO t_int8 VALUES (42, 1), (42, 2), (7, 1);
INSERT INTO t_uuid VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1), ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 2),
	('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a22', 1);
GRANT SELECT, INSERT ON t_text, t_varchar, t_int2, t_int4, t_int8, t_uuid TO pr_pool;

SELECT plan(57);

-- =====================================================================
-- Supported types
-- =====================================================================
SELECT lives_ok($$SELECT tenant_iso.protect('t_text')$$, 'protect: a text tenant column is accepted');
SELECT lives_ok($$SELECT tenant_iso.protect('t_varchar')$$, 'protect: a varchar tenant column is accepted');
SELECT lives_ok($$SELECT tenant_iso.protect('t_int2')$$, 'protect: a smallint tenant column is accepted');
SELECT lives_ok($$SELECT tenant_iso.protect('t_int4')$$, 'protect: an integer tenant column is accepted');
SELECT lives_ok($$SELECT tenant_iso.protect('t_int8')$$, 'protect: a bigint tenant column is accepted');
SELECT lives_ok($$SELECT tenant_iso.protect('t_uuid')$$, 'protect: a uuid tenant column is accepted');

-- in tenant 42 (a numeric tenant id), each table shows tenant 42's rows only,
-- and a row inserted without the tenant column gets 42
SET ROLE pr_pool;
DO $$ BEGIN PERFORM tenant_iso.set_tenant('42'); END $$;
SELECT is(h.rows('SELECT tenant_id, id FROM t_text') || ' | ' || h.rows('INSERT INTO t_text (id) VALUES (9) RETURNING tenant_id, id'),
	'(42,1) (42,2) | (42,9)', 'protect: text column: only tenant 42 rows; the default fills in 42');
SELECT is(h.rows('SELECT tenant_id, id FROM t_varchar') || ' | ' || h.rows('INSERT INTO t_varchar (id) VALUES (9) RETURNING tenant_id, id'),
	'(42,1) (42,2) | (42,9)', 'protect: varchar column: only tenant 42 rows; the default fills in 42');
SELECT is(h.rows('SELECT tenant_id, id FROM t_int2') || ' | ' || h.rows('INSERT INTO t_int2 (id) VALUES (9) RETURNING tenant_id, id'),
	'(42,1) (42,2) | (42,9)', 'protect: smallint column: only tenant 42 rows; the default fills in 42');
SELECT is(h.rows('SELECT tenant_id, id FROM t_int4') || ' | ' || h.rows('INSERT INTO t_int4 (id) VALUES (9) RETURNING tenant_id, id'),
	'(42,1) (42,2) | (42,9)', 'protect: integer column: only tenant 42 rows; the default fills in 42');
SELECT is(h.rows('SELECT tenant_id, id FROM t_int8') || ' | ' || h.rows('INSERT INTO t_int8 (id) VALUES (9) RETURNING tenant_id, id'),
	'(42,1) (42,2) | (42,9)', 'protect: bigint column: only tenant 42 rows; the default fills in 42');
DO $$ BEGIN PERFORM tenant_iso.set_tenant('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'); END $$;
SELECT is(h.rows('SELECT tenant_id, id FROM t_uuid') || ' | ' || h.rows('INSERT INTO t_uuid (id) VALUES (9) RETURNING tenant_id, id'),
	'(a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,1) (a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,2) | (a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,9)',
	'protect: uuid column: only the uuid tenant''s rows; the default fills in its id');
DO $$ BEGIN PERFORM tenant_iso.set_tenant('7'); END $$;
SELECT is(h.rows('SELECT tenant_id, id FROM t_int4') || ' | ' || h.rows('SELECT tenant_id, id FROM t_text'),
	'(7,1) | (7,1)', 'protect: in tenant 7 the same tables show only tenant 7 rows');
DO $$ BEGIN PERFORM tenant_iso.reset_tenant(); END $$;
RESET ROLE;

SELECT is(h.state('t_text') || ' / ' || h.state('t_int8') || ' / ' || h.state('t_uuid'),
	'rls=true force=true default=tenant_iso._tenant_default(tenant_iso.current_tenant(), ''text''::regtype, ''-1''::integer) registered=true / '
	|| 'rls=true force=true default=(tenant_iso._tenant_default(tenant_iso.current_tenant(), ''bigint''::regtype, ''-1''::integer))::bigint registered=true / '
	|| 'rls=true force=true default=(tenant_iso._tenant_default(tenant_iso.current_tenant(), ''uuid''::regtype, ''-1''::integer))::uuid registered=true',
	'protect: row security is enabled and forced, the tenant default is set, the table is registered');

-- =====================================================================
-- Errors
-- =====================================================================
CREATE TABLE t_numeric (tenant_id numeric, id int);
CREATE TABLE t_date (tenant_id date, id int);
SELECT is(h.err($$SELECT tenant_iso.protect('t_numeric')$$),
	'42804: tenant column "tenant_id" has unsupported type numeric HINT: The tenant column must be text, varchar, uuid, smallint, integer or bigint.',
	'protect: a numeric tenant column is refused (42804, with a hint)');
SELECT is(h.err($$SELECT tenant_iso.protect('t_date')$$),
	'42804: tenant column "tenant_id" has unsupported type date HINT: The tenant column must be text, varchar, uuid, smallint, integer or bigint.',
	'protect: a date tenant column is refused (42804, with a hint)');
SELECT is(h.state('t_numeric'), 'rls=false force=false default=none registered=false',
	'protect: a refused table is left untouched');

SELECT throws_ok($$SELECT tenant_iso.protect('t_date', 'no_such_column')$$, '42703', NULL,
	'protect: a missing tenant column is refused (42703)');

SELECT throws_ok($$SELECT tenant_iso.protect('t_text', 'id')$$, '55000', NULL,
	'protect: protecting again on a different column is refused (55000)');

CREATE VIEW v_text AS SELECT * FROM t_text;
SELECT throws_ok($$SELECT tenant_iso.protect('v_text')$$, '42809', NULL,
	'protect: a view is refused (42809)');

SELECT throws_ok($$SELECT tenant_iso.protect(NULL)$$, '22004', NULL,
	'protect: a null table is refused (22004)');

-- =====================================================================
-- Ownership and idempotence
-- =====================================================================
CREATE TABLE t_su (tenant_id text, id int, PRIMARY KEY (tenant_id, id));
SET ROLE pr_other;
SELECT throws_ok($$SELECT tenant_iso.protect('t_su')$$, '42501', 'must be owner of table public.t_su',
	'protect: a role that does not own the table is refused (42501)');
RESET ROLE;
SELECT is(h.state('t_su'), 'rls=false force=false default=none registered=false',
	'protect: the refused non-owner call changed nothing');

SET ROLE pr_owner;
CREATE TABLE pr_own (tenant_id text, id int, PRIMARY KEY (tenant_id, id));
SELECT lives_ok($$SELECT tenant_iso.protect('pr_own')$$,
	'protect: the (non-superuser) owner can protect its table');
RESET ROLE;
SELECT protected_at AS pr_first FROM tenant_iso.protected_tables WHERE rel = 'pr_own'::regclass \gset
SET ROLE pr_owner;
SELECT lives_ok($$SELECT tenant_iso.protect('pr_own')$$,
	'protect: a second call is accepted');
RESET ROLE;
SELECT is(h.rows($$SELECT count(*), min(protected_at) = '$$ || :'pr_first' || $$' FROM tenant_iso.protected_tables WHERE rel = 'pr_own'::regclass$$)
		|| ' ' || h.state('pr_own'),
	'(1,t) rls=true force=true default=tenant_iso._tenant_default(tenant_iso.current_tenant(), ''text''::regtype, ''-1''::integer) registered=true',
	'protect: the second call is a no-op (one registry row, same protected_at)');

SET ROLE pr_other;
SELECT throws_ok($$SELECT tenant_iso.unprotect('pr_own')$$, '42501', 'must be owner of table public.pr_own',
	'unprotect: a role that does not own the table is refused (42501)');
RESET ROLE;

-- =====================================================================
-- The tenant default
-- =====================================================================
CREATE TABLE t_def (tenant_id text DEFAULT 'acme', id int, PRIMARY KEY (tenant_id, id));
GRANT SELECT, INSERT ON t_def TO pr_pool;
DO $$ BEGIN PERFORM tenant_iso.protect('t_def'); END $$;
SELECT is(h.state('t_def') || ' default_set=' || (SELECT default_set FROM tenant_iso.protected WHERE rel = 't_def'::regclass),
	'rls=true force=true default=''acme''::text registered=true default_set=false',
	'protect: an existing default on the tenant column is kept');
SET ROLE pr_pool;
DO $$ BEGIN PERFORM tenant_iso.set_tenant('acme'); END $$;
SELECT is(h.rows('INSERT INTO t_def (id) VALUES (1) RETURNING tenant_id, id'), '(acme,1)',
	'protect: the kept default still applies in the matching tenant context');
DO $$ BEGIN PERFORM tenant_iso.set_tenant('42'); END $$;
SELECT is(h.rows('INSERT INTO t_def (id) VALUES (1) RETURNING tenant_id, id'), 'ERROR 42501',
	'protect: a kept default naming another tenant is refused by the WITH CHECK (42501)');
DO $$ BEGIN PERFORM tenant_iso.reset_tenant(); END $$;
RESET ROLE;
SELECT lives_ok($$SELECT tenant_iso.unprotect('t_def')$$, 'unprotect: t_def');
SELECT is(h.state('t_def'), 'rls=false force=false default=''acme''::text registered=false',
	'unprotect: a default protect() did not set is left in place');

-- =====================================================================
-- unprotect()
-- =====================================================================
SELECT lives_ok($$SELECT tenant_iso.unprotect('t_int4')$$, 'unprotect: the superuser outside any context can unprotect');
SELECT is(h.state('t_int4'), 'rls=false force=false default=none registered=false',
	'unprotect: row security off, the tenant default dropped, the registry row gone');

CREATE TABLE t_prior (tenant_id text, id int);
ALTER TABLE t_prior ENABLE ROW LEVEL SECURITY;
DO $$ BEGIN PERFORM tenant_iso.protect('t_prior'); END $$;
DO $$ BEGIN PERFORM tenant_iso.unprotect('t_prior'); END $$;
SELECT is(h.state('t_prior'), 'rls=true force=false default=none registered=false',
	'unprotect: row security that was enabled before protect() stays enabled');

-- refused in a tenant context: a member owning its table, and the superuser after set_tenant()
SET ROLE pr_m42;
CREATE TABLE pr_m42_own (tenant_id text, id int, PRIMARY KEY (tenant_id, id));
SELECT lives_ok($$SELECT tenant_iso.protect('pr_m42_own')$$, 'protect: a member can protect a table it owns');
SELECT throws_ok($$SELECT tenant_iso.unprotect('pr_m42_own')$$, '42501',
	'unprotect() is not allowed in a tenant context',
	'unprotect: refused for a member (always in its tenant context) even on its own table (42501)');
RESET ROLE;
DO $$ BEGIN PERFORM tenant_iso.set_tenant('42'); END $$;
SELECT throws_ok($$SELECT tenant_iso.unprotect('t_text')$$, '42501',
	'unprotect() is not allowed in a tenant context',
	'unprotect: refused for the superuser inside a tenant context (42501)');
DO $$ BEGIN PERFORM tenant_iso.reset_tenant(); END $$;
SELECT is(h.state('pr_m42_own') || ' / ' || h.state('t_text'),
	'rls=true force=true default=tenant_iso._tenant_default(tenant_iso.current_tenant(), ''text''::regtype, ''-1''::integer) registered=true / rls=true force=true default=tenant_iso._tenant_default(tenant_iso.current_tenant(), ''text''::regtype, ''-1''::integer) registered=true',
	'unprotect: the refused calls left both tables protected');

-- =====================================================================
-- Partitions and inheritance children
-- =====================================================================
CREATE TABLE t_part (tenant_id text, id int) PARTITION BY LIST (tenant_id);
CREATE TABLE t_part_42 PARTITION OF t_part FOR VALUES IN ('42');
CREATE TABLE t_inh (tenant_id text, id int);
CREATE TABLE t_inh_kid () INHERITS (t_inh);
DO $$ BEGIN PERFORM tenant_iso.protect('t_part'); END $$;
DO $$ BEGIN PERFORM tenant_iso.protect('t_inh'); END $$;
CREATE TABLE t_part_7 PARTITION OF t_part FOR VALUES IN ('7');
CREATE TABLE t_inh_kid2 () INHERITS (t_inh);
SELECT is(h.rows($$SELECT rel::text, tenant_column, coalesce(via::text, '-') FROM tenant_iso.protected WHERE rel::text ~ '^t_(part|inh)'$$),
	'(t_inh,tenant_id,-) (t_inh_kid,tenant_id,t_inh) (t_inh_kid2,tenant_id,t_inh) (t_part,tenant_id,-) (t_part_42,tenant_id,t_part) (t_part_7,tenant_id,t_part)',
	'protect: existing and later partitions and inheritance children are registered, via their ancestor');
SELECT is(h.state('t_part_7') || ' / ' || h.state('t_inh_kid2'),
	'rls=true force=true default=tenant_iso._tenant_default(tenant_iso.current_tenant(), ''text''::regtype, ''-1''::integer) registered=true / rls=true force=true default=tenant_iso._tenant_default(tenant_iso.current_tenant(), ''text''::regtype, ''-1''::integer) registered=true',
	'protect: a partition and a child created after protect() get row security and the default');
DO $$ BEGIN PERFORM tenant_iso.unprotect('t_part'); END $$;
SELECT is(h.rows($$SELECT rel::text FROM tenant_iso.protected WHERE rel::text ~ '^t_part'$$)
		|| ' ' || h.state('t_part_42') || ' / ' || h.state('t_part_7'),
	'none rls=false force=false default=none registered=false / rls=false force=false default=none registered=false',
	'unprotect: the partitions protect() reached (also the one created later) are fully unprotected with their parent');
DO $$ BEGIN PERFORM tenant_iso.unprotect('t_inh'); END $$;
SELECT is(h.rows($$SELECT rel::text FROM tenant_iso.protected WHERE rel::text ~ '^t_inh'$$)
		|| ' ' || h.state('t_inh_kid') || ' / ' || h.state('t_inh_kid2'),
	'none rls=false force=false default=none registered=false / rls=false force=false default=none registered=false',
	'unprotect: the inheritance children protect() reached (also the one created later) are fully unprotected with their parent');

-- =====================================================================
-- Covert channels: unique keys and foreign keys without the tenant column
-- =====================================================================
CREATE TABLE t_leaky (tenant_id text, id int PRIMARY KEY, email text UNIQUE);
SELECT is(h.rows($$SELECT object FROM tenant_iso._leaky_constraints('t_leaky', 'tenant_id')$$),
	'("index public.t_leaky_email_key") ("index public.t_leaky_pkey")',
	'protect: PRIMARY KEY (id) and UNIQUE (email) are both reported as leaky');
SELECT is(h.err($$SELECT tenant_iso.protect('t_leaky', strict => true)$$),
	'42P16: unique index public.t_leaky_pkey on public.t_leaky does not include the tenant column tenant_id HINT: Include the tenant column in the key, for example PRIMARY KEY (tenant_id, id).',
	'protect: strict => true refuses a table with a leaky unique key (42P16)');
SELECT is(h.state('t_leaky'), 'rls=false force=false default=none registered=false',
	'protect: the strict refusal left the table unprotected');
SET client_min_messages = error;	-- the non-strict call warns
SELECT lives_ok($$SELECT tenant_iso.protect('t_leaky')$$,
	'protect: without strict a leaky table is protected anyway (with warnings)');
SET client_min_messages = warning;

CREATE TABLE ref_plain (id int PRIMARY KEY);
CREATE TABLE t_fk_out (tenant_id text, id int, ref_id int REFERENCES ref_plain, PRIMARY KEY (tenant_id, id));
CREATE TABLE t_fk_in (tenant_id text, id int, PRIMARY KEY (tenant_id, id));
ALTER TABLE t_fk_in ADD CONSTRAINT t_fk_in_id_u UNIQUE (id);
CREATE TABLE t_fk_in_child (cid int REFERENCES t_fk_in (id));
SELECT is(h.rows($$SELECT object FROM tenant_iso._leaky_constraints('t_fk_out', 'tenant_id')$$)
		|| ' | ' || h.rows($$SELECT object FROM tenant_iso._leaky_constraints('t_fk_in', 'tenant_id') WHERE object LIKE 'constraint%'$$),
	'("constraint t_fk_out_ref_id_fkey on public.t_fk_out") | ("constraint t_fk_in_child_cid_fkey on public.t_fk_in_child")',
	'protect: a foreign key from and a foreign key to the table without the tenant column are reported');
SELECT is(h.err($$SELECT tenant_iso.protect('t_fk_out', strict => true)$$),
	'42P16: foreign key t_fk_out_ref_id_fkey from public.t_fk_out to public.ref_plain does not carry the tenant column on both sides HINT: Include the tenant column in the key, for example PRIMARY KEY (tenant_id, id).',
	'protect: strict => true refuses a table with a leaky foreign key (42P16)');

CREATE TABLE t_fk_parent (tenant_id text, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE t_fk_child (tenant_id text, id int, pid int, PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, pid) REFERENCES t_fk_parent (tenant_id, id));
SELECT is(h.rows($$SELECT object FROM tenant_iso._leaky_constraints('t_fk_parent', 'tenant_id')$$)
		|| ' | ' || h.rows($$SELECT object FROM tenant_iso._leaky_constraints('t_fk_child', 'tenant_id')$$),
	'none | none',
	'protect: a foreign key carrying the tenant column on both sides is not reported');
SELECT lives_ok($$SELECT tenant_iso.protect('t_fk_parent', strict => true); SELECT tenant_iso.protect('t_fk_child', strict => true)$$,
	'protect: strict => true accepts tenant-scoped keys on both sides');

-- =====================================================================
-- Index usability: the tenant qual is an index condition
-- =====================================================================
CREATE TABLE t_big (tenant_id text, id int, v int, PRIMARY KEY (tenant_id, id));
CREATE TABLE t_big8 (tenant_id int8, id int, v int, PRIMARY KEY (tenant_id, id));
INSERT INTO t_big SELECT t, g, g FROM unnest(ARRAY['42', '7']) t, generate_series(1, 3000) g;
INSERT INTO t_big8 SELECT t, g, g FROM unnest(ARRAY[42, 7]) t, generate_series(1, 3000) g;
DO $$ BEGIN PERFORM tenant_iso.protect('t_big'); END $$;
DO $$ BEGIN PERFORM tenant_iso.protect('t_big8'); END $$;
ANALYZE t_big;
ANALYZE t_big8;
GRANT SELECT ON t_big, t_big8 TO pr_m42;
SET ROLE pr_m42;
SELECT matches(h.plan('SELECT * FROM t_big WHERE id = 1'),
	'Index Cond: \(\(tenant_id = (\$0|\(InitPlan 1\)\.col1)\) AND \(id = 1\)\)',
	'index: for a member, the text tenant qual and id = 1 form one Index Cond on PRIMARY KEY (tenant_id, id)');
SELECT matches(h.plan('SELECT * FROM t_big8 WHERE id = 1'),
	'Index Cond: \(\(tenant_id = (\$0|\(InitPlan 1\)\.col1)\) AND \(id = 1\)\)',
	'index: for a member, the bigint tenant qual and id = 1 form one Index Cond on PRIMARY KEY (tenant_id, id)');
SELECT is(h.rows('SELECT tenant_id, id, v FROM t_big WHERE id = 1') || ' ' || h.rows('SELECT tenant_id, id, v FROM t_big8 WHERE id = 1'),
	'(42,1,1) (42,1,1)',
	'index: the index lookups return the member''s own row');
RESET ROLE;

-- a child or partition alone: its rows would stay readable through the parent
CREATE TABLE pr_ip (tenant_id text, id int);
CREATE TABLE pr_ic () INHERITS (pr_ip);
CREATE TABLE pr_pp (tenant_id text, id int) PARTITION BY LIST (tenant_id);
CREATE TABLE pr_pp1 PARTITION OF pr_pp FOR VALUES IN ('acme');
SELECT throws_ok($$SELECT tenant_iso.protect('pr_ic')$$, '55000', NULL,
	'protect() of an inheritance child whose parent is not protected -> 55000');
SELECT throws_ok($$SELECT tenant_iso.protect('pr_pp1')$$, '55000', NULL,
	'protect() of a partition whose parent is not protected -> 55000');
SELECT lives_ok($$SELECT tenant_iso.protect('pr_ip')$$,
	'protect() of the parent protects the child with it');
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
	PERFORM tenant_iso.reset_tenant();
	PERFORM tenant_iso.revoke_switch('pr_pool');
	PERFORM tenant_iso.remove_member('pr_m42');
	FOREACH r IN ARRAY ARRAY['pr_owner', 'pr_other', 'pr_pool', 'pr_m42'] LOOP
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
