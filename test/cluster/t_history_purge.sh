#!/usr/bin/env bash
# test/cluster/t_history_purge.sh: the history purge worker (issue 13).
#
#  - A node with tenant_iso.history_purge_databases = 'app' and
#    history_purge_interval = '1s' starts one "tenant_iso history purge"
#    worker for app, which waits without error while the extension is not
#    installed (a database that does not exist yet is retried every 10 s).
#  - acme's history has a 1-second retention (set_history_retention), globex
#    keeps the default (30 days): the worker removes acme's old history rows
#    and leaves every globex row, with no purge_history() call by anyone.
#  - Under a superuser-created trap (a public function named like the
#    functions purge uses, and search_path set for the database), the
#    worker's purge still runs only pg_catalog and tenant_iso code: the trap
#    records nothing.
#  - The worker stops with a fast shutdown and comes back after a restart.
#
# nodes: 1
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 8

node_init main "tenant_iso.history_purge_databases = 'app'" "tenant_iso.history_purge_interval = '1s'"
node_start main
node_psql main postgres "CREATE DATABASE app"
node_restart main	# the worker connects to app when it starts (or retries every 10 s)

workers() {
	node_psql main postgres "SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'tenant_iso history purge' AND datname = 'app'"
}
wait_for() {	# wait_for SQL EXPECTED: poll for up to 30 s
	local i got
	for i in $(seq 1 60); do
		got=$(node_psql main app "$1" 2>/dev/null || true)
		[ "$got" = "$2" ] && break
		sleep 0.5
	done
	echo "$got"
}

is "$(wait_for "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tenant_iso history purge'" 1)" 1 \
	"one purge worker runs for the listed database, before the extension exists"

node_psql main app "
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
SELECT tenant_iso.create_tenant('acme'), tenant_iso.create_tenant('globex') \\g /dev/null
CREATE TABLE public.notes (tenant_id text NOT NULL, id int, body text, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('public.notes') \\g /dev/null
SELECT tenant_iso.enable_history('public.notes') \\g /dev/null
CREATE TABLE public.trap_log (who text, at timestamptz DEFAULT now());
GRANT INSERT ON public.trap_log TO PUBLIC;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql
	AS \$\$ INSERT INTO public.trap_log (who) VALUES (current_user) RETURNING clock_timestamp() \$\$;
CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE sql
	AS \$\$ INSERT INTO public.trap_log (who) VALUES (current_user) RETURNING '1 second' \$\$;
ALTER DATABASE app SET search_path = public, pg_catalog;
SELECT tenant_iso.set_history_retention('acme', interval '1 second') \\g /dev/null
"
node_psql main app "
INSERT INTO public.notes SELECT t, g, 'v' FROM unnest(ARRAY['acme', 'globex']) t, generate_series(1, 5) g;
UPDATE public.notes SET body = 'w';
DELETE FROM public.notes WHERE id > 3;
"
is "$(node_psql main app "SELECT tenant_id || ':' || count(*) FROM tenant_iso_history.\"public.notes\"
	GROUP BY tenant_id ORDER BY 1" | paste -sd' ')" "acme:12 globex:12" \
	"both tenants have history: 5 inserts, 5 updates and 2 deletes each (the updates' old images included)"

is "$(wait_for "SELECT count(*) FROM tenant_iso_history.\"public.notes\" WHERE tenant_id = 'acme'" 0)" 0 \
	"the worker removes acme's history (retention 1 second) without anyone calling purge_history()"
is "$(node_psql main app "SELECT count(*) FROM tenant_iso_history.\"public.notes\" WHERE tenant_id = 'globex'")" 12 \
	"and keeps every globex row (default retention 30 days)"
is "$(node_psql main app "SELECT count(*) FROM public.trap_log")" 0 \
	"the worker's purge ran none of the public shadows of now() and current_setting()"
is "$(node_psql main app "SELECT count(*) FROM public.notes")" 6 "the table itself is untouched"

node_restart main
is "$(wait_for "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tenant_iso history purge'" 1)" 1 \
	"the worker is back after a restart"
ok_cmd "no purge worker error in the server log" \
	bash -c "! grep -E 'ERROR|FATAL' '$(node_datadir main)/server.log' | grep -v 'terminating background worker' | grep -q ."
tap_done
