-- test/pgtap/attack_elevated.sql
--
-- Raised rights (THREATS.md class 10): the first data key of a tenant is
-- created, and rotate_tenant_key() stores a new one, through SPI as the key
-- table's owner (a superuser).  A hostile member puts shadows of every
-- function and operator that SQL uses in a schema first in its search_path
-- (and in a PUBLIC-writable public, as in databases upgraded from PG 14).
-- Each shadow records current_user and tries to make the attacker
-- superuser.  No shadow may run, and the path must still do its job.
--
-- Paths covered: the first data key, rotate_tenant_key(), rewrap_keys(),
-- shred_tenant(), track(), verify(), compact_digests(), untrack(),
-- protect(), unprotect(), validate(), baseline_save(), drift(), reencrypt()
-- (its background worker runs as the table's owner with the database's
-- default search_path, made hostile here), and diff_peer() /
-- repair_from_peer() against a loopback peer (this database, through
-- 127.0.0.1): the peer's session gets the hostile database default and a
-- hostile options= in the conninfo, and must still not see a shadow.
-- The table owner's own PL/pgSQL that runs inside a path (a row trigger, a
-- domain CHECK) names built-ins without a schema, as much PL/pgSQL does, so
-- it makes a missing search_path pin visible even where the path's own SQL
-- is qualified.  Finally the catalog: every SECURITY DEFINER function of the
-- extension carries SET search_path = pg_catalog, pg_temp.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ae_evil') THEN
		EXECUTE 'DROP OWNED BY ae_evil CASCADE';
		EXECUTE 'DROP ROLE ae_evil';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ae_owner') THEN
		EXECUTE 'DROP OWNED BY ae_owner CASCADE';
		EXECUTE 'DROP ROLE ae_owner';
	END IF;
	EXECUTE format('ALTER DATABASE %I RESET search_path', current_database());
END
$$;
CREATE EXTENSION IF NOT EXISTS dblink;

SELECT plan(41);

CREATE ROLE ae_evil;
SELECT tenant_iso.create_tenant('ae_t');
SELECT tenant_iso.add_member('ae_evil', 'ae_t');
GRANT CREATE ON SCHEMA public TO PUBLIC;
CREATE SCHEMA ae_shadow AUTHORIZATION ae_evil;
CREATE TABLE public.ae_log (who text, fn text);
GRANT INSERT, SELECT ON public.ae_log TO PUBLIC;

SET ROLE ae_evil;
-- shadows in the attacker's own schema (and now() in public too)
CREATE FUNCTION ae_shadow.ae_trap(fn text) RETURNS void LANGUAGE plpgsql AS $b$
BEGIN
	INSERT INTO public.ae_log VALUES (current_user, fn);
	BEGIN
		EXECUTE 'ALTER ROLE ae_evil SUPERUSER';
	EXCEPTION WHEN OTHERS THEN NULL;
	END;
END $b$;
CREATE FUNCTION ae_shadow.ae_larger(int, int) RETURNS int LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('max'); RETURN pg_catalog.int4larger($1, $2); END $b$;
CREATE AGGREGATE ae_shadow.max(int) (sfunc = ae_shadow.ae_larger, stype = int);
CREATE FUNCTION ae_shadow.now() RETURNS timestamptz LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('now'); RETURN pg_catalog.now(); END $b$;
CREATE FUNCTION ae_shadow.ae_texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('text ='); RETURN pg_catalog.texteq($1, $2); END $b$;
CREATE OPERATOR ae_shadow.= (LEFTARG = text, RIGHTARG = text, FUNCTION = ae_shadow.ae_texteq);
CREATE FUNCTION ae_shadow.ae_int4eq(int, int) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('int ='); RETURN pg_catalog.int4eq($1, $2); END $b$;
CREATE OPERATOR ae_shadow.= (LEFTARG = int, RIGHTARG = int, FUNCTION = ae_shadow.ae_int4eq);
CREATE FUNCTION ae_shadow.ae_int4pl(int, int) RETURNS int LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('int +'); RETURN pg_catalog.int4pl($1, $2); END $b$;
CREATE OPERATOR ae_shadow.+ (LEFTARG = int, RIGHTARG = int, FUNCTION = ae_shadow.ae_int4pl);
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('public.now'); RETURN pg_catalog.now(); END $b$;

-- the shadows work when called directly (positive control for the traps)
SET search_path = ae_shadow, pg_catalog, public;
SELECT is((SELECT 'a'::text = 'a'::text), true, 'the shadow = operator is live for the attacker');
SELECT ok((SELECT count(*) FROM public.ae_log WHERE who = 'ae_evil') >= 1,
	'a shadow records its caller when it runs');
RESET ROLE;
DELETE FROM public.ae_log;
SET ROLE ae_evil;

-- elevated path 1: the first data key of a brand-new tenant.  The
-- statement runs under the hostile search_path; the assertions run after
-- it is reset (pgTAP's own functions resolve names through search_path).
CREATE TABLE public.ae_out (step text, val text);
GRANT INSERT, SELECT ON public.ae_out TO PUBLIC;
INSERT INTO public.ae_out SELECT 'first', pg_catalog.encode(tenant_iso.encrypt('hello'::text), 'base64');
RESET search_path;
SELECT is((SELECT tenant_iso.decrypt_text(pg_catalog.decode(val, 'base64')) FROM public.ae_out WHERE step = 'first'),
	'hello', 'the member''s first encrypt() under the hostile search_path created a working key');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM public.ae_log), 0,
	'no shadow ran while the first data key was created as the key table''s owner');

-- elevated path 2: rotate_tenant_key() by a careless administrator whose
-- search_path puts the tenant-writable schemas first
SET search_path = ae_shadow, public, pg_catalog;
INSERT INTO public.ae_out SELECT 'rotate', tenant_iso.rotate_tenant_key('ae_t')::text;
RESET search_path;
SELECT is((SELECT val FROM public.ae_out WHERE step = 'rotate'), '2', 'rotate_tenant_key() stored version 2');
SELECT is((SELECT count(*)::int FROM public.ae_log), 0,
	'no shadow ran during rotate_tenant_key()');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'ae_evil'), false,
	'the attacker did not become superuser');

-- =====================================================================
-- The other elevated paths.  More shadows first: every operator and
-- function those paths use that SQL lets one shadow (coalesce, IS DISTINCT
-- FROM and the like are syntax, not names), and domains named like the
-- types their casts name, whose CHECK runs a trap.
-- =====================================================================
SET ROLE ae_evil;
RESET search_path;
-- the reencrypt worker and the peer's session run as other roles
GRANT USAGE ON SCHEMA ae_shadow TO PUBLIC;
-- operators: (operator, argument type, result type, function it wraps)
DO $d$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT * FROM (VALUES
		('<>', 'text', 'boolean', 'textne'), ('=', 'oid', 'boolean', 'oideq'),
		('=', 'regclass', 'boolean', 'oideq'), ('=', 'tid', 'boolean', 'tideq'),
		('=', 'name', 'boolean', 'nameeq'), ('=', 'bigint', 'boolean', 'int8eq'),
		('<>', 'bigint', 'boolean', 'int8ne'), ('=', 'bytea', 'boolean', 'byteaeq'),
		('<>', 'bytea', 'boolean', 'byteane'), ('||', 'text', 'text', 'textcat')) v(op, arg, res, fn)
	LOOP
		EXECUTE format('CREATE FUNCTION ae_shadow.%I(%s, %s) RETURNS %s LANGUAGE plpgsql AS $b$ '
					   'BEGIN PERFORM ae_shadow.ae_trap(%L); RETURN pg_catalog.%I($1, $2); END $b$',
					   'ae_' || r.fn || '_' || r.arg, r.arg, r.arg, r.res, r.arg || ' ' || r.op, r.fn);
		EXECUTE format('CREATE OPERATOR ae_shadow.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = ae_shadow.%I)',
					   r.op, r.arg, r.arg, 'ae_' || r.fn || '_' || r.arg);
	END LOOP;
	-- functions: (schema, name, arguments, result, the call it wraps)
	FOR r IN SELECT * FROM (VALUES
		('ae_shadow', 'lower', 'text', 'text', 'pg_catalog.lower($1)'),
		('ae_shadow', 'upper', 'text', 'text', 'pg_catalog.upper($1)'),
		('ae_shadow', 'length', 'text', 'int', 'pg_catalog.length($1)'),
		('ae_shadow', 'repeat', 'text, int', 'text', 'pg_catalog.repeat($1, $2)'),
		('ae_shadow', 'encode', 'bytea, text', 'text', 'pg_catalog.encode($1, $2)'),
		('ae_shadow', 'decode', 'text, text', 'bytea', 'pg_catalog.decode($1, $2)'),
		('ae_shadow', 'digest', 'bytea, text', 'bytea', 'pg_catalog.sha256($1)'),
		('ae_shadow', 'digest', 'text, text', 'bytea', 'pg_catalog.sha256(pg_catalog.convert_to($1, ''UTF8''))'),
		('ae_shadow', 'sha256', 'bytea', 'bytea', 'pg_catalog.sha256($1)'),
		('ae_shadow', 'current_setting', 'text', 'text', 'pg_catalog.current_setting($1)'),
		('ae_shadow', 'to_jsonb', 'anyelement', 'jsonb', 'pg_catalog.to_jsonb($1)'),
		('ae_shadow', 'jsonb_populate_record', 'anyelement, jsonb', 'anyelement',
		 'pg_catalog.jsonb_populate_record($1, $2)'),
		('ae_shadow', 'pg_has_role', 'oid, oid, text', 'boolean', 'pg_catalog.pg_has_role($1, $2, $3)'),
		-- copies in public, exact signatures only (they win wherever public
		-- comes before pg_catalog; a looser one would catch this file's SQL)
		('public', 'lower', 'text', 'text', 'pg_catalog.lower($1)'),
		('public', 'encode', 'bytea, text', 'text', 'pg_catalog.encode($1, $2)'),
		('public', 'to_jsonb', 'anyelement', 'jsonb', 'pg_catalog.to_jsonb($1)')) v(nsp, name, args, res, body)
	LOOP
		EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql AS $b$ '
					   'BEGIN PERFORM ae_shadow.ae_trap(%L); RETURN %s; END $b$',
					   r.nsp, r.name, r.args, r.res, r.nsp || '.' || r.name, r.body);
	END LOOP;
END
$d$;
CREATE FUNCTION public.ae_textne(text, text) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('public text <>'); RETURN pg_catalog.textne($1, $2); END $b$;
CREATE OPERATOR public.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = public.ae_textne);
CREATE FUNCTION ae_shadow.ae_count(bigint) RETURNS bigint LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('count'); RETURN pg_catalog.int8inc($1); END $b$;
CREATE AGGREGATE ae_shadow.count(*) (sfunc = ae_shadow.ae_count, stype = bigint, initcond = '0');
CREATE FUNCTION ae_shadow.ae_sum(numeric, bigint) RETURNS numeric LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap('sum'); RETURN pg_catalog.numeric_add(coalesce($1, 0), $2::numeric); END $b$;
CREATE AGGREGATE ae_shadow.sum(bigint) (sfunc = ae_shadow.ae_sum, stype = numeric);
CREATE FUNCTION ae_shadow.ae_chk(v anyelement) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN PERFORM ae_shadow.ae_trap(pg_catalog.textcat('cast ', pg_catalog.pg_typeof(v)::pg_catalog.text)); RETURN true; END $b$;
CREATE DOMAIN ae_shadow.text AS pg_catalog.text CHECK (ae_shadow.ae_chk(VALUE));
CREATE DOMAIN ae_shadow.jsonb AS pg_catalog.jsonb CHECK (ae_shadow.ae_chk(VALUE));
CREATE DOMAIN ae_shadow.oid AS pg_catalog.oid CHECK (ae_shadow.ae_chk(VALUE));
CREATE DOMAIN ae_shadow.int4 AS pg_catalog.int4 CHECK (ae_shadow.ae_chk(VALUE));
CREATE AGGREGATE public.count(*) (sfunc = ae_shadow.ae_count, stype = bigint, initcond = '0');
RESET ROLE;

-- Code of the table owner that runs inside the paths and, like much
-- PL/pgSQL, names built-ins without a schema: a domain CHECK (run when a
-- value is read into a record: repair_from_peer() on both sides) and a row
-- trigger (repair's DELETE and INSERT, the reencrypt worker's UPDATE).
CREATE FUNCTION public.ae_check(v int) RETURNS boolean LANGUAGE plpgsql AS $b$
	BEGIN RETURN lower('K') = 'k' AND v > 0; END $b$;
CREATE DOMAIN public.ae_key AS int CHECK (public.ae_check(VALUE));
CREATE FUNCTION public.ae_audit() RETURNS trigger LANGUAGE plpgsql AS $b$
	BEGIN PERFORM lower('row'); RETURN NULL; END $b$;
GRANT EXECUTE ON FUNCTION public.ae_check(int), public.ae_audit() TO PUBLIC;

CREATE TABLE public.ae_r (tenant_id text NOT NULL, id public.ae_key NOT NULL, v text,
						  PRIMARY KEY (tenant_id, id));
CREATE TRIGGER ae_r_audit AFTER INSERT OR UPDATE OR DELETE ON public.ae_r
	FOR EACH ROW EXECUTE FUNCTION public.ae_audit();
INSERT INTO public.ae_r SELECT 'ae_t', i, 'v' || i FROM generate_series(1, 6) i;
CREATE TABLE public.ae_p (tenant_id text NOT NULL, id int PRIMARY KEY);

-- reencrypt(): a table owned by a plain role, values under version 2
CREATE ROLE ae_owner;
CREATE TABLE public.ae_enc (tenant_id text NOT NULL, id int NOT NULL, secret bytea,
							PRIMARY KEY (tenant_id, id));
ALTER TABLE public.ae_enc OWNER TO ae_owner;
SELECT tenant_iso.protect('public.ae_enc') \g /dev/null
CREATE TRIGGER ae_enc_audit AFTER UPDATE ON public.ae_enc
	FOR EACH ROW EXECUTE FUNCTION public.ae_audit();
GRANT SELECT, INSERT ON public.ae_enc TO ae_evil;
SET ROLE ae_evil;
INSERT INTO public.ae_enc (id, secret) SELECT g, tenant_iso.encrypt('s' || g, 'ae') FROM generate_series(1, 4) g;
RESET ROLE;
SELECT tenant_iso.rotate_tenant_key('ae_t') \g /dev/null

-- shred_tenant(): a second tenant with two key versions
SELECT tenant_iso.create_tenant('ae_s') \g /dev/null
SELECT tenant_iso.rotate_tenant_key('ae_s') \g /dev/null
SELECT tenant_iso.rotate_tenant_key('ae_s') \g /dev/null

-- positive controls: the new shadows and the owner's code do run under the
-- hostile search_path (as the attacker, who gains nothing from it)
SET ROLE ae_evil;
SET search_path = ae_shadow, public, pg_catalog;
SELECT lower('X'), public.ae_check(1), '{}'::jsonb, count(*) FROM (VALUES (1)) v \g /dev/null
RESET search_path;
SELECT is((SELECT array_agg(DISTINCT fn ORDER BY fn) FROM public.ae_log),
	ARRAY['ae_shadow.lower', 'cast pg_catalog.jsonb', 'count', 'text ='],
	'the new shadows (lower, count, a cast to a shadow domain) and the owner''s unqualified code are live');
RESET ROLE;
DELETE FROM public.ae_log;

-- new sessions of this database (the reencrypt worker, the loopback peer)
-- start with the hostile search_path
DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I SET search_path = ae_shadow, public, pg_catalog', current_database());
END $$;
SELECT format('host=127.0.0.1 port=%s dbname=%s user=postgres sslmode=disable', current_setting('port'), current_database()) AS ae_peer \gset
SELECT is((SELECT sp FROM dblink(:'ae_peer', 'SELECT pg_catalog.current_setting(''search_path'')') AS x(sp text)),
	'ae_shadow, public, pg_catalog', 'a new session of this database starts with the hostile search_path');
-- the caller's own options= asks for the hostile path too; ours must win
SELECT :'ae_peer' || ' options=''-csearch_path=ae_shadow,public,pg_catalog -cstatement_timeout=600000''' AS ae_peer_hostile \gset

-- every path below runs as an administrator (superuser) whose search_path
-- puts the tenant-writable schemas first; the statements themselves are
-- qualified, so only the paths can reach a shadow
DELETE FROM public.ae_out;
SET search_path = ae_shadow, public, pg_catalog;
INSERT INTO public.ae_out SELECT 'rewrap', tenant_iso.rewrap_keys()::pg_catalog.text;
INSERT INTO public.ae_out SELECT 'shred', tenant_iso.shred_tenant('ae_s')::pg_catalog.text;
INSERT INTO public.ae_out SELECT 'track', tenant_iso.track('public.ae_r'::pg_catalog.regclass)::pg_catalog.text;
-- track()'s SET clause pins its call of _rebuild_digests(); called directly
-- (a superuser may), the C function must pin for itself
INSERT INTO public.ae_out SELECT 'rebuild',
	(tenant_iso._rebuild_digests('public.ae_r'::pg_catalog.regclass) OPERATOR(pg_catalog.>) 0)::pg_catalog.text;
INSERT INTO public.ae_out SELECT 'verify', pg_catalog.string_agg(v.ok::pg_catalog.text, ',')
	FROM tenant_iso.verify('public.ae_r'::pg_catalog.regclass) v;
INSERT INTO public.ae_out SELECT 'compact', (tenant_iso.compact_digests() OPERATOR(pg_catalog.>=) 0)::pg_catalog.text;
INSERT INTO public.ae_out SELECT 'protect', tenant_iso.protect('public.ae_p'::pg_catalog.regclass)::pg_catalog.text;
INSERT INTO public.ae_out SELECT 'protected', pg_catalog.count(*)::pg_catalog.text
	FROM tenant_iso.protected p WHERE p.rel OPERATOR(pg_catalog.=) 'public.ae_p'::pg_catalog.regclass;
INSERT INTO public.ae_out SELECT 'unprotect', tenant_iso.unprotect('public.ae_p'::pg_catalog.regclass)::pg_catalog.text;
INSERT INTO public.ae_out SELECT 'unprotected', pg_catalog.count(*)::pg_catalog.text
	FROM tenant_iso.protected p WHERE p.rel OPERATOR(pg_catalog.=) 'public.ae_p'::pg_catalog.regclass;
INSERT INTO public.ae_out SELECT 'validate', (pg_catalog.count(*) OPERATOR(pg_catalog.>) 0)::pg_catalog.text
	FROM tenant_iso.validate();
INSERT INTO public.ae_out SELECT 'baseline', tenant_iso.baseline_save('ae')::pg_catalog.text;
INSERT INTO public.ae_out SELECT 'drift', pg_catalog.count(*)::pg_catalog.text FROM tenant_iso.drift('ae');
INSERT INTO public.ae_out SELECT 'reencrypt',
	tenant_iso.reencrypt('public.ae_enc'::pg_catalog.regclass, 'secret', 'ae', 2)::pg_catalog.text;
-- the sql_drop event trigger (_on_drop, SECURITY DEFINER) runs here
DROP TABLE public.ae_p;
RESET search_path;

SELECT is((SELECT count(*)::int FROM public.ae_log), 0,
	'no shadow ran during rewrap, shred, track, _rebuild_digests, verify, compact, protect, unprotect, validate, baseline_save, drift, reencrypt, DROP TABLE');
SELECT is((SELECT array_agg(DISTINCT who ORDER BY who) FROM public.ae_log), NULL,
	'no role (administrator, table owner in the worker) ran a shadow');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'rewrap'), '0', 'rewrap_keys() ran (nothing under a previous master key)');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'shred'), '2', 'shred_tenant() destroyed both keys of ae_s');
SELECT is((SELECT count(*)::int FROM tenant_iso.data_keys WHERE tenant_id = 'ae_s' AND state <> 'destroyed'), 0,
	'no key of ae_s is left');
SELECT is((SELECT count(*)::int FROM tenant_iso.tracked WHERE rel = 'public.ae_r'::regclass), 1, 'track() registered ae_r');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'rebuild'), 'true', '_rebuild_digests() rebuilt ae_r''s digests');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'verify'), 'true', 'verify() ran and found ae_r clean');
SELECT is((SELECT count(*)::int FROM tenant_iso.verify_runs WHERE relname = 'public.ae_r' AND ok), 1,
	'verify() recorded its run');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'compact'), 'true', 'compact_digests() ran');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'protected')
		|| (SELECT val FROM public.ae_out WHERE step = 'unprotected'),
	'10', 'protect() protected ae_p, then unprotect() released it');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'validate'), 'true', 'validate() ran and reported findings');
SELECT ok((SELECT count(*) FROM tenant_iso.baselines WHERE name = 'ae') > 0, 'baseline_save() stored baseline ae');
SELECT ok((SELECT val FROM public.ae_out WHERE step = 'drift') IS NOT NULL, 'drift() ran');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'reencrypt'), '4',
	'reencrypt() rewrote the 4 values under the old version, its trigger firing in the worker');
SELECT is((SELECT array_agg(DISTINCT tenant_iso.key_version(secret)) FROM public.ae_enc), ARRAY[3::bigint],
	'every value of ae_enc is under the active version 3');

-- diff_peer() / repair_from_peer() against this very database: the peer's
-- session sees only committed rows, so uncommitted local changes are the
-- divergence.  Its session starts with the hostile database default, and
-- the caller's conninfo asks for the hostile path as well.
DELETE FROM public.ae_log;
DELETE FROM public.ae_out;
BEGIN;
UPDATE public.ae_r SET v = 'local' WHERE id = 2;
DELETE FROM public.ae_r WHERE id = 3;
INSERT INTO public.ae_r VALUES ('ae_t', 9, 'local only');
SET LOCAL search_path = ae_shadow, public, pg_catalog;
INSERT INTO public.ae_out SELECT 'diff', pg_catalog.string_agg(pg_catalog.concat_ws(' ', d.key, d.status), ', ' ORDER BY d.key)
	FROM tenant_iso.diff_peer('public.ae_r'::pg_catalog.regclass, :'ae_peer_hostile') d;
INSERT INTO public.ae_out SELECT 'dry', pg_catalog.count(*)::pg_catalog.text
	FROM tenant_iso.repair_from_peer('public.ae_r'::pg_catalog.regclass, :'ae_peer_hostile', NULL, true);
INSERT INTO public.ae_out SELECT 'repair', pg_catalog.string_agg(pg_catalog.concat_ws(' ', d.key, d.action), ', ' ORDER BY d.key)
	FROM tenant_iso.repair_from_peer('public.ae_r'::pg_catalog.regclass, :'ae_peer_hostile', NULL, false) d;
INSERT INTO public.ae_out SELECT 'after', pg_catalog.count(*)::pg_catalog.text
	FROM tenant_iso.diff_peer('public.ae_r'::pg_catalog.regclass, :'ae_peer') d;
COMMIT;
RESET search_path;

SELECT is((SELECT val FROM public.ae_out WHERE step = 'diff'),
	'{"id": 2, "tenant_id": "ae_t"} differs, {"id": 3, "tenant_id": "ae_t"} missing_here, {"id": 9, "tenant_id": "ae_t"} missing_on_peer',
	'diff_peer() through a loopback peer found the three local changes');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'dry'), '3', 'repair_from_peer(dry_run) reported three actions');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'repair'),
	'{"id": 2, "tenant_id": "ae_t"} updated, {"id": 3, "tenant_id": "ae_t"} inserted, {"id": 9, "tenant_id": "ae_t"} deleted',
	'repair_from_peer() repaired the three rows from the peer');
SELECT is((SELECT val FROM public.ae_out WHERE step = 'after'), '0', 'afterwards diff_peer() finds nothing');
SELECT is((SELECT string_agg(id || ':' || v, ' ' ORDER BY id) FROM public.ae_r), '1:v1 2:v2 3:v3 4:v4 5:v5 6:v6',
	'ae_r holds the peer''s rows again');
SELECT is((SELECT count(*)::int FROM public.ae_log), 0,
	'no shadow ran in diff_peer()/repair_from_peer(): locally (SPI, trigger, domain check) or in the peer''s session');

-- A key whose equality operator lives outside pg_catalog (citext's, in
-- public): repair compares it with that operator, named with its schema,
-- not with whatever "=" a search_path would give.  The conninfo is a URI
-- this time, its own options= hostile as well.  The columns are named like
-- the aliases of repair's SQL (k, t), which must not take them for rows.
CREATE EXTENSION IF NOT EXISTS citext SCHEMA public;
CREATE TABLE public.ae_ci (k public.citext PRIMARY KEY, t text);
INSERT INTO public.ae_ci VALUES ('Alpha', 'a'), ('Beta', 'b');
SELECT tenant_iso.track('public.ae_ci') \g /dev/null
SELECT format('postgresql://postgres@127.0.0.1:%s/%s?options=-csearch_path%%3Dae_shadow%%2Cpublic%%2Cpg_catalog&sslmode=disable',
			  current_setting('port'), current_database()) AS ae_peer_uri \gset
BEGIN;
UPDATE public.ae_ci SET t = 'local' WHERE k = 'alpha';
SET LOCAL search_path = ae_shadow, public, pg_catalog;
INSERT INTO public.ae_out SELECT 'ci', pg_catalog.string_agg(pg_catalog.concat_ws(' ', d.key, d.action), ', ')
	FROM tenant_iso.repair_from_peer('public.ae_ci'::pg_catalog.regclass, :'ae_peer_uri', NULL, false) d;
COMMIT;
RESET search_path;
SELECT is((SELECT val FROM public.ae_out WHERE step = 'ci') || ' / ' || (SELECT string_agg(k || ':' || t, ' ' ORDER BY k) FROM public.ae_ci),
	'{"k": "Alpha"} updated / Alpha:a Beta:b',
	'repair_from_peer() on a citext key (URI conninfo) matched the row with citext''s own = and restored it');
SELECT is((SELECT count(*)::int FROM public.ae_log), 0, 'no shadow ran during the citext repair');

-- the caller's own options= is kept beside ours: a bad value in it is what
-- the peer refuses
CREATE FUNCTION pg_temp.ae_err(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
	m text;
	d text;
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
	RETURN m || ' | ' || d;
END
$f$;
SELECT matches(pg_temp.ae_err(format('SELECT * FROM tenant_iso.diff_peer(%L, %L)', 'public.ae_r',
									 :'ae_peer' || ' options=''-cwork_mem=ae_bogus''')),
	'^could not connect to the peer \| .*"work_mem"',
	'the options= of the caller''s conninfo reaches the peer, merged with ours');

-- untrack() last, still under the hostile path
DELETE FROM public.ae_log;
SET search_path = ae_shadow, public, pg_catalog;
INSERT INTO public.ae_out SELECT 'untrack', tenant_iso.untrack('public.ae_r'::pg_catalog.regclass)::pg_catalog.text;
RESET search_path;
SELECT is((SELECT count(*)::int FROM tenant_iso.tracked WHERE rel = 'public.ae_r'::regclass)
		+ (SELECT count(*)::int FROM tenant_iso.digests WHERE relname = 'public.ae_r'), 0,
	'untrack() dropped ae_r and its digests');
SELECT is((SELECT count(*)::int FROM public.ae_log), 0, 'no shadow ran during untrack()');

SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'ae_evil'), false,
	'after every path, the attacker is still not superuser');
SELECT is((SELECT rolsuper OR rolbypassrls OR rolcreaterole FROM pg_roles WHERE rolname = 'ae_owner'), false,
	'the table owner the reencrypt worker ran as gained nothing either');

-- the catalog: no SECURITY DEFINER function of the extension runs under
-- its caller's search_path
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1)
			 FROM pg_proc p
			 JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
			 JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'tenant_iso'
			WHERE p.prosecdef
			  AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)),
	NULL, 'every SECURITY DEFINER function of tenant_iso has SET search_path = pg_catalog, pg_temp');
SELECT ok((SELECT count(*) FROM pg_proc p
			 JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
			 JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'tenant_iso'
			WHERE p.prosecdef) >= 15, 'the check saw the extension''s SECURITY DEFINER functions');

-- nor does any of its SQL and PL/pgSQL functions: an administrator calls
-- them directly too (track(), compact_digests(), ...), with the rights that
-- a shadow would borrow
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1)
			 FROM pg_proc p
			 JOIN pg_language l ON l.oid = p.prolang AND l.lanname IN ('sql', 'plpgsql')
			 JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
			 JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'tenant_iso'
			WHERE NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)),
	NULL, 'every SQL and PL/pgSQL function of tenant_iso has SET search_path = pg_catalog, pg_temp');

SELECT * FROM finish();

DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I RESET search_path', current_database());
END $$;
DROP TABLE public.ae_r, public.ae_enc, public.ae_ci;
DROP EXTENSION citext;
DROP DOMAIN public.ae_key;
DROP FUNCTION public.ae_check(int), public.ae_audit();
DELETE FROM tenant_iso.baselines WHERE name = 'ae';
DELETE FROM tenant_iso.verify_runs WHERE relname = 'public.ae_r';
DROP OWNED BY ae_evil CASCADE;
DROP TABLE public.ae_log;
SELECT tenant_iso.remove_member('ae_evil');
DROP ROLE ae_evil;
DROP OWNED BY ae_owner CASCADE;
DROP ROLE ae_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DELETE FROM tenant_iso.data_keys WHERE tenant_id IN ('ae_t', 'ae_s');
DELETE FROM tenant_iso.tenants WHERE tenant_id IN ('ae_t', 'ae_s');
