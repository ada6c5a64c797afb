#!/usr/bin/env bash
# test/cluster/t_validate_cron.sh: validate(), drift() and verify() on a
# schedule with a real pg_cron, as the README's "Scheduling" section shows.
#
#  - A node preloads tenant_iso and pg_cron (cron.database_name = 'app',
#    background workers).  In app: a findings table, a drift table, a
#    baseline, a tracked table, and a planted weakness: public.leaky has a
#    tenant_id column and is not protected.
#  - Jobs run INSERT INTO audit.findings SELECT now(), * FROM
#    tenant_iso.validate(), the same for drift(), and verify().  pg_cron
#    1.5 and later take '1 second'; older ones (Debian 12 ships 1.4) only
#    minutes, so the script falls back to '* * * * *' and waits up to 150 s.
#  - The finding for public.leaky, the added role in audit.drift and the
#    verify_runs rows must land, and cron.job_run_details must say succeeded.
#  - Crypto posture: with a master key command that fails, validate()
#    reports it (high); with the key back, it does not.
#
# nodes: 1
# needs: pg_cron
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 11
WAIT=${CRON_WAIT:-150}

node_init main "shared_preload_libraries = 'tenant_iso,pg_cron'" "cron.database_name = 'app'" \
	"cron.use_background_workers = on"
node_start main
node_psql main postgres "CREATE DATABASE app"
node_restart main   # pg_cron's launcher attaches to cron.database_name when it starts

node_psql main app "
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
CREATE SCHEMA audit;
CREATE TABLE audit.findings (run_at timestamptz NOT NULL, severity text, check_id text, object text,
                             detail text, remedy text, controls text[]);
CREATE TABLE audit.drift (run_at timestamptz NOT NULL, change text, object_type text, object text,
                          before text, after text);
SELECT tenant_iso.create_tenant('acme') \\g /dev/null
CREATE TABLE public.notes (tenant_id text NOT NULL, id int, body text, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('public.notes') \\g /dev/null
INSERT INTO public.notes VALUES ('acme', 1, 'one');
SELECT tenant_iso.track('public.notes') \\g /dev/null
SELECT tenant_iso.baseline_save() \\g /dev/null
-- the planted weakness, and a change since the baseline
CREATE TABLE public.leaky (tenant_id text, note text);
CREATE ROLE cron_new;
"

is "$(node_psql main app "SELECT to_regprocedure('tenant_iso.validate()') IS NOT NULL
	AND to_regprocedure('tenant_iso.drift(text)') IS NOT NULL")" t \
	"validate() and drift() are installed with the extension"
ok_cmd "CREATE EXTENSION pg_cron" node_psql main app "CREATE EXTENSION pg_cron"
diag "pg_cron $(node_psql main app "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")"

# schedule NAME COMMAND: every second if pg_cron takes it, else every minute
schedule() {
	node_psql main app "SELECT cron.schedule('$1', '1 second', \$cmd\$$2\$cmd\$)" >/dev/null 2>&1 ||
		node_psql main app "SELECT cron.schedule('$1', '* * * * *', \$cmd\$$2\$cmd\$)" >/dev/null
}
ok_cmd "cron.schedule ti_validate: INSERT INTO audit.findings SELECT now(), * FROM tenant_iso.validate()" \
	schedule ti_validate 'INSERT INTO audit.findings SELECT now(), * FROM tenant_iso.validate()'
ok_cmd "cron.schedule ti_drift: INSERT INTO audit.drift SELECT now(), * FROM tenant_iso.drift()" \
	schedule ti_drift 'INSERT INTO audit.drift SELECT now(), * FROM tenant_iso.drift()'
ok_cmd "cron.schedule ti_verify: SELECT count(*) FROM tenant_iso.verify()" \
	schedule ti_verify 'SELECT count(*) FROM tenant_iso.verify()'
diag "schedules: $(node_psql main app "SELECT string_agg(jobname || ' ' || schedule, ', ' ORDER BY jobname) FROM cron.job")"

# wait_for SQL: poll until SQL returns t, at most $WAIT seconds
wait_for() {
	local i
	for ((i = 0; i < WAIT; i++)); do
		[ "$(node_psql main app "$1" 2>/dev/null)" = t ] && return 0
		sleep 1
	done
	diag "timed out after ${WAIT}s waiting for: $1"
	diag "job runs: $(node_psql main app "SELECT string_agg(format('%s %s %s', j.jobname, d.status, d.return_message), '; ')
		FROM cron.job_run_details d JOIN cron.job j USING (jobid)" 2>&1)"
	return 1
}

ok_cmd "the scheduled validate() reports the planted unprotected table public.leaky" \
	wait_for "SELECT EXISTS (SELECT 1 FROM audit.findings
		WHERE check_id = 'unprotected_table' AND object = 'public.leaky' AND severity = 'critical')"
is "$(node_psql main app "SELECT string_agg(DISTINCT d.status, ',') FROM cron.job_run_details d
	JOIN cron.job j USING (jobid) WHERE j.jobname = 'ti_validate' AND d.status IN ('succeeded', 'failed')")" succeeded \
	"cron.job_run_details: the ti_validate runs succeeded"
ok_cmd "the scheduled drift() reports the role created after the baseline" \
	wait_for "SELECT EXISTS (SELECT 1 FROM audit.drift
		WHERE change = 'added' AND object_type = 'role' AND object = 'cron_new')"
ok_cmd "the scheduled verify() ran and recorded public.notes in verify_runs" \
	wait_for "SELECT EXISTS (SELECT 1 FROM tenant_iso.verify_runs WHERE relname = 'public.notes' AND ok)
		AND EXISTS (SELECT 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
					 WHERE j.jobname = 'ti_verify' AND d.status = 'succeeded')"

node_psql main app "SELECT cron.unschedule(jobname) FROM cron.job" >/dev/null

# ---- crypto posture: the master key
node_psql main app "ALTER SYSTEM SET tenant_iso.master_key_command = 'false'" >/dev/null
node_psql main app "SELECT pg_reload_conf()" >/dev/null
ok_cmd "validate(): a master key command that fails is reported (high, crypto_posture)" \
	wait_for "SELECT EXISTS (SELECT 1 FROM tenant_iso.validate() WHERE check_id = 'crypto_posture'
		AND object = 'tenant_iso.master_key_command' AND severity = 'high'
		AND controls = ARRAY['encryption-at-rest'])"
node_psql main app "ALTER SYSTEM RESET tenant_iso.master_key_command" >/dev/null
node_psql main app "SELECT pg_reload_conf()" >/dev/null
ok_cmd "validate(): with the master key back, nothing about it" \
	wait_for "SELECT NOT EXISTS (SELECT 1 FROM tenant_iso.validate() WHERE check_id = 'crypto_posture'
		AND object = 'tenant_iso.master_key_command')"

tap_done
