#!/usr/bin/env bash
# test/cluster/t_exporter_yaml.sh: the postgres_exporter queries file
# contrib/postgres_exporter/tenant_iso.yaml (issue 14).
#
#  - Every metric of the file is read with a tiny parser of the classic
#    queries.yaml format (metric: query, master, metrics: - column: usage,
#    description); when PyYAML is installed, the parser must agree with it.
#  - Each query runs against a node with tenant_iso and some activity (two
#    tenants, statements outside any context, a tenant with limits), as a
#    login role that is a member of pg_read_all_stats, as the exporter's
#    would be.  It must return rows whose columns are exactly those the file
#    declares, with a non-empty value for every LABEL and a number for every
#    COUNTER and GAUGE.
#  - The rows carry what the activity did: tenant labels acme, globex and
#    "(none)"; acme's statements counted; acme's limits exported.
#  - Without pg_read_all_stats the statistics query is refused (42501).
#
# nodes: 1
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

YAML=$TI_ROOT/contrib/postgres_exporter/tenant_iso.yaml
command -v python3 >/dev/null 2>&1 || ti_die "python3 is needed to read $YAML"

tap_plan 21

# ---- the parser: writes NAME.sql and NAME.cols (column usage) per metric
PARSED=$CLUSTER_BASE/yaml
mkdir -p "$PARSED"
ti_chown_pg "$PARSED"
rc=0
python3 - "$YAML" "$PARSED" <<'PY' || rc=$?
import json, os, re, sys

def tiny_parse(text):
    """The subset of YAML that queries files use: top-level metric names,
    scalar keys (master, cache_seconds), a block scalar query (|), and a
    list of one-key maps under metrics with usage and description."""
    out, name, cur, in_query, qind = {}, None, None, False, None
    for line in text.split('\n'):
        if in_query:
            if line.strip() == '' or (len(line) - len(line.lstrip())) >= qind:
                out[name]['query'] += line[qind:] + '\n' if line.strip() else '\n'
                continue
            in_query = False
            out[name]['query'] = out[name]['query'].rstrip('\n') + '\n'
        if line.strip() == '' or line.lstrip().startswith('#'):
            continue
        m = re.match(r'^([A-Za-z_][A-Za-z0-9_]*):\s*$', line)
        if m:
            name = m.group(1)
            out[name] = {}
            continue
        m = re.match(r'^  (query):\s*\|\s*$', line)
        if m:
            out[name]['query'] = ''
            in_query, qind = True, 4
            continue
        m = re.match(r'^  (metrics):\s*$', line)
        if m:
            out[name]['metrics'] = []
            continue
        m = re.match(r'^    - ([A-Za-z_][A-Za-z0-9_]*):\s*$', line)
        if m:
            cur = {}
            out[name]['metrics'].append({m.group(1): cur})
            continue
        m = re.match(r'^        (usage|description):\s*"(.*)"\s*$', line)
        if m:
            cur[m.group(1)] = m.group(2)
            continue
        m = re.match(r'^  ([a-z_]+):\s*(\S.*)$', line)
        if m:
            v = m.group(2)
            out[name][m.group(1)] = {'true': True, 'false': False}.get(v, int(v) if v.isdigit() else v)
            continue
        raise SystemExit('tiny parser: cannot read line: %r' % line)
    if in_query:
        out[name]['query'] = out[name]['query'].rstrip('\n') + '\n'
    return out

yaml_path, outdir = sys.argv[1], sys.argv[2]
text = open(yaml_path).read()
doc = tiny_parse(text)
try:
    import yaml
    agree = 'agree' if yaml.safe_load(text) == doc else 'DISAGREE'
except ImportError:
    agree = 'no-pyyaml'
open(os.path.join(outdir, 'pyyaml'), 'w').write(agree + '\n')
with open(os.path.join(outdir, 'metrics'), 'w') as names:
    for name, m in doc.items():
        names.write(name + '\n')
        open(os.path.join(outdir, name + '.sql'), 'w').write(m['query'])
        with open(os.path.join(outdir, name + '.cols'), 'w') as f:
            for entry in m['metrics']:
                ((col, spec),) = entry.items()
                f.write('%s %s\n' % (col, spec.get('usage', '')))
PY
ok "$rc" "the tiny parser reads $(basename "$YAML")"
case "$(cat "$PARSED/pyyaml")" in
agree) ok 0 "the tiny parser agrees with PyYAML" ;;
no-pyyaml) ok 0 "PyYAML is not installed; the tiny parser alone # SKIP no PyYAML" ;;
*) ok 1 "the tiny parser agrees with PyYAML" ;;
esac
mapfile -t METRICS <"$PARSED/metrics"
is "${METRICS[*]}" "tenant_iso_tenant tenant_iso_tenant_limits" "the file defines the two metrics tenant_iso_tenant and tenant_iso_tenant_limits"

# ---- a node with activity
node_init main
node_start main
node_psql main postgres "CREATE DATABASE app"
node_psql main app "
CREATE EXTENSION tenant_iso;
SELECT tenant_iso.create_tenant('acme') \\g /dev/null
SELECT tenant_iso.create_tenant('globex') \\g /dev/null
CREATE ROLE ex_acme LOGIN;
CREATE ROLE ex_globex LOGIN;
CREATE ROLE ex_exporter LOGIN IN ROLE pg_read_all_stats;
CREATE ROLE ex_nobody LOGIN;
SELECT tenant_iso.add_member('ex_acme', 'acme') \\g /dev/null
SELECT tenant_iso.add_member('ex_globex', 'globex') \\g /dev/null
CREATE TABLE items (tenant_id text NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
SELECT tenant_iso.protect('items') \\g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO ex_acme, ex_globex;
SELECT tenant_iso.set_tenant_limits('acme', max_active_statements => 2, statement_timeout => '30s',
       work_mem => '8MB', temp_file_limit => '1GB', max_statements_per_second => 1000) \\g /dev/null
"
node_psql_as main ex_acme app "
INSERT INTO items (id, v) SELECT g, 'a' || g FROM generate_series(1, 50) g;
UPDATE items SET v = v || '!' WHERE id <= 10;
SELECT count(*) FROM items \\g /dev/null
SELECT v FROM items WHERE id = 3 \\g /dev/null
" >/dev/null
node_psql_as main ex_globex app "
INSERT INTO items (id, v) VALUES (1, 'g1');
SELECT * FROM items \\g /dev/null
" >/dev/null
node_psql main app "SELECT count(*) FROM pg_class" >/dev/null

# run_metric NAME USER: the metric's query as USER, unaligned with a header
run_metric() {
	"$PGBIN/psql" -X -A -F '|' -P footer=off -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(node_port main)" \
		-U "$2" -d app -f "$PARSED/$1.sql" 2>&1
}

# check_metric NAME: 4 tests on the rows the exporter's role gets
declare -A OUT=()
check_metric() {
	local name=$1 out rc header declared rows bad=
	out=$(run_metric "$name" ex_exporter) && rc=0 || rc=$?
	OUT[$name]=$out
	is "$rc" 0 "$name: the query runs as a member of pg_read_all_stats"
	header=$(head -n 1 <<<"$out")
	declared=$(cut -d' ' -f1 "$PARSED/$name.cols" | paste -sd'|' -)
	is "$header" "$declared" "$name: its columns are those the file declares, in order"
	rows=$(($(wc -l <<<"$out") - 1))
	if [ "$rows" -ge 1 ]; then ok 0 "$name: it returns rows ($rows)"; else ok 1 "$name: it returns rows"; diag "$out"; fi
	# every LABEL non-empty, every COUNTER and GAUGE a number
	bad=$(tail -n +2 <<<"$out" | python3 -c '
import re, sys
usages = [l.split()[1] for l in open(sys.argv[1]) if l.strip()]
num = re.compile(r"^-?[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?$")
for row in sys.stdin.read().splitlines():
    vals = row.split("|")
    if len(vals) != len(usages):
        print("wrong number of values:", row); continue
    for u, v in zip(usages, vals):
        if u == "LABEL" and v == "":
            print("empty label in:", row)
        elif u in ("COUNTER", "GAUGE") and not num.match(v):
            print("not a number (%s) in: %s" % (v, row))
        elif u not in ("LABEL", "COUNTER", "GAUGE"):
            print("unexpected usage", u)
' "$PARSED/$name.cols")
	is "$bad" "" "$name: every LABEL has a value and every COUNTER and GAUGE is a number"
}

for m in "${METRICS[@]}"; do
	check_metric "$m"
done

# ---- what the rows say
stats=${OUT[tenant_iso_tenant]}
labels=$(tail -n +2 <<<"$stats" | cut -d'|' -f1 | LC_ALL=C sort | paste -sd' ' -)
like " $labels " " \(none\) .*acme .*globex " "tenant_iso_tenant: tenant labels include (none), acme and globex ($labels)"
col() {	# col OUTPUT TENANT COLUMN: the value of COLUMN in TENANT's row
	awk -F'|' -v t="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
		$1 == t { print $k }' <<<"$1"
}
acme_stmts=$(col "$stats" acme statements_total)
is "$acme_stmts" 4 "acme's statements_total is 4 (INSERT, UPDATE, two SELECTs)"
is "$(col "$stats" acme rows_written_total)" 60 "acme's rows_written_total is 60 (50 inserted, 10 updated)"
is "$(col "$stats" globex rows_written_total)" 1 "globex's rows_written_total is 1"
n=$(col "$stats" '(none)' sessions_in_context)
if [ "${n:-0}" -ge 1 ]; then ok 0 "the (none) row counts the exporter's session, in no context ($n)"; else ok 1 "the (none) row counts the exporter's session"; diag "$stats"; fi
n=$(col "$stats" '(none)' active_statements)
if [ "${n:-0}" -ge 1 ]; then ok 0 "the (none) row counts the exporter's query as active ($n)"; else ok 1 "the (none) row counts the exporter's query as active"; diag "$stats"; fi

limits=${OUT[tenant_iso_tenant_limits]}
is "$(col "$limits" acme max_active_statements)|$(col "$limits" acme statement_timeout_seconds)|$(col "$limits" acme work_mem_bytes)|$(col "$limits" acme temp_file_limit_bytes)|$(col "$limits" acme max_statements_per_second)|$(col "$limits" acme own_limits)" \
	"2|30|8388608|1073741824|1000|1" "tenant_iso_tenant_limits: acme's limits (2, 30 s, 8 MB, 1 GB, 1000/s, own)"
is "$(col "$limits" globex max_active_statements)|$(col "$limits" globex temp_file_limit_bytes)|$(col "$limits" globex own_limits)" \
	"0|-1|0" "tenant_iso_tenant_limits: globex has no limits (0, -1, not its own)"

# ---- without pg_read_all_stats
out=$(run_metric tenant_iso_tenant ex_nobody) && rc=0 || rc=$?
isnt "$rc" 0 "without pg_read_all_stats the statistics query fails"
like "$out" "permission denied for tenant statistics" "... with 'permission denied for tenant statistics' (42501)"

tap_done
