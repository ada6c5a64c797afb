#!/usr/bin/env bash
# test/cluster/t_query_text.sh: tenant_query_stats with pg_stat_statements
# loaded (issue 14).
#
# One node with shared_preload_libraries = 'pg_stat_statements,tenant_iso'
# and tenant_iso.track_queries = on.  Tenants qa and qb run the same query
# shape with different comments (one queryid, two texts).  Then:
#  - a pg_read_all_stats reader outside any context sees both tenants'
#    queries with their normalised text from pg_stat_statements;
#  - in qa's context the view lists only qa's queries, and their query
#    column is NULL: qb's comment never reaches qa;
#  - without pg_stat_statements installed in the database the column is
#    NULL for everybody and the view still works.
#
# nodes: 1
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 7

node_init n1 "shared_preload_libraries = 'pg_stat_statements,tenant_iso'" \
	"tenant_iso.track_queries = on" "compute_query_id = on"
node_start n1
node_psql n1 postgres "
SET client_min_messages = warning;
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION tenant_iso;
CREATE ROLE qt_pool LOGIN;
CREATE ROLE qt_reader LOGIN;
GRANT pg_read_all_stats TO qt_reader;
SELECT tenant_iso.grant_switch('qt_pool') \\g /dev/null
SELECT tenant_iso.create_tenant('qa') \\g /dev/null
SELECT tenant_iso.create_tenant('qb') \\g /dev/null
"
node_psql_as n1 qt_pool postgres "
SELECT tenant_iso.set_tenant('qb') \\g /dev/null
SELECT /* secret-of-qb */ 4711 \\g /dev/null
SELECT tenant_iso.set_tenant('qa') \\g /dev/null
SELECT /* plain */ 42 \\g /dev/null
"

QSQL="SELECT coalesce(tenant, '-') || ':' || coalesce(query, '<null>') FROM tenant_iso.tenant_query_stats
	WHERE query LIKE '%\$1%' OR query IS NULL ORDER BY 1"
out=$(node_psql_as n1 qt_reader postgres "$QSQL")
case "$out" in
*"qb:"*"secret-of-qb"*) ok 0 "a pg_read_all_stats reader sees qb's query text" ;;
*) ok 1 "a pg_read_all_stats reader sees qb's query text"; diag "got: $out" ;;
esac
is "$(node_psql_as n1 qt_reader postgres "SELECT count(*) FROM tenant_iso.tenant_query_stats WHERE tenant = 'qa' AND query IS NOT NULL AND query LIKE 'SELECT%\$1'")" \
	"1" "... and qa's, normalised by pg_stat_statements"

in_qa="SELECT tenant_iso.set_tenant('qa') \\g /dev/null
"
is "$(node_psql_as n1 qt_pool postgres "${in_qa}SELECT count(*) FROM tenant_iso.tenant_query_stats WHERE tenant IS DISTINCT FROM 'qa'")" \
	"0" "in qa's context only qa's queries are listed"
is "$(node_psql_as n1 qt_pool postgres "${in_qa}SELECT count(*) FROM tenant_iso.tenant_query_stats WHERE query IS NOT NULL")" \
	"0" "in qa's context the query column is NULL"
is "$(node_psql_as n1 qt_pool postgres "${in_qa}SELECT count(*) FROM tenant_iso.tenant_query_stats WHERE query LIKE '%secret-of-qb%'")" \
	"0" "qb's comment never reaches qa"

node_psql n1 postgres "DROP EXTENSION pg_stat_statements"
is "$(node_psql_as n1 qt_reader postgres "SELECT count(*) > 0, count(query) FROM tenant_iso.tenant_query_stats")" \
	"t|0" "without pg_stat_statements in the database: rows, and no text"
is "$(node_psql_as n1 qt_pool postgres "${in_qa}SELECT count(*) > 0 FROM tenant_iso.tenant_query_stats")" \
	"t" "... and qa still sees its own queries"

tap_done
