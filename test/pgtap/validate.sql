-- test/pgtap/validate.sql
--
-- Architecture validation: validate() (every check, planted and absent),
-- allow_connection() / disallow_connection() / allowed_connections,
-- baseline_save() and drift(), privileges, and "a database set up as the
-- README recommends reports nothing at high or critical".
--
-- A check is matched on (check_id, object); h.sev() gives the severities
-- found for it, or 'none'.  Roles start with val_ and are dropped at the end;
-- so are the replication slot and the subscription planted for check
-- unapproved_connection.  The positive case of check switcher_without_tls
-- needs a pg_hba.conf rule that admits every role over TCP without TLS
-- (scripts/test's server has "host all all 127.0.0.1/32 trust"); without
-- one it is skipped.  The master key is not settable per session, so
-- "master key not loadable" is covered by test/cluster/t_validate_cron.sh.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

-- leftovers of an earlier, interrupted run
DO $$
DECLARE
	r text;
BEGIN
	IF EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'val_slot') THEN
		PERFORM pg_drop_replication_slot('val_slot');
	END IF;
	FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'val\_%' LOOP
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;

CREATE SCHEMA h;

-- validate() findings, refreshed by h.refresh()
CREATE TABLE h.v AS SELECT * FROM tenant_iso.validate() WITH NO DATA;
CREATE FUNCTION h.refresh() RETURNS void LANGUAGE sql AS $f$
	DELETE FROM h.v;
	INSERT INTO h.v SELECT * FROM tenant_iso.validate();
$f$;
-- severities of the findings of one check for one object, or 'none'
CREATE FUNCTION h.sev(check_id text, object text) RETURNS text LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(DISTINCT v.severity, ',' ORDER BY v.severity), 'none')
	  FROM h.v WHERE v.check_id = sev.check_id AND v.object = sev.object
$f$;
-- number of findings of one check for objects matching a LIKE pattern
CREATE FUNCTION h.n(check_id text, pattern text) RETURNS bigint LANGUAGE sql AS $f$
	SELECT count(*) FROM h.v WHERE v.check_id = n.check_id AND v.object LIKE n.pattern
$f$;
-- the findings at high or critical, as text (for diagnostics)
CREATE FUNCTION h.serious() RETURNS text LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(format('%s %s %s: %s', severity, check_id, object, detail), E'\n'), 'none')
	  FROM tenant_iso.validate() WHERE severity IN ('critical', 'high')
$f$;
-- drift() as sorted 'change object_type object' lines
CREATE FUNCTION h.drift(name text) RETURNS text LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(format('%s %s %s', change, object_type, object), E'\n'
							   ORDER BY object_type, object, change), 'none')
	  FROM tenant_iso.drift(name)
$f$;

SELECT plan(114);

-- =====================================================================
-- The README's setup (Getting started, and the T2 advice: a token issuer
-- role, a pool role without rights) reports nothing at high or critical
-- =====================================================================
CREATE ROLE val_acme_app LOGIN;
CREATE ROLE val_globex_app LOGIN;
CREATE ROLE val_app_pool LOGIN;
CREATE ROLE val_app_web LOGIN;
CREATE ROLE val_issuer LOGIN;
SELECT tenant_iso.create_tenant('val_acme', 'Acme Corporation'),
	   tenant_iso.create_tenant('val_globex'),
	   tenant_iso.add_member('val_acme_app', 'val_acme'),
	   tenant_iso.add_member('val_globex_app', 'val_globex'),
	   tenant_iso.grant_switch('val_app_pool')
\g /dev/null
GRANT EXECUTE ON FUNCTION tenant_iso.issue_token(text, interval) TO val_issuer;
CREATE TABLE public.val_orders (
	tenant_id text NOT NULL,
	id int NOT NULL,
	item text,
	PRIMARY KEY (tenant_id, id)
);
SELECT tenant_iso.protect('public.val_orders') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON public.val_orders TO val_acme_app, val_globex_app, val_app_pool, val_app_web;
CREATE TABLE public.val_customers (
	tenant_id text NOT NULL,
	id int NOT NULL,
	ssn bytea,
	ssn_bidx bytea,
	PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ON public.val_customers (tenant_id, ssn_bidx);
SELECT tenant_iso.protect('public.val_customers') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON public.val_customers TO val_acme_app, val_globex_app;
-- a reporting view, as the Caveats recommend
CREATE VIEW public.val_order_items WITH (security_invoker = true) AS
	SELECT tenant_id, item FROM public.val_orders;
GRANT SELECT ON public.val_order_items TO val_acme_app, val_globex_app;
SELECT tenant_iso.rotate_tenant_key('val_acme') \g /dev/null
SET ROLE val_acme_app;
INSERT INTO public.val_orders (id, item) VALUES (1, 'anvil');
INSERT INTO public.val_customers (id, ssn) VALUES (1, tenant_iso.encrypt('123-45-6789', 'customers.ssn'));
RESET ROLE;

SELECT is(h.serious(), 'none',
	'README setup: validate() reports nothing at high or critical');
SELECT ok((SELECT count(*) FROM tenant_iso.validate()
		    WHERE severity NOT IN ('critical', 'high', 'medium', 'low', 'info')
			   OR check_id IS NULL OR object IS NULL OR detail IS NULL OR remedy IS NULL
			   OR controls IS NULL OR cardinality(controls) = 0) = 0,
	'every finding has a known severity, a check, an object, a detail, a remedy and controls');

-- =====================================================================
-- Privileges
-- =====================================================================
SELECT ok(NOT has_function_privilege('val_app_web', 'tenant_iso.validate()', 'EXECUTE')
		  AND NOT has_function_privilege('val_app_web', 'tenant_iso.drift(text)', 'EXECUTE')
		  AND NOT has_function_privilege('val_app_web', 'tenant_iso.baseline_save(text)', 'EXECUTE')
		  AND NOT has_function_privilege('val_app_web', 'tenant_iso.allow_connection(text, text, text)', 'EXECUTE')
		  AND NOT has_function_privilege('val_app_web', 'tenant_iso.disallow_connection(text, text)', 'EXECUTE'),
	'privileges: validate, drift, baseline_save, allow_connection, disallow_connection are revoked from PUBLIC');
SELECT ok(NOT has_table_privilege('val_app_web', 'tenant_iso.allowed_connections', 'SELECT')
		  AND NOT has_table_privilege('val_app_web', 'tenant_iso.baselines', 'SELECT'),
	'privileges: allowed_connections and baselines are not readable by PUBLIC');
SET ROLE val_app_web;
SELECT throws_ok('SELECT * FROM tenant_iso.validate()', '42501', NULL,
	'privileges: validate() refuses a role without EXECUTE (42501)');
RESET ROLE;
SELECT ok((SELECT prosecdef AND proconfig @> ARRAY['search_path=pg_catalog, pg_temp']
			 FROM pg_proc WHERE oid = 'tenant_iso.validate()'::regprocedure),
	'privileges: validate() is SECURITY DEFINER with a fixed search_path');
CREATE ROLE val_auditor LOGIN;
GRANT EXECUTE ON FUNCTION tenant_iso.validate() TO val_auditor;
SET ROLE val_auditor;
SELECT lives_ok('SELECT count(*) FROM tenant_iso.validate()',
	'privileges: a non-superuser granted EXECUTE runs validate() (pg_hba_file_rules read as the owner)');
RESET ROLE;

-- =====================================================================
-- Fixtures for the checks
-- =====================================================================
-- 1. unprotected_table
CREATE TABLE public.val_plain (tenant_id text, x int);
CREATE TABLE public.val_notenant (id int PRIMARY KEY, x int);
CREATE TABLE public.val_org (org_id int, x int);

-- 2. weakened_protection
CREATE TABLE public.val_w_noforce (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE public.val_w_norls (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE public.val_w_renamed (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE public.val_w_retyped (tenant_id int NOT NULL, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE public.val_wp (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id);
CREATE TABLE public.val_wp_a PARTITION OF public.val_wp FOR VALUES IN ('val_acme');
SELECT tenant_iso.protect(t) FROM unnest(ARRAY['public.val_w_noforce', 'public.val_w_norls', 'public.val_w_renamed',
											   'public.val_w_retyped', 'public.val_wp']::regclass[]) t
\g /dev/null
ALTER TABLE public.val_w_noforce NO FORCE ROW LEVEL SECURITY;
ALTER TABLE public.val_w_norls DISABLE ROW LEVEL SECURITY;
ALTER TABLE public.val_w_renamed RENAME COLUMN tenant_id TO tid;
ALTER TABLE public.val_w_retyped ALTER COLUMN tenant_id TYPE numeric;
DELETE FROM tenant_iso.protected WHERE rel = 'public.val_wp_a'::regclass;
INSERT INTO tenant_iso.protected (rel, tenant_column) VALUES (4000000000::oid::regclass, 'tenant_id');

-- 3. cross_tenant_key
SET client_min_messages = error;  -- protect() warns about the leaky keys
CREATE TABLE public.val_k1 (tenant_id text NOT NULL, id int PRIMARY KEY, email text);
CREATE UNIQUE INDEX val_k1_email ON public.val_k1 (email);
SELECT tenant_iso.protect('public.val_k1') \g /dev/null
CREATE TABLE public.val_k2 (tenant_id text NOT NULL, id int, k1_id int REFERENCES public.val_k1 (id),
							PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('public.val_k2') \g /dev/null
CREATE TABLE public.val_k3 (tenant_id text NOT NULL, id int, order_id int,
							PRIMARY KEY (tenant_id, id),
							FOREIGN KEY (tenant_id, order_id) REFERENCES public.val_orders (tenant_id, id));
SELECT tenant_iso.protect('public.val_k3') \g /dev/null
CREATE TABLE public.val_kp (tenant_id text NOT NULL, id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE public.val_kp_eu PARTITION OF public.val_kp FOR VALUES IN ('eu');
CREATE TABLE public.val_kp_us PARTITION OF public.val_kp FOR VALUES IN ('us');
SELECT tenant_iso.protect('public.val_kp') \g /dev/null
SET client_min_messages = warning;

-- 4. overpowered_member
CREATE ROLE val_m_super SUPERUSER;
CREATE ROLE val_m_bypass BYPASSRLS;
CREATE ROLE val_m_createrole CREATEROLE;
CREATE ROLE val_sw;                       -- a switcher without LOGIN
CREATE ROLE val_grp;
CREATE ROLE val_bypass_grp BYPASSRLS;
CREATE ROLE val_m_sw;
CREATE ROLE val_m_deep;
CREATE ROLE val_m_bygrp;
CREATE ROLE val_m_files;
CREATE ROLE val_m_owner;
SELECT tenant_iso.grant_switch('val_sw') \g /dev/null
GRANT val_sw TO val_m_sw;
GRANT val_sw TO val_grp;
GRANT val_grp TO val_m_deep;
GRANT val_bypass_grp TO val_m_bygrp;
GRANT pg_execute_server_program TO val_m_files;
CREATE TABLE public.val_owned (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('public.val_owned') \g /dev/null
ALTER TABLE public.val_owned OWNER TO val_m_owner;
SELECT tenant_iso.add_member(r::regrole, 'val_acme')
  FROM unnest(ARRAY['val_m_super', 'val_m_bypass', 'val_m_createrole', 'val_m_sw', 'val_m_deep',
					'val_m_bygrp', 'val_m_files', 'val_m_owner']) r
\g /dev/null

-- 6. bypassing_view
CREATE ROLE val_owner;
CREATE VIEW public.val_v_super AS SELECT tenant_id, item FROM public.val_orders;
GRANT SELECT ON public.val_v_super TO val_acme_app;
CREATE VIEW public.val_v_ungranted AS SELECT tenant_id, item FROM public.val_orders;
CREATE VIEW public.val_v_owned AS SELECT tenant_id, item FROM public.val_orders;
ALTER VIEW public.val_v_owned OWNER TO val_owner;
CREATE VIEW public.val_v_nested AS SELECT * FROM public.val_order_items;          -- through an invoker view
CREATE VIEW public.val_v_nested_owned AS SELECT * FROM public.val_v_owned;         -- through a non-bypassing owner
CREATE VIEW public.val_v_plain AS SELECT * FROM public.val_notenant;
CREATE MATERIALIZED VIEW public.val_mv AS SELECT tenant_id, item FROM public.val_orders;

-- 7. bypassing_definer_function
CREATE FUNCTION public.val_f_public() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog AS 'SELECT count(*) FROM public.val_orders';
CREATE FUNCTION public.val_f_member(int) RETURNS bigint LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog AS 'SELECT count(*) FROM public.val_orders';
REVOKE ALL ON FUNCTION public.val_f_member(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.val_f_member(int) TO val_acme_app;
CREATE FUNCTION public.val_f_revoked() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog AS 'SELECT count(*) FROM public.val_orders';
REVOKE ALL ON FUNCTION public.val_f_revoked() FROM PUBLIC;
CREATE FUNCTION public.val_f_owned() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog AS 'SELECT count(*) FROM public.val_orders';
ALTER FUNCTION public.val_f_owned() OWNER TO val_owner;
CREATE FUNCTION public.val_f_invoker() RETURNS bigint LANGUAGE sql
	AS 'SELECT count(*) FROM public.val_orders';

-- 8. unapproved_connection
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SERVER val_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db.example', dbname 'other');
SELECT pg_create_physical_replication_slot('val_slot') \g /dev/null
SET client_min_messages = error;  -- "tables were not subscribed": it never connects
CREATE SUBSCRIPTION val_sub CONNECTION 'dbname=val_nowhere' PUBLICATION val_pub
	WITH (connect = false, enabled = false, create_slot = false, slot_name = NONE);
SET client_min_messages = warning;

-- 10. crypto_posture: an old active data key
SELECT tenant_iso.create_tenant('val_old') \g /dev/null
SELECT tenant_iso.rotate_tenant_key('val_old') \g /dev/null
UPDATE tenant_iso.data_keys SET created_at = now() - interval '400 days' WHERE tenant_id = 'val_old';

-- 11. integrity_posture: tracked tables (with track() when the integrity part is there)
CREATE TABLE public.val_i_never (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE public.val_i_fresh (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE public.val_i_stale (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE public.val_i_failed (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE public.val_i_fixed (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
INSERT INTO public.val_i_never VALUES ('val_acme', 1), ('val_globex', 1);
SELECT tenant_iso.protect(t) FROM unnest(ARRAY['public.val_i_never', 'public.val_i_fresh', 'public.val_i_stale',
											   'public.val_i_failed', 'public.val_i_fixed']::regclass[]) t
\g /dev/null
DO $$
DECLARE
	t regclass;
BEGIN
	FOREACH t IN ARRAY ARRAY['public.val_i_never', 'public.val_i_fresh', 'public.val_i_stale',
							 'public.val_i_failed', 'public.val_i_fixed']::regclass[] LOOP
		IF to_regprocedure('tenant_iso.track(regclass)') IS NOT NULL THEN
			PERFORM tenant_iso.track(t);
		ELSE
			INSERT INTO tenant_iso.tracked (rel, relname) VALUES (t, t::text);
		END IF;
	END LOOP;
END
$$;
INSERT INTO tenant_iso.verify_runs (relname, tenant_id, ok, verified_at) VALUES
	('public.val_i_fresh', 'val_acme', true, now() - interval '1 hour'),
	('public.val_i_fresh', 'val_globex', true, now() - interval '1 hour'),
	('public.val_i_stale', 'val_acme', true, now() - interval '8 days'),
	('public.val_i_failed', 'val_acme', true, now() - interval '2 hours'),
	('public.val_i_failed', 'val_acme', true, now() - interval '1 hour'),
	('public.val_i_failed', 'val_globex', false, now() - interval '1 hour'),
	('public.val_i_fixed', 'val_globex', false, now() - interval '2 hours'),
	('public.val_i_fixed', 'val_acme', true, now() - interval '1 hour'),
	('public.val_i_fixed', 'val_globex', true, now() - interval '1 hour');

SELECT h.refresh();

-- =====================================================================
-- 1. unprotected_table
-- =====================================================================
SELECT is(h.sev('unprotected_table', 'public.val_plain'), 'critical',
	'unprotected_table: a table with a tenant_id column that is not protected (critical)');
SELECT is((SELECT remedy FROM h.v WHERE check_id = 'unprotected_table' AND object = 'public.val_plain'),
	'SELECT tenant_iso.protect(''public.val_plain'', ''tenant_id'');',
	'unprotected_table: the remedy is the protect() call');
SELECT is((SELECT controls FROM h.v WHERE check_id = 'unprotected_table' AND object = 'public.val_plain'),
	ARRAY['tenant-isolation', 'data-segregation'],
	'unprotected_table: controls tenant-isolation, data-segregation');
SELECT is(h.sev('unprotected_table', 'public.val_orders'), 'none',
	'unprotected_table: not for a protected table');
SELECT is(h.sev('unprotected_table', 'public.val_notenant'), 'none',
	'unprotected_table: not for a table without a tenant column');
SELECT is(h.n('unprotected_table', 'tenant_iso.%'), 0::bigint,
	'unprotected_table: not for tenant_iso''s own tables (members, data_keys, verify_runs have tenant_id)');
SELECT is(h.sev('unprotected_table', 'public.val_org'), 'none',
	'unprotected_table: org_id is not a tenant column by default');
SET tenant_iso.tenant_columns = 'tenant_id, org_id';
SELECT h.refresh();
SELECT is(h.sev('unprotected_table', 'public.val_org'), 'critical',
	'unprotected_table: with tenant_iso.tenant_columns = ''tenant_id, org_id'', org_id marks tenant data');
RESET tenant_iso.tenant_columns;
SELECT h.refresh();

-- =====================================================================
-- 2. weakened_protection
-- =====================================================================
SELECT is(h.sev('weakened_protection', 'public.val_w_noforce'), 'critical',
	'weakened_protection: row security no longer forced (critical)');
SELECT is(h.sev('weakened_protection', 'public.val_w_norls'), 'critical',
	'weakened_protection: row security disabled (critical)');
SELECT is(h.sev('weakened_protection', 'public.val_w_renamed'), 'critical',
	'weakened_protection: tenant column renamed (critical)');
SELECT matches((SELECT detail || ' | ' || remedy FROM h.v WHERE check_id = 'weakened_protection' AND object = 'public.val_w_renamed'),
	'column tid carries the tenant_iso default: renamed\?.*RENAME COLUMN tid TO tenant_id',
	'weakened_protection: the renamed column is found by its tenant_iso default, and the remedy renames it back');
SELECT is(h.sev('weakened_protection', 'public.val_w_retyped'), 'critical',
	'weakened_protection: tenant column retyped to an unsupported type (critical)');
SELECT is(h.sev('weakened_protection', '4000000000'), 'critical',
	'weakened_protection: registry row for a relation that does not exist (critical)');
SELECT is(h.sev('weakened_protection', 'public.val_wp_a'), 'critical',
	'weakened_protection: unregistered partition of a protected table (critical)');
SELECT is(h.sev('unprotected_table', 'public.val_wp_a'), 'none',
	'weakened_protection: that partition is not reported a second time as unprotected_table');
SELECT is(h.sev('weakened_protection', 'public.val_orders') || ' ' || h.sev('weakened_protection', 'public.val_wp'),
	'none none',
	'weakened_protection: not for intact protected tables');
-- the remedies work
ALTER TABLE public.val_w_noforce FORCE ROW LEVEL SECURITY;
ALTER TABLE public.val_w_renamed RENAME COLUMN tid TO tenant_id;
DO $$
BEGIN
	EXECUTE (SELECT split_part(remedy, ';', 1) FROM h.v
			  WHERE check_id = 'weakened_protection' AND object = 'public.val_wp_a');
END
$$;
DELETE FROM tenant_iso.protected WHERE rel = 4000000000::oid::regclass;
SELECT h.refresh();
SELECT is(h.sev('weakened_protection', 'public.val_w_noforce') || ' ' || h.sev('weakened_protection', 'public.val_w_renamed')
		  || ' ' || h.sev('weakened_protection', 'public.val_wp_a') || ' ' || h.sev('weakened_protection', '4000000000'),
	'none none none none',
	'weakened_protection: gone after FORCE, renaming back, the remedy ALTER TABLE on the partition, and deleting the stale row');
SELECT ok(EXISTS (SELECT 1 FROM tenant_iso.protected WHERE rel = 'public.val_wp_a'::regclass),
	'weakened_protection: the remedy re-registered the partition');

-- =====================================================================
-- 3. cross_tenant_key
-- =====================================================================
SELECT is(h.sev('cross_tenant_key', 'public.val_k1_pkey'), 'high',
	'cross_tenant_key: primary key without the tenant column (high)');
SELECT matches((SELECT remedy FROM h.v WHERE check_id = 'cross_tenant_key' AND object = 'public.val_k1_pkey'),
	'ADD CONSTRAINT val_k1_pkey PRIMARY KEY \(tenant_id, id\)',
	'cross_tenant_key: the remedy puts the tenant column first in the key');
SELECT is(h.sev('cross_tenant_key', 'public.val_k1_email'), 'high',
	'cross_tenant_key: unique index without the tenant column (high)');
SELECT is(h.sev('cross_tenant_key', 'public.val_k2.val_k2_k1_id_fkey'), 'high',
	'cross_tenant_key: foreign key without the tenant column on both sides (high)');
SELECT is(h.sev('cross_tenant_key', 'public.val_orders_pkey') || ' ' || h.n('cross_tenant_key', 'public.val_k3%'),
	'none 0',
	'cross_tenant_key: not for PRIMARY KEY (tenant_id, id), nor a foreign key that carries tenant_id on both sides');
SELECT is(h.n('cross_tenant_key', 'public.val_kp%'), 1::bigint,
	'cross_tenant_key: a leaky key of a partitioned table is reported once, not once per partition');

-- =====================================================================
-- 4. overpowered_member
-- =====================================================================
SELECT is(h.sev('overpowered_member', 'val_m_super'), 'critical',
	'overpowered_member: SUPERUSER member (critical)');
SELECT is(h.sev('overpowered_member', 'val_m_bypass'), 'critical',
	'overpowered_member: BYPASSRLS member (critical)');
SELECT is(h.sev('overpowered_member', 'val_m_createrole'), 'high',
	'overpowered_member: CREATEROLE member (high)');
SELECT is(h.sev('overpowered_member', 'val_m_sw'), 'high',
	'overpowered_member: member of a switcher role (high)');
SELECT is(h.sev('overpowered_member', 'val_m_deep'), 'high',
	'overpowered_member: member of a switcher role through another role (recursive, high)');
SELECT is(h.sev('overpowered_member', 'val_m_bygrp'), 'high',
	'overpowered_member: member of a BYPASSRLS role (high)');
SELECT is(h.sev('overpowered_member', 'val_m_files'), 'high',
	'overpowered_member: member of pg_execute_server_program (high)');
SELECT is(h.sev('overpowered_member', 'val_m_owner'), 'high',
	'overpowered_member: owner of a protected table (high)');
SELECT is(h.sev('overpowered_member', 'val_acme_app') || ' ' || h.sev('overpowered_member', 'val_globex_app'),
	'none none',
	'overpowered_member: not for plain member roles');

-- =====================================================================
-- 5. switcher_without_tls
-- =====================================================================
SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_hba_file_rules
						  WHERE error IS NULL AND type IN ('host', 'hostnossl') AND auth_method <> 'reject'
							AND 'all' = ANY (database) AND 'all' = ANY (user_name))
	THEN matches(h.sev('switcher_without_tls', 'val_app_pool'), '^(low|high)$',
			'switcher_without_tls: a LOGIN switcher admitted over TCP without TLS is reported (low when loopback only)')
	ELSE skip('switcher_without_tls: pg_hba.conf has no host rule for all users', 1) END;
SELECT is(h.sev('switcher_without_tls', 'val_acme_app'), 'none',
	'switcher_without_tls: not for a member role');
SELECT is(h.sev('switcher_without_tls', 'val_sw'), 'none',
	'switcher_without_tls: not for a switcher without LOGIN');
-- the address classification that decides between high and low
SELECT is(tenant_iso._hba_local('127.0.0.1', '255.255.255.255')::text || tenant_iso._hba_local('::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')::text
		  || tenant_iso._hba_local('samehost', NULL)::text,
	'truetruetrue',
	'switcher_without_tls: 127.0.0.1/32, ::1/128 and samehost are loopback only (low)');
SELECT is(tenant_iso._hba_local('10.0.0.0', '255.0.0.0')::text || tenant_iso._hba_local('0.0.0.0', '0.0.0.0')::text
		  || tenant_iso._hba_local('all', NULL)::text || tenant_iso._hba_local('::', '::')::text
		  || tenant_iso._hba_local('app.example', NULL)::text,
	'falsefalsefalsefalsefalse',
	'switcher_without_tls: 10.0.0.0/8, 0.0.0.0/0, all, ::/0 and host names are the network (high)');
SELECT is(tenant_iso._hba_covers('0.0.0.0', '0.0.0.0', '10.1.2.3', '255.255.255.255')::text
		  || tenant_iso._hba_covers('10.0.0.0', '255.0.0.0', '10.1.0.0', '255.255.0.0')::text
		  || tenant_iso._hba_covers('10.1.0.0', '255.255.0.0', '10.0.0.0', '255.0.0.0')::text
		  || tenant_iso._hba_covers('10.0.0.0', '255.0.0.0', '192.168.1.0', '255.255.255.0')::text
		  || tenant_iso._hba_covers('all', NULL, '::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')::text
		  || tenant_iso._hba_covers('0.0.0.0', '0.0.0.0', '::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')::text,
	'truetruefalsefalsetruefalse',
	'switcher_without_tls: an earlier reject rule shadows a later rule only when its addresses contain the later rule''s');

-- =====================================================================
-- 6. bypassing_view
-- =====================================================================
SELECT is(h.sev('bypassing_view', 'public.val_v_super'), 'high',
	'bypassing_view: superuser-owned view over a protected table, readable by a member (high)');
SELECT is(h.sev('bypassing_view', 'public.val_v_ungranted'), 'medium',
	'bypassing_view: the same, readable by no tenant-facing role yet (medium)');
SELECT is(h.sev('bypassing_view', 'public.val_v_nested'), 'medium',
	'bypassing_view: superuser-owned view that reaches the protected table through a security_invoker view');
SELECT is(h.sev('bypassing_view', 'public.val_mv'), 'medium',
	'bypassing_view: superuser-owned materialized view over a protected table');
SELECT is(h.sev('bypassing_view', 'public.val_order_items') || ' ' || h.sev('bypassing_view', 'public.val_v_owned')
		  || ' ' || h.sev('bypassing_view', 'public.val_v_nested_owned') || ' ' || h.sev('bypassing_view', 'public.val_v_plain'),
	'none none none none',
	'bypassing_view: not for security_invoker views, views of an ordinary owner (also nested), views of unprotected tables');
ALTER VIEW public.val_v_super SET (security_invoker = on);
SELECT h.refresh();
SELECT is(h.sev('bypassing_view', 'public.val_v_super'), 'none',
	'bypassing_view: gone after the remedy (security_invoker = on)');

-- =====================================================================
-- 7. bypassing_definer_function
-- =====================================================================
SELECT is(h.sev('bypassing_definer_function', 'public.val_f_public()'), 'high',
	'bypassing_definer_function: superuser SECURITY DEFINER function executable by PUBLIC (high)');
SELECT is(h.sev('bypassing_definer_function', 'public.val_f_member(integer)'), 'high',
	'bypassing_definer_function: executable by a tenant member only (high)');
SELECT is(h.sev('bypassing_definer_function', 'public.val_f_revoked()') || ' ' || h.sev('bypassing_definer_function', 'public.val_f_owned()')
		  || ' ' || h.sev('bypassing_definer_function', 'public.val_f_invoker()'),
	'none none none',
	'bypassing_definer_function: not when revoked from PUBLIC, owned by an ordinary role, or SECURITY INVOKER');
SELECT is(h.n('bypassing_definer_function', 'tenant_iso.%'), 0::bigint,
	'bypassing_definer_function: not for tenant_iso''s own functions (protect() is PUBLIC, by design)');

-- =====================================================================
-- 8. unapproved_connection, allow_connection(), disallow_connection()
-- =====================================================================
SELECT is(h.sev('unapproved_connection', 'val_srv'), 'medium',
	'unapproved_connection: a foreign server (medium)');
SELECT is(h.sev('unapproved_connection', 'postgres_fdw'), 'medium',
	'unapproved_connection: the postgres_fdw extension');
SELECT is(h.sev('unapproved_connection', 'val_slot'), 'medium',
	'unapproved_connection: a replication slot');
SELECT is(h.sev('unapproved_connection', 'val_sub'), 'medium',
	'unapproved_connection: a subscription');
SELECT is(h.sev('unapproved_connection', 'dblink'), 'none',
	'unapproved_connection: not for an extension that is not installed');
SELECT tenant_iso.allow_connection('foreign_server', 'val_srv', 'reporting replica'),
	   tenant_iso.allow_connection('extension', 'postgres_fdw', 'for val_srv'),
	   tenant_iso.allow_connection('replication_slot', 'val_slot', 'standby'),
	   tenant_iso.allow_connection('subscription', 'val_sub', 'inbound feed')
\g /dev/null
SELECT tenant_iso.allow_connection('foreign_server', 'val_srv', 'reporting replica, reviewed') \g /dev/null
SELECT h.refresh();
SELECT is(h.n('unapproved_connection', 'val\_%') + h.n('unapproved_connection', 'postgres_fdw'), 0::bigint,
	'allow_connection: approved connections are no longer reported');
SELECT is((SELECT string_agg(format('%s/%s/%s/%s', kind, name, note, approved_by), ' ' ORDER BY kind, name)
			 FROM tenant_iso.allowed_connections WHERE name IN ('val_srv', 'postgres_fdw')),
	'extension/postgres_fdw/for val_srv/postgres foreign_server/val_srv/reporting replica, reviewed/postgres',
	'allow_connection: allowed_connections lists them; approving again updates the note (one row)');
SELECT throws_ok($$SELECT tenant_iso.allow_connection('fdw', 'val_srv', 'x')$$, '22023', NULL,
	'allow_connection: an invalid kind raises 22023');
SELECT throws_ok($$SELECT tenant_iso.disallow_connection('bogus', 'val_srv')$$, '22023', NULL,
	'disallow_connection: an invalid kind raises 22023');
SELECT tenant_iso.disallow_connection('foreign_server', 'val_srv') \g /dev/null
SELECT tenant_iso.disallow_connection('foreign_server', 'val_srv') \g /dev/null
SELECT h.refresh();
SELECT is(h.sev('unapproved_connection', 'val_srv') || ' ' || h.sev('unapproved_connection', 'postgres_fdw'),
	'medium none',
	'disallow_connection: the server is reported again (and a second disallow is a no-op)');

-- =====================================================================
-- 9. log_leak_setting
-- =====================================================================
SELECT is(h.n('log_leak_setting', 'log\_%') + h.n('log_leak_setting', 'debug\_%') + h.n('log_leak_setting', 'auto\_explain%'),
	0::bigint,
	'log_leak_setting: nothing with the default settings');
SET log_statement = 'mod';
SET log_min_duration_statement = 0;
SET log_min_error_statement = 'info';
SET debug_print_plan = on;
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SELECT h.refresh();
SELECT is(h.sev('log_leak_setting', 'log_statement'), 'medium',
	'log_leak_setting: log_statement = mod (medium)');
SELECT is(h.sev('log_leak_setting', 'log_min_duration_statement'), 'medium',
	'log_leak_setting: log_min_duration_statement = 0 (medium)');
SELECT is(h.sev('log_leak_setting', 'log_min_error_statement'), 'low',
	'log_leak_setting: log_min_error_statement = info (low)');
SELECT is(h.sev('log_leak_setting', 'debug_print_plan'), 'low',
	'log_leak_setting: debug_print_plan = on (low)');
SELECT is(h.sev('log_leak_setting', 'auto_explain.log_min_duration'), 'low',
	'log_leak_setting: auto_explain loaded with log_min_duration = 0 (low)');
SET log_statement = 'ddl';
SET log_min_duration_statement = 250;
SET log_min_error_statement = 'warning';
RESET debug_print_plan;
SET auto_explain.log_min_duration = -1;
SELECT h.refresh();
SELECT is(h.n('log_leak_setting', 'log\_%') + h.n('log_leak_setting', 'debug\_%') + h.n('log_leak_setting', 'auto\_explain%'),
	0::bigint,
	'log_leak_setting: nothing with log_statement = ddl, a 250 ms threshold, log_min_error_statement = warning');
RESET log_statement;
RESET log_min_duration_statement;
RESET log_min_error_statement;
ALTER ROLE val_app_web SET log_statement = 'all';
SELECT h.refresh();
SELECT is(h.sev('log_leak_setting', 'log_statement for role val_app_web'), 'medium',
	'log_leak_setting: ALTER ROLE ... SET log_statement = all is reported too (medium)');
DO $$
BEGIN
	EXECUTE (SELECT remedy FROM h.v WHERE check_id = 'log_leak_setting' AND object = 'log_statement for role val_app_web');
END
$$;
SELECT h.refresh();
SELECT is(h.sev('log_leak_setting', 'log_statement for role val_app_web'), 'none',
	'log_leak_setting: gone after its remedy (ALTER ROLE ... RESET log_statement)');

-- =====================================================================
-- 10. crypto_posture
-- =====================================================================
SELECT is(h.sev('crypto_posture', 'tenant_iso.master_key_command'), 'none',
	'crypto_posture: nothing about the master key when it is loadable');
SELECT is(h.sev('crypto_posture', 'val_old'), 'none',
	'crypto_posture: key age is not checked while tenant_iso.key_max_age is empty');
SET tenant_iso.key_max_age = '90 days';
SELECT h.refresh();
SELECT is(h.sev('crypto_posture', 'val_old'), 'medium',
	'crypto_posture: an active data key older than tenant_iso.key_max_age (medium)');
SELECT is(h.sev('crypto_posture', 'val_acme'), 'none',
	'crypto_posture: not for a recent data key');
SELECT tenant_iso.rotate_tenant_key('val_old') \g /dev/null
SET tenant_iso.key_max_age = 'fortnight-ish';
SELECT h.refresh();
SELECT is(h.sev('crypto_posture', 'val_old') || ' ' || h.sev('crypto_posture', 'tenant_iso.key_max_age'),
	'none low',
	'crypto_posture: gone after rotate_tenant_key(); an invalid key_max_age is reported (low), not an error');
RESET tenant_iso.key_max_age;

-- =====================================================================
-- 11. integrity_posture
-- =====================================================================
SELECT h.refresh();
SELECT is(h.sev('integrity_posture', 'public.val_i_never'), 'medium',
	'integrity_posture: a tracked table never verified (medium)');
SELECT is(h.sev('integrity_posture', 'public.val_i_stale'), 'medium',
	'integrity_posture: last verified 8 days ago, longer than verify_max_age 7 days (medium)');
SELECT is(h.sev('integrity_posture', 'public.val_i_failed'), 'high',
	'integrity_posture: its last verify() failed for one tenant (high)');
SELECT is(h.sev('integrity_posture', 'public.val_i_fresh') || ' ' || h.sev('integrity_posture', 'public.val_i_fixed'),
	'none none',
	'integrity_posture: not for a table verified an hour ago, nor one whose earlier failure a later run cleared');
SET tenant_iso.verify_max_age = '10 days';
SELECT h.refresh();
SELECT is(h.sev('integrity_posture', 'public.val_i_stale'), 'none',
	'integrity_posture: honours tenant_iso.verify_max_age');
RESET tenant_iso.verify_max_age;
SELECT CASE WHEN to_regprocedure('tenant_iso.verify(regclass, text)') IS NOT NULL
	THEN lives_ok($$SELECT count(*) FROM tenant_iso.verify('public.val_i_never')$$,
				  'integrity_posture: verify() of the never-verified table runs')
	ELSE skip('integrity_posture: tenant_iso.verify() is not installed', 1) END;
SELECT h.refresh();
SELECT CASE WHEN to_regprocedure('tenant_iso.verify(regclass, text)') IS NOT NULL
	THEN is(h.sev('integrity_posture', 'public.val_i_never'), 'none',
			'integrity_posture: after verify() the table is no longer reported')
	ELSE skip('integrity_posture: tenant_iso.verify() is not installed', 1) END;

-- =====================================================================
-- 12. temp_for_switcher
-- =====================================================================
-- PUBLIC's TEMP is put back as it was at the end of the section
CREATE TEMP TABLE val_public_temp AS
	SELECT has_database_privilege('public', current_database(), 'TEMP') AS had;
DO $$ BEGIN
	EXECUTE format('REVOKE TEMP ON DATABASE %I FROM PUBLIC', current_database());
	EXECUTE format('GRANT TEMP ON DATABASE %I TO val_app_pool, val_app_web', current_database());
END $$;
SELECT h.refresh();
SELECT is(h.sev('temp_for_switcher', 'val_app_pool'), 'medium',
	'temp_for_switcher: a switcher with TEMP on the database (medium)');
SELECT is(h.sev('temp_for_switcher', 'val_app_web'), 'none',
	'temp_for_switcher: not for a role with TEMP that is not a switcher');
SELECT set_config('tenant_iso.discard_temp_on_switch', 'on', false)
 WHERE EXISTS (SELECT 1 FROM pg_settings WHERE name = 'tenant_iso.discard_temp_on_switch') \g /dev/null
SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_settings WHERE name = 'tenant_iso.discard_temp_on_switch')
	THEN is((SELECT severity FROM tenant_iso.validate() v
			  WHERE v.check_id = 'temp_for_switcher' AND v.object = 'val_app_pool'), 'low',
			'temp_for_switcher: low when tenant_iso.discard_temp_on_switch is on')
	ELSE skip('temp_for_switcher: tenant_iso.discard_temp_on_switch is not there', 1) END;
SELECT set_config('tenant_iso.discard_temp_on_switch', 'off', false)
 WHERE EXISTS (SELECT 1 FROM pg_settings WHERE name = 'tenant_iso.discard_temp_on_switch') \g /dev/null
DO $$ BEGIN
	EXECUTE format('REVOKE TEMP ON DATABASE %I FROM val_app_pool', current_database());
END $$;
SELECT h.refresh();
SELECT is(h.sev('temp_for_switcher', 'val_app_pool'), 'none',
	'temp_for_switcher: gone once neither the switcher nor PUBLIC has TEMP');
DO $$ BEGIN
	EXECUTE format('GRANT TEMP ON DATABASE %I TO PUBLIC', current_database());
END $$;
SELECT h.refresh();
SELECT is(h.sev('temp_for_switcher', 'val_app_pool'), 'medium',
	'temp_for_switcher: TEMP through PUBLIC (the default) is reported');
SELECT matches((SELECT detail FROM h.v WHERE check_id = 'temp_for_switcher' AND object = 'val_app_pool'),
	'through PUBLIC',
	'temp_for_switcher: the detail says the TEMP comes through PUBLIC');
DO $$ BEGIN
	EXECUTE format('REVOKE TEMP ON DATABASE %I FROM val_app_web', current_database());
	IF NOT (SELECT had FROM val_public_temp) THEN
		EXECUTE format('REVOKE TEMP ON DATABASE %I FROM PUBLIC', current_database());
	END IF;
END $$;
DROP TABLE val_public_temp;

-- =====================================================================
-- 13. public_writable_schema
-- =====================================================================
CREATE SCHEMA val_open;
CREATE SCHEMA val_closed;
GRANT CREATE ON SCHEMA val_open TO PUBLIC;
GRANT CREATE ON SCHEMA val_closed TO val_app_web;
GRANT USAGE ON SCHEMA val_closed TO PUBLIC;
GRANT CREATE ON SCHEMA public TO PUBLIC;
SELECT h.refresh();
SELECT is(h.sev('public_writable_schema', 'public') || ' ' || h.sev('public_writable_schema', 'val_open'),
	'high high',
	'public_writable_schema: schema public (as upgraded from PG 14) and another schema with CREATE for PUBLIC (high)');
SELECT is(h.sev('public_writable_schema', 'val_closed'), 'none',
	'public_writable_schema: not for a schema with CREATE for one role and USAGE for PUBLIC');
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA val_open FROM PUBLIC;
SELECT h.refresh();
SELECT is(h.sev('public_writable_schema', 'public') || ' ' || h.sev('public_writable_schema', 'val_open'),
	'none none',
	'public_writable_schema: gone after REVOKE CREATE ... FROM PUBLIC');
DROP SCHEMA val_open;
DROP SCHEMA val_closed;

-- =====================================================================
-- 14. switcher_large_objects
-- =====================================================================
CREATE ROLE val_lo_owner;
CREATE ROLE val_lo_other;
GRANT val_lo_owner TO val_app_pool;
SET ROLE val_app_pool;
SELECT lo_create(0) AS lo_pool \gset
RESET ROLE;
SET ROLE val_lo_owner;
SELECT lo_create(0) AS lo_inherited \gset
RESET ROLE;
SET ROLE val_lo_other;
SELECT lo_create(0) AS lo_other \gset
RESET ROLE;
SELECT h.refresh();
SELECT is((SELECT string_agg(DISTINCT severity, ',') FROM h.v
			WHERE check_id = 'switcher_large_objects' AND object = 'val_app_pool'), 'high',
	'switcher_large_objects: large objects owned by a switcher, or by a role whose rights it has (high)');
SELECT is((SELECT count(*) FROM h.v WHERE check_id = 'switcher_large_objects' AND object = 'val_app_pool'), 2::bigint,
	'switcher_large_objects: one finding for its own, one for the inherited owner''s');
SELECT is(h.n('switcher_large_objects', '%') , 2::bigint,
	'switcher_large_objects: not for large objects of a role that no switcher has the rights of');
SELECT lo_unlink(:lo_pool) \g /dev/null
REVOKE val_lo_owner FROM val_app_pool;
SELECT h.refresh();
SELECT is(h.n('switcher_large_objects', '%'), 0::bigint,
	'switcher_large_objects: gone after lo_unlink() and REVOKE of the owner role');
SELECT lo_unlink(:lo_inherited) \g /dev/null
SELECT lo_unlink(:lo_other) \g /dev/null
DROP ROLE val_lo_owner;
DROP ROLE val_lo_other;

-- =====================================================================
-- Baselines and drift
-- =====================================================================
SELECT throws_ok($$SELECT * FROM tenant_iso.drift('val_nope')$$, '42704', NULL,
	'drift: an unknown baseline raises 42704');
SELECT lives_ok($$SELECT tenant_iso.baseline_save('val')$$,
	'baseline_save: saves a named baseline');
SELECT is((SELECT count(*) FROM tenant_iso.baselines WHERE name = 'val'),
		  (SELECT count(*) FROM tenant_iso._security_state()),
	'baseline_save: one row per object of the security state');
SELECT ok((SELECT count(DISTINCT object_type) FROM tenant_iso.baselines WHERE name = 'val'
			  AND object_type IN ('protected_table', 'table_privileges', 'tenant', 'tenant_member', 'switcher', 'role',
								  'security_definer_function', 'foreign_server', 'subscription', 'replication_slot',
								  'extension', 'setting', 'tracked_table', 'approved_connection')) >= 14,
	'baseline_save: it covers tables, grants, tenants, members, switchers, roles, definer functions, connections, settings, tracked tables');
SELECT ok(NOT EXISTS (SELECT 1 FROM tenant_iso.baselines WHERE name = 'val' AND object LIKE 'pg\_%' AND object_type = 'role'),
	'baseline_save: system roles (pg_*) are left out');
SELECT is((SELECT state ~ '^sha256:[0-9a-f]{64}$' AND state <> current_setting('tenant_iso.master_key_command')
			 FROM tenant_iso.baselines
			WHERE name = 'val' AND object_type = 'setting' AND object = 'tenant_iso.master_key_command'),
	true,
	'baseline_save: the master key command is stored as a SHA-256 hash, never as is');
SELECT is(h.drift('val'), 'none',
	'drift: nothing right after baseline_save()');

CREATE ROLE val_new;
CREATE TABLE public.val_d_new (tenant_id text NOT NULL, id int, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('public.val_d_new') \g /dev/null
SELECT tenant_iso.revoke_switch('val_app_pool') \g /dev/null
ALTER TABLE public.val_orders NO FORCE ROW LEVEL SECURITY;
GRANT SELECT ON public.val_customers TO val_app_web;
ALTER ROLE val_app_web BYPASSRLS;
SET log_statement = 'all';
SELECT is(h.drift('val'),
	concat_ws(E'\n',
		'added protected_table public.val_d_new',
		'changed protected_table public.val_orders',
		'changed role val_app_web',
		'added role val_new',
		'changed setting log_statement',
		'removed switcher val_app_pool',
		'changed table_privileges public.val_customers',
		'added table_privileges public.val_d_new'),
	'drift: reports the added, removed and changed objects, and only those');
SELECT is((SELECT before || ' -> ' || after FROM tenant_iso.drift('val') WHERE object = 'public.val_orders'),
	'column=tenant_id type=text rls=true force=true via=- -> column=tenant_id type=text rls=true force=false via=-',
	'drift: before and after show the row-security change');
SELECT matches((SELECT after FROM tenant_iso.drift('val') WHERE object_type = 'role' AND object = 'val_app_web'),
	'bypassrls=true',
	'drift: the role change shows BYPASSRLS');
SELECT is((SELECT before || ' | ' || coalesce(after, 'NULL') FROM tenant_iso.drift('val') WHERE object_type = 'switcher'),
	'switcher | NULL',
	'drift: a removed object has no after');
RESET log_statement;
SELECT tenant_iso.baseline_save('val') \g /dev/null
SELECT is(h.drift('val'), 'none',
	'baseline_save: saving again replaces the baseline');
SELECT tenant_iso.baseline_save() \g /dev/null
SELECT is((SELECT count(*) FROM tenant_iso.drift()), 0::bigint,
	'baseline_save() and drift() default to the baseline "default"');

SELECT * FROM finish();

-- ---------------------------------------------------------------------
-- Cleanup: roles, the slot and the subscription are cluster-wide
-- ---------------------------------------------------------------------
RESET ROLE;
SET client_min_messages = error;
DROP SUBSCRIPTION IF EXISTS val_sub;
DO $$
DECLARE
	r text;
BEGIN
	IF EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'val_slot') THEN
		PERFORM pg_drop_replication_slot('val_slot');
	END IF;
	DELETE FROM tenant_iso.members WHERE member::text LIKE 'val\_%';
	DELETE FROM tenant_iso.switchers WHERE grantee::text LIKE 'val\_%';
	FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'val\_%' LOOP
		EXECUTE format('DROP OWNED BY %I CASCADE', r);
		EXECUTE format('DROP ROLE %I', r);
	END LOOP;
END
$$;
