-- scripts/demo.sql: a short, narrated tour of tenant_iso.
--
-- scripts/quickstart runs it against a fresh database, then swaps that
-- database in as "demo" (so a failed run never leaves "demo" half built):
--   psql -X -v ON_ERROR_STOP=1 -v demo_db=demo_next -U postgres -d demo_next -f scripts/demo.sql
-- The psql variable demo_db names the database it runs in (default demo).
-- It must run as a superuser, in a server that preloads tenant_iso and has
-- tenant_iso.master_key_command set.  It can be run again in the same
-- database: it drops and re-creates its own tables, and reuses its tenants.
-- Its roles (acme_app, globex_app, initech_app, app_pool, app_web) belong to
-- the whole cluster: they are created when missing and never dropped, so a
-- demo or walkthrough in another database that uses them cannot make this
-- script fail halfway.
--
-- Section 14 (noisy neighbours) starts psql and pgbench from the shell
-- (\!), as other sessions: the environment variable TI_DEMO_BIN names their
-- directory (scripts/quickstart sets it), or else they come from PATH.  It
-- takes about 15 seconds, and leaves acme with max_active_statements = 1.
--
-- The member and pool roles are entered with SET ROLE, which gives the
-- same tenant context as logging in as them.  Expected refusals are caught
-- in DO blocks and shown as NOTICEs with their SQLSTATE; the few raised by
-- row security while a statement runs are shown as plain psql ERRORs, with
-- ON_ERROR_STOP switched off just around them.

\if :{?demo_db}
\else
\set demo_db demo
\endif
\set QUIET on
\set VERBOSITY terse
\pset footer off
\pset null '(null)'

\echo
\echo '== 1. Setup: the extension, three tenants, their roles'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS tenant_iso;

-- leftovers of an earlier run: the replica copy of section 12; history
-- (section 13) disabled and its tables dropped; unprotect (so the registry
-- forgets them) and drop
DROP DATABASE IF EXISTS demo_replica WITH (FORCE);
DO $$
DECLARE
	r regclass;
	role_name text;
BEGIN
	FOR r IN SELECT rel FROM tenant_iso.history_tables
			  WHERE rel IN (to_regclass('public.orders'), to_regclass('public.customers')) LOOP
		PERFORM tenant_iso.disable_history(r);
	END LOOP;
	FOR r IN SELECT rel FROM tenant_iso.protected_tables
			  WHERE rel IN (to_regclass('public.orders'), to_regclass('public.customers')) LOOP
		PERFORM tenant_iso.unprotect(r);
	END LOOP;
	DROP TABLE IF EXISTS public.orders, public.customers, public.invoices;
	FOR role_name IN SELECT rolname FROM pg_roles
					  WHERE rolname IN ('acme_app', 'globex_app', 'initech_app', 'app_pool', 'app_web') LOOP
		IF EXISTS (SELECT 1 FROM tenant_iso.members m WHERE m.member = role_name::regrole) THEN
			PERFORM tenant_iso.remove_member(role_name::regrole);
		END IF;
		PERFORM tenant_iso.revoke_switch(role_name::regrole);
		EXECUTE format('DROP OWNED BY %I', role_name);
	END LOOP;
END $$;

-- tenants are kept between runs (their data keys refer to them)
SELECT tenant_iso.create_tenant(t.id, t.name)
  FROM (VALUES ('acme', 'Acme Corporation'), ('globex', 'Globex Corporation'),
			   ('initech', 'Initech (to be shredded)')) AS t(id, name)
 WHERE NOT EXISTS (SELECT 1 FROM tenant_iso.tenants x WHERE x.tenant_id = t.id)
\g /dev/null
-- initech's keys were shredded by an earlier run: give it a fresh key
SELECT tenant_iso.rotate_tenant_key('initech')
 WHERE NOT EXISTS (SELECT 1 FROM tenant_iso.keys WHERE tenant_id = 'initech' AND state = 'active')
   AND EXISTS (SELECT 1 FROM tenant_iso.keys WHERE tenant_id = 'initech')
\g /dev/null

-- one login role per tenant; a pool role that may switch; a role with no rights at all
-- (roles are cluster-wide: created when missing, with their attributes reset)
DO $$
DECLARE
	role_name text;
BEGIN
	FOREACH role_name IN ARRAY ARRAY['acme_app', 'globex_app', 'initech_app', 'app_pool', 'app_web'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
			EXECUTE format('CREATE ROLE %I LOGIN', role_name);
		END IF;
		EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT', role_name);
	END LOOP;
END $$;
SELECT tenant_iso.add_member('acme_app', 'acme'),
	   tenant_iso.add_member('globex_app', 'globex'),
	   tenant_iso.add_member('initech_app', 'initech'),
	   tenant_iso.grant_switch('app_pool')
\g /dev/null
-- no temporary objects for the pool role (validate() check temp_for_switcher):
-- PUBLIC has TEMP by default, so take it from PUBLIC
DO $$ BEGIN
	EXECUTE format('REVOKE TEMP ON DATABASE %I FROM PUBLIC', current_database());
END $$;
RESET client_min_messages;
SELECT tenant_id, display_name, status FROM tenant_iso.tenants
 WHERE tenant_id IN ('acme', 'globex', 'initech') ORDER BY 1;

\echo
\echo '== 2. A protected table: orders, keyed by (tenant_id, id)'
CREATE TABLE orders (
	tenant_id text NOT NULL,
	id int NOT NULL,
	item text,
	PRIMARY KEY (tenant_id, id)
);
SELECT tenant_iso.protect('orders') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON orders
	TO acme_app, globex_app, initech_app, app_pool, app_web;
SELECT rel, tenant_column FROM tenant_iso.protected_tables WHERE rel = 'orders'::regclass;

\echo
\echo '== 3. Each tenant writes and reads its own rows (tenant_id is filled in)'
SET ROLE acme_app;
INSERT INTO orders (id, item) VALUES (1, 'anvil'), (2, 'rocket skates');
SELECT current_user, tenant_iso.current_tenant(), * FROM orders ORDER BY id;
RESET ROLE;
SET ROLE globex_app;
INSERT INTO orders (id, item) VALUES (1, 'doomsday device');
SELECT current_user, tenant_iso.current_tenant(), * FROM orders ORDER BY id;
RESET ROLE;
\echo '-- the superuser is trusted and sees every tenant:'
SELECT * FROM orders ORDER BY tenant_id, id;

\echo
\echo '== 4. acme tries to reach globex''s rows'
SET ROLE acme_app;
SELECT count(*) AS globex_rows_visible FROM orders WHERE tenant_id = 'globex';
WITH u AS (UPDATE orders SET item = 'hacked' WHERE tenant_id = 'globex' RETURNING 1)
SELECT count(*) AS globex_rows_updated FROM u;
WITH d AS (DELETE FROM orders WHERE tenant_id = 'globex' RETURNING 1)
SELECT count(*) AS globex_rows_deleted FROM d;
\echo '-- planting a row for globex, then moving one of acme''s rows to globex (both refused):'
\set ON_ERROR_STOP off
INSERT INTO orders (tenant_id, id, item) VALUES ('globex', 99, 'planted');
UPDATE orders SET tenant_id = 'globex' WHERE id = 1;
\set ON_ERROR_STOP on
DO $$ BEGIN
	TRUNCATE orders;
EXCEPTION WHEN others THEN RAISE NOTICE 'TRUNCATE refused: % %', SQLSTATE, SQLERRM; END $$;
DO $$ BEGIN
	EXECUTE 'EXPLAIN ANALYZE SELECT * FROM orders';
EXCEPTION WHEN others THEN RAISE NOTICE 'EXPLAIN ANALYZE refused: % %', SQLSTATE, SQLERRM; END $$;

\echo
\echo '== 5. acme tries to take on another tenant''s context'
DO $$ BEGIN
	SET tenant_iso.tenant = 'globex';
EXCEPTION WHEN others THEN RAISE NOTICE 'SET refused: % %', SQLSTATE, SQLERRM; END $$;
DO $$ BEGIN
	PERFORM set_config('tenant_iso.tenant', 'globex', false);
EXCEPTION WHEN others THEN RAISE NOTICE 'set_config() refused: % %', SQLSTATE, SQLERRM; END $$;
DO $$ BEGIN
	PERFORM tenant_iso.set_tenant('globex');
EXCEPTION WHEN others THEN RAISE NOTICE 'set_tenant() refused: % %', SQLSTATE, SQLERRM; END $$;
SELECT tenant_iso.current_tenant() AS still_in;
RESET ROLE;

\echo
\echo '== 6. A pool role (switcher) serves every tenant, one transaction at a time'
SET ROLE app_pool;
SELECT tenant_iso.current_tenant() AS before_set_tenant;
\echo '-- without a context it fails closed:'
\set ON_ERROR_STOP off
SELECT count(*) FROM orders;
\set ON_ERROR_STOP on
BEGIN;
SELECT tenant_iso.set_tenant('globex', local => true) \g /dev/null
SELECT tenant_iso.current_tenant(), * FROM orders ORDER BY id;
COMMIT;
BEGIN;
SELECT tenant_iso.set_tenant('acme', local => true) \g /dev/null
SELECT tenant_iso.current_tenant(), * FROM orders ORDER BY id;
COMMIT;
SELECT tenant_iso.current_tenant() AS after_commit;
RESET ROLE;

\echo
\echo '== 7. A signed token lets a role with no rights enter one tenant'
-- an authentication service (here the superuser) issues it; keep it out of logs
SELECT set_config('demo.token', tenant_iso.issue_token('acme', '5 minutes'), false) \g /dev/null
SELECT left(current_setting('demo.token'), 12) || '...' AS token,
	   length(current_setting('demo.token')) AS length;
SET ROLE app_web;
DO $$ BEGIN
	PERFORM tenant_iso.set_tenant('acme');
EXCEPTION WHEN others THEN RAISE NOTICE 'set_tenant() without the switch right refused: % %', SQLSTATE, SQLERRM; END $$;
DO $$
DECLARE
	tok text := current_setting('demo.token');
	bad text := overlay(tok PLACING CASE WHEN substr(tok, 30, 1) = 'A' THEN 'B' ELSE 'A' END FROM 30 FOR 1);
BEGIN
	PERFORM tenant_iso.set_tenant_token(bad);
EXCEPTION WHEN others THEN RAISE NOTICE 'altered token refused: % %', SQLSTATE, SQLERRM; END $$;
BEGIN;
SELECT tenant_iso.set_tenant_token(current_setting('demo.token'), local => true) \g /dev/null
SELECT tenant_iso.current_tenant(), count(*) AS orders FROM orders;
COMMIT;
RESET ROLE;
RESET demo.token;

\echo
\echo '== 8. Column encryption: acme stores an encrypted SSN and a blind index'
CREATE TABLE customers (
	tenant_id text NOT NULL,
	id int NOT NULL,
	name text,
	ssn bytea,				-- tenant_iso.encrypt(..., 'customers.ssn')
	ssn_bidx bytea,			-- tenant_iso.blind_index(..., 'customers.ssn')
	PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ON customers (tenant_id, ssn_bidx);
SELECT tenant_iso.protect('customers') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON customers TO acme_app, globex_app, initech_app;
SET ROLE acme_app;
INSERT INTO customers (id, name, ssn, ssn_bidx)
VALUES (1, 'Wile E. Coyote',
		tenant_iso.encrypt('123-45-6789', 'customers.ssn'),
		tenant_iso.blind_index('123-45-6789', 'customers.ssn'));
SELECT id, name, length(ssn) AS ciphertext_bytes,
	   tenant_iso.decrypt_text(ssn, 'customers.ssn') AS ssn
  FROM customers;
\echo '-- equality search without decrypting, through the blind index:'
SELECT id, name FROM customers
 WHERE ssn_bidx = tenant_iso.blind_index('123-45-6789', 'customers.ssn');
DO $$
DECLARE
	c bytea := (SELECT ssn FROM customers WHERE id = 1);
BEGIN
	PERFORM tenant_iso.decrypt_text(c, 'customers.name');
EXCEPTION WHEN others THEN RAISE NOTICE 'decrypting under another context: % %', SQLSTATE, SQLERRM; END $$;
RESET ROLE;
SET ROLE globex_app;
INSERT INTO customers (id, name, ssn)
VALUES (1, 'Hank Scorpio', tenant_iso.encrypt('219-09-9999', 'customers.ssn'));
RESET ROLE;

\echo
\echo '== 9. Someone with disk access copies acme''s ciphertext into globex''s row'
BEGIN;
UPDATE customers g SET ssn = a.ssn
  FROM customers a
 WHERE a.tenant_id = 'acme' AND a.id = 1 AND g.tenant_id = 'globex' AND g.id = 1;
SET ROLE globex_app;
DO $$
DECLARE
	c bytea := (SELECT ssn FROM customers WHERE id = 1);
BEGIN
	PERFORM tenant_iso.decrypt_text(c, 'customers.ssn');
EXCEPTION WHEN others THEN RAISE NOTICE 'globex opening acme''s ciphertext: % %', SQLSTATE, SQLERRM; END $$;
ROLLBACK;

\echo
\echo '== 10. Key rotation: a new key version, then re-encryption in the background'
SELECT tenant_iso.rotate_tenant_key('acme') AS new_acme_version;
SELECT tenant_id, tenant_iso.key_version(ssn) AS ciphertext_version,
	   (SELECT max(version) FROM tenant_iso.keys k
		 WHERE k.tenant_id = c.tenant_id AND k.state = 'active') AS active_version
  FROM customers c ORDER BY 1;
SELECT tenant_iso.reencrypt('customers', 'ssn', 'customers.ssn') AS values_reencrypted;
SELECT tenant_id, tenant_iso.key_version(ssn) AS ciphertext_version FROM customers ORDER BY 1;
SET ROLE acme_app;
SELECT tenant_iso.decrypt_text(ssn, 'customers.ssn') AS ssn,
	   ssn_bidx = tenant_iso.blind_index('123-45-6789', 'customers.ssn') AS blind_index_still_matches
  FROM customers;
\echo '-- blind indexes follow the key version: recompute them as the tenant'
UPDATE customers
   SET ssn_bidx = tenant_iso.blind_index(tenant_iso.decrypt_text(ssn, 'customers.ssn'), 'customers.ssn');
SELECT id, name FROM customers
 WHERE ssn_bidx = tenant_iso.blind_index('123-45-6789', 'customers.ssn');
RESET ROLE;

\echo
\echo '== 11. Crypto-shredding: initech leaves, its keys are destroyed'
SET ROLE initech_app;
INSERT INTO customers (id, name, ssn)
VALUES (1, 'Peter Gibbons', tenant_iso.encrypt('078-05-1120', 'customers.ssn'));
SELECT id, name, tenant_iso.decrypt_text(ssn, 'customers.ssn') AS ssn FROM customers;
RESET ROLE;
SELECT tenant_iso.shred_tenant('initech') AS keys_destroyed \g /dev/null
SELECT state, count(*) AS initech_keys FROM tenant_iso.keys WHERE tenant_id = 'initech' GROUP BY state;
SET ROLE initech_app;
DO $$
DECLARE
	c bytea := (SELECT ssn FROM customers WHERE id = 1);
BEGIN
	PERFORM tenant_iso.decrypt_text(c, 'customers.ssn');
EXCEPTION WHEN others THEN RAISE NOTICE 'after shred_tenant(): % %', SQLSTATE, SQLERRM; END $$;
SELECT id, name, length(ssn) AS ciphertext_bytes FROM customers;
RESET ROLE;

\echo
\echo '== 12. Replication integrity: a copy drifts, verify() notices, diff_peer() finds the rows, repair fixes them'
SELECT tenant_iso.track('orders') \g /dev/null
SELECT tenant_iso.compact_digests() \g /dev/null
SELECT rel, tenant_id, rows, ok FROM tenant_iso.verify() ORDER BY 2;
SELECT current_setting('port') AS demo_port \gset
\echo '-- a copy of the database plays the replica (CREATE DATABASE ... TEMPLATE demo)'
\c postgres
-- (a template must have no other connections)
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE datname = :'demo_db' AND pid <> pg_backend_pid() \g /dev/null
CREATE DATABASE demo_replica TEMPLATE :"demo_db";
\c demo_replica
\echo '-- behind replication''s back (session_replication_role = replica, no triggers),'
\echo '-- a globex row is changed, an acme row is lost and a phantom acme row appears:'
SET session_replication_role = replica;
UPDATE orders SET item = 'tampered' WHERE tenant_id = 'globex';
DELETE FROM orders
 WHERE (tenant_id, id) = (SELECT tenant_id, id FROM orders WHERE tenant_id = 'acme' ORDER BY id LIMIT 1);
INSERT INTO orders VALUES ('acme', 99, 'phantom');
RESET session_replication_role;
\echo '-- verify() on the replica compares its rows with the digests it carries:'
SELECT rel, tenant_id, rows, ok FROM tenant_iso.verify() ORDER BY 2;
\echo '-- diff_peer() against the primary locates the rows (only differing buckets are fetched):'
SELECT * FROM tenant_iso.diff_peer('orders', format('host=127.0.0.1 port=%s user=postgres dbname=%s sslmode=disable', :'demo_port', :'demo_db'))
 ORDER BY 1, 2;
\echo '-- the repair runs under session_replication_role = replica too: the rows changed behind'
\echo '-- the triggers'' back, and the stored digests, which are right, must stay as they are:'
SET session_replication_role = replica;
SELECT * FROM tenant_iso.repair_from_peer('orders', format('host=127.0.0.1 port=%s user=postgres dbname=%s sslmode=disable', :'demo_port', :'demo_db'),
                                          dry_run => false)
 ORDER BY 1, 2;
RESET session_replication_role;
\echo '-- after the repair, no difference, and the replica''s rows match its digests again:'
SELECT count(*) AS differences
  FROM tenant_iso.diff_peer('orders', format('host=127.0.0.1 port=%s user=postgres dbname=%s sslmode=disable', :'demo_port', :'demo_db'));
SELECT rel, tenant_id, rows, ok FROM tenant_iso.verify() ORDER BY 2;
\c :demo_db

\echo
\echo '== 13. Self-service restore: acme deletes rows by mistake, undeletes them, then rewinds'
\echo '-- the owner (here the superuser) enables history on both tables:'
SELECT tenant_iso.enable_history('orders') AS orders_history,
	   tenant_iso.enable_history('customers') AS customers_history;
SET ROLE acme_app;
INSERT INTO orders (id, item) VALUES (3, 'giant magnet'), (4, 'tornado seeds');
\echo '-- a cleanup meant for one order runs without its WHERE clause (row security keeps it to acme):'
DELETE FROM orders;
SELECT count(*) AS acme_orders_left FROM orders;
\echo '-- acme''s recycle bin (deleted_rows, the last day by default) lists them:'
SELECT (key ->> 'id')::int AS id, image ->> 'item' AS item FROM tenant_iso.deleted_rows('orders') ORDER BY 1;
\echo '-- undelete one key, then all that was deleted in the last hour:'
SELECT * FROM tenant_iso.undelete('orders', now() - interval '1 hour',
								   key => '{"tenant_id": "acme", "id": 1}');
SELECT * FROM tenant_iso.undelete('orders', now() - interval '1 hour');
SELECT * FROM orders ORDER BY id;
RESET ROLE;

\echo '-- a point in time before the next mistake (psql keeps it in :before_batch):'
SELECT clock_timestamp() AS before_batch \gset
SET ROLE acme_app;
\echo '-- a faulty batch job renames every order, deletes the customer and adds junk:'
UPDATE orders SET item = 'DISCONTINUED';
DELETE FROM customers;
INSERT INTO orders (id, item) VALUES (100, 'junk'), (101, 'junk');
RESET ROLE;
\echo '-- meanwhile globex keeps working:'
SET ROLE globex_app;
UPDATE orders SET item = 'doomsday device, mark II' WHERE id = 1;
INSERT INTO orders (id, item) VALUES (2, 'hammock');
RESET ROLE;
SET ROLE acme_app;
\echo '-- acme reads its orders as they were (as_of needs a column definition list):'
SELECT * FROM tenant_iso.as_of('orders', :'before_batch') AS o(tenant_id text, id int, item text)
 ORDER BY id;
\echo '-- what a rewind of all of acme''s tables would change (dry run), then the rewind:'
SELECT * FROM tenant_iso.restore_tenant(:'before_batch', dry_run => true) ORDER BY 1;
SELECT * FROM tenant_iso.restore_tenant(:'before_batch') ORDER BY 1;
SELECT * FROM orders ORDER BY id;
SELECT id, name, tenant_iso.decrypt_text(ssn, 'customers.ssn') AS ssn FROM customers;
\echo '-- acme cannot read or rewind globex''s history:'
DO $$ BEGIN
	PERFORM * FROM tenant_iso.deleted_rows('orders', tenant => 'globex');
EXCEPTION WHEN others THEN RAISE NOTICE 'deleted_rows() for globex refused: % %', SQLSTATE, SQLERRM; END $$;
DO $$ BEGIN
	PERFORM * FROM tenant_iso.restore_tenant(now(), tenant => 'globex');
EXCEPTION WHEN others THEN RAISE NOTICE 'restore_tenant() for globex refused: % %', SQLSTATE, SQLERRM; END $$;
DO $$ BEGIN
	PERFORM * FROM tenant_iso_history."public.orders";
EXCEPTION WHEN others THEN RAISE NOTICE 'reading the history table directly refused: % %', SQLSTATE, SQLERRM; END $$;
RESET ROLE;
\echo '-- globex''s rows are as globex left them, and every tenant''s digests still verify:'
SELECT * FROM orders ORDER BY tenant_id, id;
SELECT rel, tenant_id, rows, ok FROM tenant_iso.verify() ORDER BY 2;
\echo '-- an administrator names the tenant it acts for; here globex''s changes since the rewind point:'
SELECT op, (key ->> 'id')::int AS id, image ->> 'item' AS old_item
  FROM tenant_iso.history('orders', :'before_batch', tenant => 'globex') ORDER BY changed_at;

\echo
\echo '== 14. Noisy neighbours: acme runs heavy reports, globex keeps its speed'
-- The other sessions are started from the shell (\!): acme's reports in the
-- background, four psql sessions (application_name demo_noisy), and
-- globex's point selects, one pgbench client for 2 seconds.
-- scripts/quickstart sets TI_DEMO_BIN to the server's bin directory;
-- without it psql and pgbench come from PATH.
SELECT current_setting('port') AS demo_port \gset
\setenv PGHOST 127.0.0.1
\setenv PGPORT :demo_port
\setenv PGDATABASE :demo_db
\setenv DEMO_ACME_REPORTS 'for i in 1 2 3 4; do PGAPPNAME=demo_noisy "${TI_DEMO_BIN:+$TI_DEMO_BIN/}psql" -X -q -U acme_app -c "SELECT sum(a * b) FROM generate_series(1, 20000) a, generate_series(1, 1000) b" >/dev/null 2>&1 & done'
\setenv DEMO_GLOBEX_SELECTS 'echo "SELECT item FROM orders WHERE id = 1;" | "${TI_DEMO_BIN:+$TI_DEMO_BIN/}pgbench" -n -M prepared -T 2 -c 1 -f - -U globex_app 2>&1 | awk ''/^latency average/ { lat = $4 } /^tps/ { tps = int($3) } END { if (lat == "") print "   (pgbench did not run)"; else print "   globex, 1 client for 2 s: " lat " ms per point select, " tps " per second" }'''
CREATE FUNCTION pg_temp.wait_for_reports(running int, waiting int DEFAULT 0) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	-- until acme's background sessions are all active (running > 0), with
	-- that many waiting for admission, or all gone (running = 0)
	FOR i IN 1..300 LOOP
		PERFORM pg_stat_clear_snapshot();
		IF (SELECT count(*) FILTER (WHERE running = 0 OR state = 'active') = running
				   AND count(*) FILTER (WHERE wait_event_type = 'Extension') >= waiting
			  FROM pg_stat_activity WHERE application_name = 'demo_noisy') THEN
			RETURN;
		END IF;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RAISE EXCEPTION 'acme''s background reports did not %', CASE WHEN running = 0 THEN 'end' ELSE 'start' END
		USING HINT = 'psql and pgbench must be on PATH, or TI_DEMO_BIN must name their directory.';
END $$;
CREATE VIEW pg_temp.neighbours AS
	SELECT tenant, statements, round(exec_time_ms::numeric, 1) AS exec_ms,
		   round(cpu_time_ms::numeric, 1) AS cpu_ms, active_statements AS active,
		   sessions_in_context AS sessions, throttled, rejected
	  FROM tenant_iso.tenant_stats WHERE tenant IN ('acme', 'globex') ORDER BY tenant;
-- no limits of an earlier run
SELECT tenant_iso.set_tenant_limits('acme') \g /dev/null
SELECT tenant_iso.reset_tenant_stats() \g /dev/null
\echo '-- acme is idle; globex runs its point selects:'
\! sh -c "$DEMO_GLOBEX_SELECTS"
\echo '-- tenant_stats before (superuser, outside any tenant context):'
SELECT * FROM pg_temp.neighbours;
\echo '-- acme starts four heavy reports at once, with no limit: tenant_stats shows acme'
\echo '-- with four statements active, and globex runs again meanwhile:'
\! sh -c "$DEMO_ACME_REPORTS"
SELECT pg_temp.wait_for_reports(4) \g /dev/null
SELECT pg_sleep(0.3) \g /dev/null
SELECT * FROM pg_temp.neighbours;
\! sh -c "$DEMO_GLOBEX_SELECTS"
SELECT pg_temp.wait_for_reports(0) \g /dev/null
\echo '-- the administrator holds acme to one statement at a time:'
SELECT tenant_iso.set_tenant_limits('acme', max_active_statements => 1) \g /dev/null
SELECT tenant, max_active_statements, own_limits FROM tenant_iso.tenant_limits WHERE tenant = 'acme';
\echo '-- acme starts four reports again: one runs, three wait in line (wait_event_type Extension):'
\! sh -c "$DEMO_ACME_REPORTS"
SELECT pg_temp.wait_for_reports(4, 3) \g /dev/null
SELECT usename, state, coalesce(wait_event_type, '-') AS wait_event_type, count(*)
  FROM pg_stat_activity WHERE application_name = 'demo_noisy' GROUP BY 1, 2, 3 ORDER BY 3;
\! sh -c "$DEMO_GLOBEX_SELECTS"
\echo '-- acme is held to its limit (active 1; throttled counts the reports that waited);'
\echo '-- compare globex''s speed with the two runs above:'
SELECT * FROM pg_temp.neighbours;
SELECT pg_temp.wait_for_reports(0) \g /dev/null
\echo '-- tenant_stats after: every report ran, one at a time, and none was rejected'
\echo '-- (the server log says: tenant_iso: tenant "acme" is held back by its limit max_active_statements = 1):'
SELECT * FROM pg_temp.neighbours;
DROP VIEW pg_temp.neighbours;
DROP FUNCTION pg_temp.wait_for_reports(int, int);

\echo
\echo '== 15. Self-healing integrity: a corrupted row heals itself, with no operator'
-- scripts/quickstart runs the server with tenant_iso.monitor_databases =
-- 'demo_replica' and tenant_iso.verify_interval = 5s: the integrity monitor
-- watches demo_replica (the copy of section 12), with this database as its peer.
\c demo_replica
SELECT tenant_iso.add_peer('primary', format('host=127.0.0.1 port=%s user=postgres dbname=%s sslmode=disable', :'demo_port', :'demo_db'), 'primary') \g /dev/null
CREATE FUNCTION pg_temp.wait_for_state(want text, t text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..900 LOOP
		IF EXISTS (SELECT 1 FROM tenant_iso.integrity_status WHERE state = want AND (t IS NULL OR tenant_id = t))
		   AND NOT EXISTS (SELECT 1 FROM tenant_iso.integrity_status WHERE t IS NULL AND state <> want) THEN
			RETURN;
		END IF;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RAISE EXCEPTION 'the integrity monitor did not report % within 90 s', want
		USING HINT = 'Is tenant_iso.monitor_databases = ''demo_replica'' set (scripts/quickstart sets it, then restarts the server)?';
END $$;
\echo '-- this copy is not replicated: it is brought up to date with the primary first'
\echo '-- (sections 13 and 14 changed orders there), as replication would:'
SELECT count(*) AS rows_brought_up_to_date
  FROM tenant_iso.repair_from_peer('orders', format('host=127.0.0.1 port=%s user=postgres dbname=%s sslmode=disable', :'demo_port', :'demo_db'),
                                   dry_run => false);
\echo '-- cases the monitor quarantined meanwhile, if any (no peer yet, or two copies that differed:'
\echo '-- that was the demo), are closed:'
SELECT kind, tenant_id, detail FROM tenant_iso.integrity_events WHERE kind = 'quarantined' ORDER BY event_id;
SELECT tenant_iso.acknowledge(e.event_id, 'repaired by hand with repair_from_peer() (demo section 12)')
  FROM tenant_iso.integrity_events e
 WHERE e.kind = 'quarantined'
   AND NOT EXISTS (SELECT 1 FROM tenant_iso.integrity_events a WHERE a.ref = e.event_id AND a.kind = 'acknowledged') \g /dev/null
SELECT pg_temp.wait_for_state('ok');
\echo '-- integrity_status, as the monitor''s worker last saw it (every 5 s):'
SELECT rel, tenant_id, peer, state, rows_repaired FROM tenant_iso.integrity_status ORDER BY 2;
\echo '-- a disk fault changes an acme row here: the row changes, its stored digests do not'
\echo '-- (played by a write with the triggers off):'
SET session_replication_role = replica;
UPDATE orders SET item = 'bit-flipped' WHERE (tenant_id, id) = (SELECT tenant_id, id FROM orders WHERE tenant_id = 'acme' ORDER BY id LIMIT 1);
RESET session_replication_role;
SELECT clock_timestamp() AS corrupted_at \gset
SELECT tenant_id, id, item FROM orders WHERE item = 'bit-flipped';
\echo '-- ... nobody does anything; the monitor notices within one interval, finds that the'
\echo '-- primary has the same stored digest and verifies, repairs the row, checks it:'
SELECT pg_temp.wait_for_state('repaired', 'acme');
SELECT round(extract(epoch FROM clock_timestamp() - :'corrupted_at'::timestamptz)) AS healed_after_seconds;
SELECT rel, tenant_id, peer, state, rows_repaired, detail FROM tenant_iso.integrity_status ORDER BY 2;
SELECT kind, tenant_id, peer, detail FROM tenant_iso.integrity_events WHERE at > :'corrupted_at' ORDER BY event_id;
SELECT count(*) AS rows_still_corrupt FROM orders WHERE item = 'bit-flipped';
SELECT rel, tenant_id, ok FROM tenant_iso.verify() ORDER BY 2;
DROP FUNCTION pg_temp.wait_for_state(text, text);
\c :demo_db

\echo
\echo '== 16. Architecture validation: the database audits its own posture'
\pset footer on
SELECT severity, check_id, object FROM tenant_iso.validate();
SELECT tenant_iso.baseline_save('demo') \g /dev/null
\echo '-- someone adds a table with tenant data and forgets protect():'
CREATE TABLE invoices (tenant_id text NOT NULL, id int NOT NULL, total numeric, PRIMARY KEY (tenant_id, id));
SELECT severity, check_id, object, remedy FROM tenant_iso.validate() WHERE severity IN ('critical', 'high');
\echo '-- someone gives the web role CREATEROLE; drift() from the saved baseline shows it:'
ALTER ROLE app_web CREATEROLE;
SELECT change, object_type, object, before, after FROM tenant_iso.drift('demo');
ALTER ROLE app_web NOCREATEROLE;
DROP TABLE invoices;
\pset footer off

\echo
\echo 'Done.  Try it yourself: SET ROLE acme_app; SELECT * FROM orders;'
