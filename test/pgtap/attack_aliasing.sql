-- test/pgtap/attack_aliasing.sql
--
-- Attack suite (issue 10): a tenant id matches only itself.  A hostile
-- tenant whose id is another spelling of another tenant's id under the
-- tenant column's type ('042' for the integer 42, an upper-case or
-- hyphen-less uuid), or that a short varchar or a case-insensitive
-- collation would confuse with another id, must never reach that tenant's
-- rows.  One psql session as the superuser; SET ROLE acts as the attacker
-- (a member role, or the switcher role al_pool after set_tenant()), RESET
-- ROLE verifies.  Every denial is paired with a positive control: the
-- canonical tenant sees its own rows through the same policy.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['al_42', 'al_042', 'al_u', 'al_U', 'al_uh', 'al_ci', 'al_pool'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;

-- start from a 0.1.0 installation, so that tables protected before this
-- release can be upgraded below
DROP EXTENSION tenant_iso CASCADE;
CREATE EXTENSION tenant_iso VERSION '0.1.0';

CREATE SCHEMA h;
GRANT USAGE ON SCHEMA h TO PUBLIC;
-- rows of a query (SELECT or DML ... RETURNING) as sorted row literals, or
-- 'ERROR <sqlstate>'; effects undone unless keep
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
CREATE FUNCTION h.as_pool(t text, q text) RETURNS text
LANGUAGE plpgsql AS $f$
BEGIN
	PERFORM tenant_iso.set_tenant(t);
	RETURN h.rows(q);
END
$f$;

CREATE ROLE al_42; CREATE ROLE al_042; CREATE ROLE al_u; CREATE ROLE "al_U"; CREATE ROLE al_uh;
CREATE ROLE al_ci; CREATE ROLE al_pool;
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('42');
	PERFORM tenant_iso.create_tenant('042');
	PERFORM tenant_iso.create_tenant('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
	PERFORM tenant_iso.create_tenant('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11');
	PERFORM tenant_iso.create_tenant('a0eebc999c0b4ef8bb6d6bb9bd380a11');
	PERFORM tenant_iso.create_tenant('acme');
	PERFORM tenant_iso.create_tenant('ACME');
	PERFORM tenant_iso.add_member('al_42', '42');
	PERFORM tenant_iso.add_member('al_042', '042');
	PERFORM tenant_iso.add_member('al_u', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
	PERFORM tenant_iso.add_member('"al_U"', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11');
	PERFORM tenant_iso.add_member('al_uh', 'a0eebc999c0b4ef8bb6d6bb9bd380a11');
	PERFORM tenant_iso.add_member('al_ci', 'ACME');
	PERFORM tenant_iso.grant_switch('al_pool');
END
$$;

CREATE COLLATION h.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

-- protected under 0.1.0, which accepted a case-insensitive collation and
-- set the truncating default; then ALTER EXTENSION ... UPDATE
CREATE TABLE ci_old (tenant_id text COLLATE h.ci, id int);
INSERT INTO ci_old VALUES ('acme', 1), ('ACME', 2);
SELECT tenant_iso.protect('ci_old');
CREATE TABLE old_def (tenant_id varchar(63), id int);
SELECT tenant_iso.protect('old_def');
ALTER EXTENSION tenant_iso UPDATE TO '0.2.0';
GRANT SELECT, INSERT, UPDATE, DELETE ON ci_old, old_def TO al_ci, al_pool;

SELECT plan(49);

SELECT matches((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
				 WHERE d.adrelid = 'old_def'::regclass AND d.adnum = 1),
	'tenant_iso\._tenant_default\(tenant_iso\.current_tenant\(\), ', 'upgrade: the 0.1.0 tenant default is rewritten to the 0.2.0 form');
SET ROLE al_ci;
SELECT is(h.rows('SELECT tenant_id, id FROM ci_old'), '(ACME,2)',
	'upgrade: a table protected under 0.1.0 with a case-insensitive collation: member of ACME sees only ACME');
SELECT is(h.rows('DELETE FROM ci_old RETURNING tenant_id, id'), '(ACME,2)',
	'upgrade: ... and deletes only ACME');
RESET ROLE;
SET ROLE al_pool;
SELECT is(h.as_pool('acme', 'SELECT tenant_id, id FROM ci_old'), '(acme,1)',
	'upgrade: switcher in acme sees only acme there (positive control)');
SELECT tenant_iso.reset_tenant();
RESET ROLE;

-- ---------------------------------------------------------------------
-- protect() refuses aliasing tenant columns
-- ---------------------------------------------------------------------
CREATE TABLE short_v (tenant_id varchar(10), id int);
SELECT throws_ok($$SELECT tenant_iso.protect('short_v')$$, '42804', NULL,
	'protect() refuses varchar(10): a longer id would be cut to another tenant''s id');
CREATE TABLE long_v (tenant_id varchar(63), id int);
SELECT lives_ok($$SELECT tenant_iso.protect('long_v')$$, 'protect() accepts varchar(63)');
CREATE TABLE ci_t (tenant_id text COLLATE h.ci, id int);
SELECT throws_ok($$SELECT tenant_iso.protect('ci_t')$$, '42804', NULL,
	'protect() refuses a nondeterministic (case-insensitive) collation');
CREATE TABLE ci_part (tenant_id text, id int) PARTITION BY LIST (tenant_id);
CREATE TABLE ci_part_a PARTITION OF ci_part FOR VALUES IN ('acme');
SELECT lives_ok($$SELECT tenant_iso.protect('ci_part')$$, 'protect() accepts a partitioned table with a deterministic collation');
SELECT is((SELECT count(*)::int FROM tenant_iso.protected WHERE rel = 'ci_part_a'::regclass), 1,
	'its partition is protected');

-- ---------------------------------------------------------------------
-- an already-protected table whose tenant column got a case-insensitive
-- collation afterwards: the policy compares bytes
-- ---------------------------------------------------------------------
CREATE TABLE ci_late (tenant_id text, id int);
INSERT INTO ci_late VALUES ('acme', 1), ('ACME', 2);
SELECT tenant_iso.protect('ci_late');
ALTER TABLE ci_late ALTER COLUMN tenant_id TYPE text COLLATE h.ci;
GRANT SELECT, INSERT, UPDATE, DELETE ON ci_late TO al_ci, al_pool;
SET ROLE al_ci;
SELECT is(h.rows('SELECT tenant_id, id FROM ci_late'), '(ACME,2)',
	'case-insensitive collation: member of ACME sees only ACME, not acme');
SELECT is(h.rows('UPDATE ci_late SET id = id + 10 RETURNING tenant_id, id'), '(ACME,12)',
	'case-insensitive collation: UPDATE reaches only ACME');
SELECT is(h.rows('DELETE FROM ci_late RETURNING tenant_id, id'), '(ACME,2)',
	'case-insensitive collation: DELETE reaches only ACME');
RESET ROLE;
SET ROLE al_pool;
SELECT is(h.as_pool('ACME', 'SELECT tenant_id, id FROM ci_late'), '(ACME,2)',
	'case-insensitive collation: switcher in ACME sees only ACME');
SELECT is(h.as_pool('acme', 'SELECT tenant_id, id FROM ci_late'), '(acme,1)',
	'case-insensitive collation: switcher in acme sees only acme');
SELECT tenant_iso.reset_tenant();
RESET ROLE;

-- ---------------------------------------------------------------------
-- integer tenant columns: '042' is not 42
-- ---------------------------------------------------------------------
CREATE TABLE i4 (tenant_id int4 NOT NULL, id int);
CREATE TABLE i8 (tenant_id int8 NOT NULL, id int);
INSERT INTO i4 VALUES (42, 1), (42, 2), (7, 3);
INSERT INTO i8 VALUES (42, 1), (42, 2), (7, 3);
SELECT tenant_iso.protect('i4');
SELECT tenant_iso.protect('i8');
GRANT SELECT, INSERT, UPDATE, DELETE ON i4, i8 TO al_42, al_042, al_pool;

SET ROLE al_42;
SELECT is(h.rows('SELECT * FROM i4'), '(42,1) (42,2)', 'int4: member of 42 sees its rows (positive control)');
SELECT is(h.rows('INSERT INTO i4 (id) VALUES (9) RETURNING *'), '(42,9)', 'int4: member of 42 inserts under 42 through the default');
SELECT is(h.rows('SELECT * FROM i8'), '(42,1) (42,2)', 'int8: member of 42 sees its rows (positive control)');
RESET ROLE;

SET ROLE al_042;
SELECT is(h.rows('SELECT * FROM i4'), 'ERROR 42501', 'int4: member of 042 cannot read 42''s rows (fails closed)');
SELECT is(h.rows('INSERT INTO i4 VALUES (42, 5) RETURNING *'), 'ERROR 42501', 'int4: member of 042 cannot insert as 42');
SELECT is(h.rows('INSERT INTO i4 (id) VALUES (5) RETURNING *'), 'ERROR 42804', 'int4: the default refuses 042 rather than storing 42');
SELECT is(h.rows('UPDATE i4 SET id = id + 1 RETURNING *'), 'ERROR 42501', 'int4: member of 042 cannot update 42''s rows');
SELECT is(h.rows('DELETE FROM i4 RETURNING *'), 'ERROR 42501', 'int4: member of 042 cannot delete 42''s rows');
SELECT is(h.rows('SELECT * FROM i8'), 'ERROR 42501', 'int8: member of 042 cannot read 42''s rows');
SELECT is(h.rows('UPDATE i8 SET id = id + 1 RETURNING *'), 'ERROR 42501', 'int8: member of 042 cannot update');
SELECT is(h.rows('DELETE FROM i8 RETURNING *'), 'ERROR 42501', 'int8: member of 042 cannot delete');
SELECT is(h.rows('INSERT INTO i8 VALUES (42, 5) RETURNING *'), 'ERROR 42501', 'int8: member of 042 cannot insert as 42');
RESET ROLE;

SET ROLE al_pool;
SELECT is(h.as_pool('42', 'SELECT * FROM i4'), '(42,1) (42,2)', 'int4: switcher in 42 sees 42''s rows (positive control)');
SELECT is(h.as_pool('042', 'SELECT * FROM i4'), 'ERROR 42501', 'int4: switcher in 042 cannot read 42''s rows');
SELECT is(h.as_pool('042', 'INSERT INTO i4 VALUES (42, 5) RETURNING *'), 'ERROR 42501', 'int4: switcher in 042 cannot insert as 42');
SELECT is(h.as_pool('042', 'UPDATE i4 SET id = 0 RETURNING *'), 'ERROR 42501', 'int4: switcher in 042 cannot update');
SELECT is(h.as_pool('042', 'DELETE FROM i4 RETURNING *'), 'ERROR 42501', 'int4: switcher in 042 cannot delete');
SELECT is(h.as_pool('042', 'SELECT * FROM i8'), 'ERROR 42501', 'int8: switcher in 042 cannot read 42''s rows');
SELECT tenant_iso.reset_tenant();
RESET ROLE;
SELECT is(h.rows('SELECT * FROM i4'), '(42,1) (42,2) (7,3)', 'int4: nothing changed (superuser check)');

-- ---------------------------------------------------------------------
-- uuid tenant columns: only the lower-case hyphenated form is the tenant
-- ---------------------------------------------------------------------
CREATE TABLE u (tenant_id uuid NOT NULL, id int);
INSERT INTO u VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1), ('00000000-0000-0000-0000-000000000001', 2);
SELECT tenant_iso.protect('u');
GRANT SELECT, INSERT, UPDATE, DELETE ON u TO al_u, "al_U", al_uh, al_pool;
SET ROLE al_u;
SELECT is(h.rows('SELECT id FROM u'), '(1)', 'uuid: the canonical tenant sees its row (positive control)');
SELECT is(h.rows('UPDATE u SET id = 10 RETURNING id'), '(10)', 'uuid: the canonical tenant updates its row');
RESET ROLE;
SET ROLE "al_U";
SELECT is(h.rows('SELECT id FROM u'), 'ERROR 42501', 'uuid: the upper-case spelling cannot read the canonical tenant''s row');
SELECT is(h.rows('INSERT INTO u (id) VALUES (5) RETURNING id'), 'ERROR 42804', 'uuid: the default refuses the upper-case spelling');
SELECT is(h.rows($$INSERT INTO u VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 5) RETURNING id$$), 'ERROR 42501', 'uuid: upper-case cannot insert as the canonical tenant');
SELECT is(h.rows('UPDATE u SET id = 0 RETURNING id'), 'ERROR 42501', 'uuid: upper-case cannot update');
SELECT is(h.rows('DELETE FROM u RETURNING id'), 'ERROR 42501', 'uuid: upper-case cannot delete');
RESET ROLE;
SET ROLE al_uh;
SELECT is(h.rows('SELECT id FROM u'), 'ERROR 42501', 'uuid: the hyphen-less spelling cannot read the canonical tenant''s row');
SELECT is(h.rows('UPDATE u SET id = 0 RETURNING id'), 'ERROR 42501', 'uuid: hyphen-less cannot update');
SELECT is(h.rows('DELETE FROM u RETURNING id'), 'ERROR 42501', 'uuid: hyphen-less cannot delete');
SELECT is(h.rows($$INSERT INTO u VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 5) RETURNING id$$), 'ERROR 42501', 'uuid: hyphen-less cannot insert as the canonical tenant');
RESET ROLE;
SET ROLE al_pool;
SELECT is(h.as_pool('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'SELECT id FROM u'), '(1)', 'uuid: switcher in the canonical tenant sees its row');
SELECT is(h.as_pool('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'SELECT id FROM u'), 'ERROR 42501', 'uuid: switcher in the upper-case spelling is refused');
SELECT is(h.as_pool('a0eebc999c0b4ef8bb6d6bb9bd380a11', 'DELETE FROM u RETURNING id'), 'ERROR 42501', 'uuid: switcher in the hyphen-less spelling cannot delete');
SELECT tenant_iso.reset_tenant();
RESET ROLE;

-- ---------------------------------------------------------------------
-- the tenant default of a protected table is the 0.2.0 form
-- ---------------------------------------------------------------------
SELECT matches((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
				 WHERE d.adrelid = 'long_v'::regclass AND d.adnum = 1),
	'tenant_iso\._tenant_default\(', 'the tenant default uses tenant_iso._tenant_default()');
SELECT tenant_iso.unprotect('long_v');
SELECT is((SELECT count(*)::int FROM pg_attrdef d WHERE d.adrelid = 'long_v'::regclass), 0,
	'unprotect() recognises and drops the new default');

SELECT * FROM finish();

RESET ROLE;
SET client_min_messages = error;
DROP TABLE ci_old, old_def, short_v, long_v, ci_t, ci_part, ci_late, i4, i8, u;
DROP COLLATION h.ci;
DO $$
DECLARE
	r text;
BEGIN
	PERFORM tenant_iso.revoke_switch('al_pool');
	FOREACH r IN ARRAY ARRAY['al_42', 'al_042', 'al_u', 'al_U', 'al_uh', 'al_ci', 'al_pool'] LOOP
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
DROP SCHEMA h CASCADE;
