-- test/pgtap/copy_tenant.sql
--
-- COPY FROM into a protected table by a member or a pool (issue 10, part 5:
-- the fast path).  cp_a is a member of tenant "cpa"; cp_pool a switcher.
-- Both may run programs and read server files here (test only), so that
-- COPY FROM PROGRAM can feed rows and binary files.  Every refused COPY
-- must leave the table as it was.
-- Roles are cluster-wide: prefix cp_, dropped at the start and the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['cp_a', 'cp_pool', 'cp_ro'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;

\ir include/h.sql
-- a COPY FROM PROGRAM that prints lines (tab-separated)
CREATE FUNCTION h.copy(target text, lines text[], extra text DEFAULT '') RETURNS text
LANGUAGE sql AS $f$
	SELECT h.run(format('COPY %s FROM PROGRAM %L %s', target,
						'printf ' || quote_literal(array_to_string(lines, E'\n') || E'\n'), extra))
$f$;
-- the rows of a table as one string (as the superuser: every tenant)
CREATE FUNCTION h.rows(t regclass) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	r text;
BEGIN
	EXECUTE format('SELECT coalesce(string_agg(tenant_id || ''/'' || id, '' '' ORDER BY tenant_id, id), ''none'') FROM %s', t)
		INTO r;
	RETURN r;
END
$f$;

CREATE ROLE cp_a;
CREATE ROLE cp_pool;
CREATE ROLE cp_ro;
GRANT pg_execute_server_program, pg_read_server_files TO cp_a, cp_pool;
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('cpa');
	PERFORM tenant_iso.create_tenant('cpb');
	PERFORM tenant_iso.add_member('cp_a', 'cpa');
	PERFORM tenant_iso.add_member('cp_ro', 'cpa');
	PERFORM tenant_iso.grant_switch('cp_pool');
END
$$;

CREATE TABLE cp_t (tenant_id text, id int, v text, PRIMARY KEY (tenant_id, id));
INSERT INTO cp_t VALUES ('cpb', 1, 'b');
DO $$ BEGIN PERFORM tenant_iso.protect('cp_t'); END $$;
GRANT SELECT, INSERT ON cp_t TO cp_a, cp_pool;
GRANT SELECT ON cp_t TO cp_ro;

-- the same, partitioned
CREATE TABLE cp_p (tenant_id text, id int, v text, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id);
CREATE TABLE cp_p_a PARTITION OF cp_p FOR VALUES IN ('cpa');
CREATE TABLE cp_p_b PARTITION OF cp_p FOR VALUES IN ('cpb');
DO $$ BEGIN PERFORM tenant_iso.protect('cp_p'); END $$;
GRANT SELECT, INSERT ON cp_p TO cp_a;

-- a table whose BEFORE ROW trigger moves rows to another tenant
CREATE TABLE cp_trg (tenant_id text, id int, v text, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION cp_move() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
	IF NEW.v = 'move' THEN
		NEW.tenant_id := 'cpb';
	END IF;
	RETURN NEW;
END
$f$;
CREATE TRIGGER cp_move BEFORE INSERT ON cp_trg FOR EACH ROW EXECUTE FUNCTION cp_move();
DO $$ BEGIN PERFORM tenant_iso.protect('cp_trg'); END $$;
GRANT SELECT, INSERT ON cp_trg TO cp_a;

-- a table with a policy of its own: only v <> 'no' may go in
CREATE TABLE cp_pol (tenant_id text, id int, v text, PRIMARY KEY (tenant_id, id));
DO $$ BEGIN PERFORM tenant_iso.protect('cp_pol'); END $$;
CREATE POLICY cp_pol_ins ON cp_pol AS RESTRICTIVE FOR INSERT WITH CHECK (v IS DISTINCT FROM 'no');
CREATE POLICY cp_pol_all ON cp_pol FOR ALL USING (true) WITH CHECK (true);
GRANT SELECT, INSERT ON cp_pol TO cp_a;

SELECT plan(27);

-- ---------------------------------------------------------------------
-- A member of cpa
-- ---------------------------------------------------------------------
SET ROLE cp_a;
SELECT is(h.copy('cp_t', ARRAY[E'cpb\t10\tx', E'cpa\t11\tx']), 'ERROR 42501',
	'member: a foreign row first -> 42501');
SELECT is(h.copy('cp_t', ARRAY[E'cpa\t10\tx', E'cpb\t11\tx', E'cpa\t12\tx']), 'ERROR 42501',
	'member: a foreign row in the middle -> 42501');
SELECT is(h.copy('cp_t', (SELECT array_agg(format(E'cpa\t%s\tx', i)) FROM generate_series(100, 2099) i)
						 || ARRAY[E'cpb\t5000\tx']), 'ERROR 42501',
	'member: a foreign row after 2000 own rows -> 42501');
SELECT is(h.copy('cp_t', ARRAY[E'\\N\t10\tx']), 'ERROR 42501',
	'member: a NULL tenant -> 42501');
SELECT is(h.copy('cp_t', ARRAY[E'CPA\t10\tx']), 'ERROR 42501',
	'member: the tenant id in another case -> 42501');
SELECT is(h.copy('cp_t', ARRAY['cpb,10,x'], 'WITH (FORMAT csv)'), 'ERROR 42501',
	'member: csv, a foreign row -> 42501');
SELECT is(h.copy('cp_t', ARRAY[E'cpb\t10\tx', E'cpa\t11\tx'], 'WHERE id > 10'), 'ok 1',
	'member: a foreign row that COPY''s own WHERE skips is not loaded, and not checked');
SELECT is(h.copy('cp_t', ARRAY[E'cpb\t20\tx'], 'WHERE id > 10'), 'ERROR 42501',
	'member: a foreign row that passes COPY''s WHERE -> 42501');
SELECT is(h.copy('cp_t (id, v)', ARRAY[E'30\tx', E'31\tx']), 'ok 2',
	'member: without the tenant column the default fills in cpa');
SELECT is(h.copy('cp_t (tenant_id, id)', ARRAY[E'cpa\t32', E'cpa\t33']), 'ok 2',
	'member: a column list with the tenant column');
SELECT is(h.copy('cp_t', ARRAY[E'cpa\t34\tx'], 'WITH (FORMAT csv, DELIMITER E''\t'')'), 'ok 1',
	'member: csv with a tab delimiter, own rows');
RESET ROLE;
SELECT is(h.rows('cp_t'), 'cpa/11 cpa/30 cpa/31 cpa/32 cpa/33 cpa/34 cpb/1',
	'member: only the accepted COPYs loaded, each row in cpa (cpb/1 was there before)');

-- binary
COPY (SELECT 'cpa'::text, 40, 'bin'::text UNION ALL SELECT 'cpa', 41, 'bin') TO '/tmp/tenant_iso_cp_own.bin' WITH (FORMAT binary);
COPY (SELECT 'cpa'::text, 42, 'bin'::text UNION ALL SELECT 'cpb', 43, 'bin') TO '/tmp/tenant_iso_cp_mix.bin' WITH (FORMAT binary);
SET ROLE cp_a;
SELECT is(h.run($$COPY cp_t FROM '/tmp/tenant_iso_cp_mix.bin' WITH (FORMAT binary)$$), 'ERROR 42501',
	'member: binary, a foreign row -> 42501');
SELECT is(h.run($$COPY cp_t FROM '/tmp/tenant_iso_cp_own.bin' WITH (FORMAT binary)$$), 'ok 2',
	'member: binary, own rows load');

-- a default that points at another tenant
RESET ROLE;
ALTER TABLE cp_t ALTER COLUMN tenant_id SET DEFAULT 'cpb';
SET ROLE cp_a;
SELECT is(h.copy('cp_t (id, v)', ARRAY[E'50\tx']), 'ERROR 42501',
	'member: a column default of another tenant -> 42501');
RESET ROLE;
ALTER TABLE cp_t ALTER COLUMN tenant_id SET DEFAULT tenant_iso._tenant_default(tenant_iso.current_tenant(), 'text'::regtype, -1);

-- partitioned
SET ROLE cp_a;
SELECT is(h.copy('cp_p', ARRAY[E'cpa\t1\tx', E'cpb\t2\tx']), 'ERROR 42501',
	'partitioned: a row for another tenant''s partition -> 42501');
SELECT is(h.copy('cp_p', ARRAY[E'cpa\t1\tx', E'cpa\t2\tx']), 'ok 2',
	'partitioned: own rows are routed and loaded');

-- a BEFORE ROW trigger that moves a row to another tenant
SELECT is(h.copy('cp_trg', ARRAY[E'cpa\t1\tok', E'cpa\t2\tmove']), 'ERROR 42501',
	'trigger: a row that a BEFORE ROW trigger moves to cpb -> 42501 (checked after the trigger)');
SELECT is(h.copy('cp_trg', ARRAY[E'cpa\t1\tok']), 'ok 1',
	'trigger: rows it leaves alone load');

-- a policy of the table's own
SELECT is(h.copy('cp_pol', ARRAY[E'cpa\t1\tno']), 'ERROR 42501',
	'own policy: a row its WITH CHECK refuses -> 42501');
SELECT is(h.copy('cp_pol', ARRAY[E'cpa\t1\tyes']), 'ok 1',
	'own policy: a row it accepts loads');
RESET ROLE;
SELECT is(h.rows('cp_p') || ' | ' || h.rows('cp_trg') || ' | ' || h.rows('cp_pol'),
	'cpa/1 cpa/2 | cpa/1 | cpa/1', 'partitioned, trigger, own policy: only the accepted rows are there');

-- ---------------------------------------------------------------------
-- The pool, and the rights COPY itself checks
-- ---------------------------------------------------------------------
SET ROLE cp_pool;
SELECT is(h.copy('cp_t', ARRAY[E'cpa\t60\tx']), 'ERROR 42501',
	'pool with no context: COPY FROM fails closed (42501)');
SELECT tenant_iso.set_tenant('cpb');
SELECT is(h.copy('cp_t', ARRAY[E'cpb\t60\tx', E'cpa\t61\tx']), 'ERROR 42501',
	'pool in cpb: a row of cpa -> 42501');
SELECT is(h.copy('cp_t', ARRAY[E'cpb\t60\tx', E'cpb\t61\tx']), 'ok 2',
	'pool in cpb: cpb rows load');
SELECT tenant_iso.reset_tenant();
RESET ROLE;
SET ROLE cp_ro;
SELECT is(h.run($$COPY cp_t FROM '/tmp/tenant_iso_cp_own.bin' WITH (FORMAT binary)$$), 'ERROR 42501',
	'a member without INSERT, and without pg_read_server_files: 42501');
RESET ROLE;
SET ROLE cp_a;
BEGIN READ ONLY;
SELECT is(h.run($$COPY cp_t FROM '/tmp/tenant_iso_cp_own.bin' WITH (FORMAT binary)$$), 'ERROR 25006',
	'member in a read-only transaction: 25006');
COMMIT;
RESET ROLE;

SELECT * FROM finish();

RESET ROLE;
SET client_min_messages = error;
DO $$
DECLARE
	r text;
BEGIN
	PERFORM tenant_iso.revoke_switch('cp_pool');
	PERFORM tenant_iso.remove_member('cp_a'::regrole);
	PERFORM tenant_iso.remove_member('cp_ro'::regrole);
	FOREACH r IN ARRAY ARRAY['cp_a', 'cp_pool', 'cp_ro'] LOOP
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
