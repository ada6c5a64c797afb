-- test/pgtap/attack_foreign_code.sql
--
-- Code owned by a member of one tenant never acts in another tenant's
-- context (issue 10, part 3).  fc_a is a member of tenant "fca" (the
-- attacker) and owns functions, a view with a rule, an operator, an
-- aggregate and a trigger, all usable by PUBLIC, plus fc_loot where they
-- drop what they capture.  fc_pool is the switcher role of a pool serving
-- "fcb" (the victim); fc_b is a member of fcb.  One psql session as the
-- superuser: SET ROLE acts as each role, RESET ROLE verifies.
-- Roles are cluster-wide: prefix fc_, dropped at the start and the end.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['fc_a', 'fc_b', 'fc_pool'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END
$$;

\ir include/h.sql

CREATE ROLE fc_a;
CREATE ROLE fc_b;
CREATE ROLE fc_pool;
DO $$
BEGIN
	PERFORM tenant_iso.create_tenant('fca');
	PERFORM tenant_iso.create_tenant('fcb');
	PERFORM tenant_iso.add_member('fc_a', 'fca');
	PERFORM tenant_iso.add_member('fc_b', 'fcb');
	PERFORM tenant_iso.grant_switch('fc_pool');
END
$$;

CREATE TABLE fc_orders (tenant_id text, id int, v text, PRIMARY KEY (tenant_id, id));
INSERT INTO fc_orders VALUES ('fca', 1, 'a-1'),
	('fcb', 1, 'b-secret-1'), ('fcb', 2, 'b-secret-2'), ('fcb', 3, 'b-secret-3');
DO $$ BEGIN PERFORM tenant_iso.protect('fc_orders'); END $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON fc_orders TO fc_a, fc_b, fc_pool;

CREATE SCHEMA fca_code AUTHORIZATION fc_a;
GRANT USAGE ON SCHEMA fca_code TO PUBLIC;

-- ---------------------------------------------------------------------
-- fc_a's code, all of it usable by PUBLIC
-- ---------------------------------------------------------------------
SET ROLE fc_a;
CREATE TABLE fca_code.fc_loot (src text, v text);
GRANT INSERT, SELECT ON fca_code.fc_loot TO PUBLIC;
-- SECURITY DEFINER: reads with fc_a's rights, whatever the caller's context
CREATE FUNCTION fca_code.sd_count() RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $f$ SELECT count(*) FROM public.fc_orders $f$;
CREATE FUNCTION fca_code.sd_values() RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $f$ SELECT string_agg(v, ',' ORDER BY v) FROM public.fc_orders $f$;
-- invoker function: runs as its caller, copies what it is given
CREATE FUNCTION fca_code.cap(v text) RETURNS boolean
LANGUAGE sql AS $f$ INSERT INTO fca_code.fc_loot VALUES ('function', v) RETURNING true $f$;
-- plpgsql invoker function that reads the caller's rows itself
CREATE FUNCTION fca_code.steal() RETURNS bigint
LANGUAGE plpgsql AS $f$
BEGIN
	INSERT INTO fca_code.fc_loot SELECT 'steal', v FROM public.fc_orders;
	RETURN (SELECT count(*) FROM public.fc_orders);
END
$f$;
-- an operator and an aggregate whose functions capture
CREATE FUNCTION fca_code.cap_eq(a int, b int) RETURNS boolean
LANGUAGE sql AS $f$ INSERT INTO fca_code.fc_loot VALUES ('operator', a::text) RETURNING a = b $f$;
CREATE OPERATOR fca_code.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = fca_code.cap_eq);
CREATE FUNCTION fca_code.cap_sfunc(s text, v text) RETURNS text
LANGUAGE sql AS $f$ INSERT INTO fca_code.fc_loot VALUES ('aggregate', v) RETURNING coalesce(s, '') || v $f$;
CREATE AGGREGATE fca_code.cap_agg(text) (SFUNC = fca_code.cap_sfunc, STYPE = text);
-- a view over the protected table, and a view whose rule copies what is
-- written to it, both with fc_a's rights
CREATE VIEW fca_code.orders_view AS SELECT * FROM public.fc_orders;
GRANT SELECT ON fca_code.orders_view TO PUBLIC;
CREATE VIEW fca_code.sink AS SELECT src, v FROM fca_code.fc_loot;
CREATE RULE sink_ins AS ON INSERT TO fca_code.sink DO INSTEAD
	INSERT INTO fca_code.fc_loot SELECT 'rule', o.v FROM public.fc_orders o;
GRANT INSERT, SELECT ON fca_code.sink TO PUBLIC;
-- a table of fc_a's with a trigger that copies each new row
CREATE TABLE fca_code.inbox (v text);
GRANT INSERT ON fca_code.inbox TO PUBLIC;
CREATE FUNCTION fca_code.trg() RETURNS trigger
LANGUAGE plpgsql AS $f$
BEGIN
	INSERT INTO fca_code.fc_loot VALUES ('trigger', NEW.v);
	RETURN NEW;
END
$f$;
CREATE TRIGGER inbox_trg BEFORE INSERT ON fca_code.inbox
	FOR EACH ROW EXECUTE FUNCTION fca_code.trg();
-- a domain whose check calls fc_a's function
CREATE DOMAIN fca_code.code AS text CHECK (fca_code.cap(VALUE));
RESET ROLE;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA fca_code TO PUBLIC;

SELECT plan(36);

-- ---------------------------------------------------------------------
-- The pool in fcb's context
-- ---------------------------------------------------------------------
SET ROLE fc_pool;
SELECT tenant_iso.set_tenant('fcb');
SELECT is(h.val('SELECT count(*) FROM fc_orders'), '3',
	'pool in fcb: control, the pool sees fcb''s 3 rows');
SELECT is(h.val('SELECT fca_code.sd_count()'), 'ERROR 42501',
	'pool in fcb: fc_a''s SECURITY DEFINER function -> 42501');
SELECT is(h.val('SELECT fca_code.sd_values()'), 'ERROR 42501',
	'pool in fcb: fc_a''s SECURITY DEFINER function returning values -> 42501');
SELECT is(h.val('SELECT count(*) FROM fc_orders WHERE fca_code.cap(v)'), 'ERROR 42501',
	'pool in fcb: fc_a''s invoker function in WHERE -> 42501');
SELECT is(h.val('SELECT fca_code.cap(v) FROM fc_orders LIMIT 1'), 'ERROR 42501',
	'pool in fcb: fc_a''s invoker function in the target list -> 42501');
SELECT is(h.val('SELECT fca_code.steal()'), 'ERROR 42501',
	'pool in fcb: fc_a''s plpgsql function that reads the caller''s rows -> 42501');
SELECT is(h.val('SELECT count(*) FROM fc_orders WHERE id OPERATOR(fca_code.===) 1'), 'ERROR 42501',
	'pool in fcb: fc_a''s operator -> 42501');
SELECT is(h.val('SELECT fca_code.cap_agg(v) FROM fc_orders'), 'ERROR 42501',
	'pool in fcb: fc_a''s aggregate -> 42501');
SELECT is(h.val('SELECT count(*) FROM fca_code.orders_view'), 'ERROR 42501',
	'pool in fcb: fc_a''s view over the protected table -> 42501');
SELECT is(h.val('INSERT INTO fca_code.sink VALUES (''x'', ''y'')'), 'ERROR 42501',
	'pool in fcb: INSERT into fc_a''s view whose rule copies fcb''s rows -> 42501');
SELECT is(h.val('INSERT INTO fca_code.inbox VALUES (''b-typed-secret'') RETURNING 1'), 'ERROR 42501',
	'pool in fcb: INSERT into fc_a''s table whose trigger copies the row -> 42501');
SELECT is(h.val('SELECT ''b-typed-secret''::fca_code.code'), 'ERROR 42501',
	'pool in fcb: a cast to fc_a''s domain whose check captures -> 42501');
SELECT is(h.val('SELECT count(*) FROM fc_orders WHERE v = ''b-secret-1'''), '1',
	'pool in fcb: builtin operators and functions are not affected');
SELECT ok(h.msg('SELECT fca_code.sd_count()') !~ 'fca|fcb|secret',
	'pool in fcb: the refusal names no tenant and no value');
SELECT ok(h.msg('SELECT count(*) FROM fca_code.orders_view') !~ 'fca|fcb|secret',
	'pool in fcb: the view refusal names no tenant and no value');
RESET ROLE;

-- fcb's own member
SET ROLE fc_b;
SELECT is(h.val('SELECT fca_code.sd_count()'), 'ERROR 42501',
	'member of fcb: fc_a''s SECURITY DEFINER function -> 42501');
SELECT is(h.val('SELECT count(*) FROM fc_orders WHERE fca_code.cap(v)'), 'ERROR 42501',
	'member of fcb: fc_a''s invoker function -> 42501');
SELECT is(h.val('SELECT count(*) FROM fca_code.orders_view'), 'ERROR 42501',
	'member of fcb: fc_a''s view -> 42501');
RESET ROLE;

-- a superuser in fcb's context is no exception
SELECT tenant_iso.set_tenant('fcb');
SELECT is(h.val('SELECT fca_code.sd_values()'), 'ERROR 42501',
	'superuser in fcb: fc_a''s SECURITY DEFINER function -> 42501');
SELECT is(h.val('SELECT fca_code.steal()'), 'ERROR 42501',
	'superuser in fcb: fc_a''s plpgsql function -> 42501');
SELECT tenant_iso.reset_tenant();

SELECT is((SELECT count(*) FROM fca_code.fc_loot), 0::bigint,
	'nothing of fcb reached fc_a''s loot table');

-- ---------------------------------------------------------------------
-- The owner's own tenant, and no context
-- ---------------------------------------------------------------------
SET ROLE fc_a;
SELECT is(h.val('SELECT fca_code.sd_values()'), 'a-1',
	'fc_a: its own SECURITY DEFINER function sees its own row only');
SELECT is(h.val('SELECT count(*) FROM fc_orders WHERE fca_code.cap(v)'), '1',
	'fc_a: its own invoker function works on its own row');
SELECT is(h.val('SELECT count(*) FROM fca_code.orders_view'), '1',
	'fc_a: its own view shows its own row');
RESET ROLE;
SET ROLE fc_pool;
SELECT tenant_iso.set_tenant('fca');
SELECT is(h.val('SELECT fca_code.sd_count()'), '1',
	'pool in fca: fc_a''s function runs for fca');
SELECT is(h.val('SELECT count(*) FROM fca_code.orders_view'), '1',
	'pool in fca: fc_a''s view runs for fca');
SELECT tenant_iso.reset_tenant();
SELECT is(h.val('SELECT fca_code.sd_values()'), 'a-1',
	'pool with no context: fc_a''s SECURITY DEFINER function acts for fca, and only fca');
SELECT is(h.val('SELECT tenant_iso.current_tenant()'), 'null',
	'pool with no context: ... and the pool is still in no context afterwards');
SELECT is(h.val('SELECT count(*) FROM fc_orders WHERE fca_code.cap(v)'), 'ERROR 42501',
	'pool with no context: fc_a''s invoker function sees no protected row (fails closed)');
RESET ROLE;
SELECT is((SELECT string_agg(src || ':' || v, ' ' ORDER BY src, v) FROM fca_code.fc_loot),
	'function:a-1',
	'fc_loot holds only what fc_a''s code was given inside fca');

-- ---------------------------------------------------------------------
-- SECURITY DEFINER owned by a member, from inside another context
-- ---------------------------------------------------------------------
SET ROLE fc_pool;
SELECT tenant_iso.set_tenant('fcb');
SELECT is(h.val('SELECT tenant_iso.current_tenant()'), 'fcb',
	'pool in fcb: control, current_tenant() is fcb');
RESET ROLE;
SET ROLE fc_a;
CREATE FUNCTION fca_code.whoami() RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $f$ SELECT coalesce(tenant_iso.current_tenant(), 'none') $f$;
RESET ROLE;
GRANT EXECUTE ON FUNCTION fca_code.whoami() TO PUBLIC;
SET ROLE fc_pool;
SELECT is(h.val('SELECT fca_code.whoami()'), 'ERROR 42501',
	'pool in fcb: a member-owned SECURITY DEFINER function cannot even ask for the context');
SELECT tenant_iso.reset_tenant();
SELECT is(h.val('SELECT fca_code.whoami()'), 'fca',
	'pool with no context: inside fc_a''s SECURITY DEFINER function the tenant is fca');
RESET ROLE;
-- fc_a's function cannot switch the caller's context
SET ROLE fc_a;
CREATE FUNCTION fca_code.switch_to(t text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $f$ SELECT tenant_iso.set_tenant(t) $f$;
RESET ROLE;
GRANT EXECUTE ON FUNCTION fca_code.switch_to(text) TO PUBLIC;
SET ROLE fc_pool;
SELECT is(h.val($$SELECT fca_code.switch_to('fcb')::text$$), 'ERROR 42501',
	'pool: fc_a''s SECURITY DEFINER function cannot switch to fcb');
RESET ROLE;

-- a function whose owner becomes a member of fca after it was first called
CREATE FUNCTION public.fc_late() RETURNS text LANGUAGE sql AS $f$ SELECT 'ran'::text $f$;
GRANT EXECUTE ON FUNCTION public.fc_late() TO PUBLIC;
SET ROLE fc_pool;
SELECT tenant_iso.set_tenant('fcb');
SELECT is(h.val('SELECT public.fc_late()'), 'ran',
	'pool in fcb: control, a function owned by the superuser runs');
RESET ROLE;
ALTER FUNCTION public.fc_late() OWNER TO fc_a;
SET ROLE fc_pool;
SELECT is(h.val('SELECT public.fc_late()'), 'ERROR 42501',
	'pool in fcb: once its owner is fc_a it is refused (the cached answer is dropped)');
SELECT tenant_iso.reset_tenant();
RESET ROLE;

SELECT * FROM finish();

RESET ROLE;
SET client_min_messages = error;
DO $$
DECLARE
	r text;
BEGIN
	PERFORM tenant_iso.reset_tenant();
	PERFORM tenant_iso.revoke_switch('fc_pool');
	FOREACH r IN ARRAY ARRAY['fc_a', 'fc_b'] LOOP
		PERFORM tenant_iso.remove_member(r::regrole);
	END LOOP;
	FOREACH r IN ARRAY ARRAY['fc_a', 'fc_b', 'fc_pool'] LOOP
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
