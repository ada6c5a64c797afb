# test/lib/cluster.sh: multi-node test harness for tenant_iso.
#
# Source it from a test/cluster/t_*.sh script.  It starts real PostgreSQL 15
# clusters on free 127.0.0.1 ports (54300-54999) under one temporary base
# directory per test, and prints TAP on stdout (diagnostics on stderr, "# ").
#
# All nodes of one test share one master key file ($CLUSTER_KEY), kept outside
# every data directory; standbys inherit it through the copied config.
# An EXIT trap stops every node and removes the base directory.  When a test
# fails (or exits early), the end of each node's log goes to stderr first.
# Set KEEP_TMP=1 to keep the base directory.
#
# Nodes:
#   node_init NAME [CONF_LINE...]      new primary (initdb only, not started)
#   node_start NAME / node_stop NAME [fast|immediate] / node_restart NAME
#   node_kill9 NAME                    SIGKILL the postmaster (crash)
#   node_promote NAME                  promote a standby
#   node_standby NAME PRIMARY [CONF_LINE...]
#                                      streaming hot standby (pg_basebackup -R),
#                                      started
#   node_wait_catchup STANDBY PRIMARY [TIMEOUT]
#   node_subscriber NAME [CONF_LINE...]
#                                      independent primary for logical
#                                      replication, started
#   node_publish PRIMARY DB PUBNAME 'TABLE t1, t2' | 'ALL TABLES'
#   node_subscribe SUB DB SUBNAME PRIMARY PUBNAME [PUBDB]
#   node_wait_sub_sync SUB DB SUBNAME [TIMEOUT]
#   node_port NAME / node_datadir NAME / node_log NAME
#   node_connstr NAME [DB] [USER]      "host=127.0.0.1 port=P user=U dbname=DB"
#   node_psql NAME DB SQL              psql -X -At -q -v ON_ERROR_STOP=1 as
#                                      postgres; SQL is read like a script
#                                      (several statements, \g /dev/null ...)
#   node_psql_as NAME USER DB SQL      same, as another role
# TAP:
#   tap_plan N, ok EXIT_CODE NAME (alias tap_ok), is GOT EXPECTED NAME,
#   isnt GOT UNEXPECTED NAME, like GOT REGEX NAME, ok_cmd NAME CMD...,
#   fails_cmd NAME CMD..., diag MSG, tap_done (prints the summary and exits)

. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts" && pwd)/lib.sh"

declare -A _NODE_PORT=() _NODE_DATA=() _SUB_PUB=()
_NODES=()
_TAP_PLANNED=
_TAP_RUN=0
_TAP_FAILED=0
_TAP_DONE=0

CLUSTER_BASE=$(mktemp -d "${TMPDIR:-/tmp}/ti_cluster.XXXXXX")
ti_chown_pg "$CLUSTER_BASE"
CLUSTER_KEY=$CLUSTER_BASE/master.key
ti_gen_key "$CLUSTER_KEY"

# ---------------------------------------------------------------- TAP

diag() {
	local line
	while IFS= read -r line; do
		echo "# $line" >&2
	done <<<"$*"
}

tap_plan() {
	_TAP_PLANNED=$1
	echo "1..$1"
}

# ok EXIT_CODE NAME: pass when EXIT_CODE is 0.  Always returns 0.
ok() {
	local rc=$1 name=$2
	_TAP_RUN=$((_TAP_RUN + 1))
	if [ "$rc" -eq 0 ]; then
		echo "ok $_TAP_RUN - $name"
	else
		echo "not ok $_TAP_RUN - $name"
		_TAP_FAILED=$((_TAP_FAILED + 1))
	fi
	return 0
}
tap_ok() { ok "$@"; }

is() {
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "     got: '$1'"$'\n'"expected: '$2'"
	fi
}

isnt() {
	if [ "$1" != "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "     got: '$1'"$'\n'"expected anything else"
	fi
}

like() {
	if [[ "$1" =~ $2 ]]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "     got: '$1'"$'\n'"expected to match: '$2'"
	fi
}

# ok_cmd NAME CMD...: pass when CMD succeeds (its output is shown on failure).
ok_cmd() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok 0 "$name"
	else
		ok 1 "$name"
		diag "command failed: $*"$'\n'"$out"
	fi
}

# fails_cmd NAME CMD...: pass when CMD fails.
fails_cmd() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok 1 "$name"
		diag "command succeeded but should have failed: $*"$'\n'"$out"
	else
		ok 0 "$name"
	fi
}

tap_done() {
	_TAP_DONE=1
	if [ -z "$_TAP_PLANNED" ]; then
		echo "1..$_TAP_RUN"
	elif [ "$_TAP_PLANNED" -ne "$_TAP_RUN" ]; then
		diag "planned $_TAP_PLANNED tests but ran $_TAP_RUN"
		exit 1
	fi
	if [ "$_TAP_FAILED" -gt 0 ]; then
		diag "failed $_TAP_FAILED of $_TAP_RUN tests"
		exit 1
	fi
	exit 0
}

# ---------------------------------------------------------------- nodes

_node_check() {
	[ -n "${_NODE_PORT[$1]:-}" ] || ti_die "unknown node '$1'"
}

# _node_new NAME: register NAME with a free port and a data directory.
_node_new() {
	local name=$1
	[[ "$name" =~ ^[A-Za-z0-9_]+$ ]] || ti_die "bad node name '$name'"
	[ -z "${_NODE_PORT[$name]:-}" ] || ti_die "node '$name' already exists"
	_NODE_PORT[$name]=$(ti_free_port "${_NODE_PORT[@]}")
	_NODE_DATA[$name]=$CLUSTER_BASE/$name
	_NODES+=("$name")
}

node_port() { _node_check "$1"; echo "${_NODE_PORT[$1]}"; }
node_datadir() { _node_check "$1"; echo "${_NODE_DATA[$1]}"; }
node_log() { _node_check "$1"; echo "$CLUSTER_BASE/$1.log"; }

node_connstr() {
	_node_check "$1"
	echo "host=127.0.0.1 port=${_NODE_PORT[$1]} user=${3:-postgres} dbname=${2:-postgres} sslmode=disable"
}

node_init() {
	local name=$1
	shift
	_node_new "$name"
	ti_init_cluster "${_NODE_DATA[$name]}" "${_NODE_PORT[$name]}" "$CLUSTER_KEY" "$@"
}

# node_start NAME: start the node.  If its port was taken meanwhile by some
# other program on the machine (the free port was picked earlier), move the
# node to another free port and try again.
node_start() {
	local name=$1 try
	_node_check "$name"
	for try in 1 2 3 4 5; do
		if ti_start "${_NODE_DATA[$name]}" "$(node_log "$name")" 2>/dev/null; then
			return 0
		fi
		grep -q "Address already in use" "$(node_log "$name")" 2>/dev/null || break
		_NODE_PORT[$name]=$(ti_free_port "${_NODE_PORT[@]}")
		echo "port = ${_NODE_PORT[$name]}" >>"${_NODE_DATA[$name]}/postgresql.conf"
		: >"$(node_log "$name")"
	done
	ti_start "${_NODE_DATA[$name]}" "$(node_log "$name")"
}

node_stop() {
	_node_check "$1"
	ti_stop "${_NODE_DATA[$1]}" "${2:-fast}"
}

node_restart() {
	node_stop "$1" && node_start "$1"
}

node_promote() {
	_node_check "$1"
	(cd / && ti_as_pg "$PGBIN/pg_ctl" -D "${_NODE_DATA[$1]}" -w -t 60 promote >/dev/null)
}

# node_kill9 NAME: SIGKILL the postmaster, then wait until its children have
# gone (they exit on postmaster death), so that node_start runs crash
# recovery.  The postmaster leads its own process group (pg_ctl calls setsid).
# If the dead postmaster stays a zombie (some container init processes reap
# late), the new postmaster would take its PID for a live one, so the stale
# postmaster.pid is removed once no process of the group is alive.
node_kill9() {
	local pidfile pid i
	_node_check "$1"
	pidfile=${_NODE_DATA[$1]}/postmaster.pid
	[ -f "$pidfile" ] || ti_die "node '$1' is not running"
	pid=$(head -n 1 "$pidfile")
	kill -9 "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		_pgroup_alive "$pid" || break
		sleep 0.1
	done
	if _pgroup_alive "$pid"; then
		kill -9 -- "-$pid" 2>/dev/null || true
		sleep 0.5
	fi
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	rm -f "$pidfile"
}

# _pgroup_alive PGID: true if a process of group PGID is alive (not a zombie).
# Reads /proc/PID/stat ("pid (comm) state ppid pgrp ...") so that no procps
# is needed.
_pgroup_alive() {
	local pgid=$1 f line state pgrp
	for f in /proc/[0-9]*/stat; do
		read -r line <"$f" 2>/dev/null || continue
		read -r state _ pgrp _ <<<"${line##*) }"
		[ "$pgrp" = "$pgid" ] && [ "$state" != Z ] && return 0
	done
	return 1
}

node_psql() {
	local name=$1 db=$2 sql=$3
	node_psql_as "$name" postgres "$db" "$sql"
}

node_psql_as() {
	local name=$1 user=$2 db=$3 sql=$4
	_node_check "$name"
	printf '%s\n' "$sql" |
		"$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 \
			-p "${_NODE_PORT[$name]}" -U "$user" -d "$db" -f -
}

node_standby() {
	local name=$1 primary=$2 line dir
	shift 2
	_node_check "$primary"
	_node_new "$name"
	dir=${_NODE_DATA[$name]}
	(cd / && ti_as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "${_NODE_PORT[$primary]}" \
		-U postgres -D "$dir" -R -X stream -c fast --no-sync) ||
		ti_die "pg_basebackup of '$primary' failed"
	{
		echo
		echo "# standby '$name' of '$primary' (test/lib/cluster.sh)"
		echo "port = ${_NODE_PORT[$name]}"
			echo "hot_standby = on"
		for line in "$@"; do
			echo "$line"
		done
	} >>"$dir/postgresql.conf"
	node_start "$name"
}

# _node_wait NAME DB TIMEOUT SQL: poll until SQL returns "t".
_node_wait() {
	local name=$1 db=$2 timeout=$3 sql=$4 i
	for ((i = 0; i < timeout * 5; i++)); do
		[ "$(node_psql "$name" "$db" "$sql" 2>/dev/null)" = t ] && return 0
		sleep 0.2
	done
	diag "timed out after ${timeout}s on node '$name' waiting for: $sql"
	return 1
}

node_wait_catchup() {
	local standby=$1 primary=$2 timeout=${3:-60} lsn
	lsn=$(node_psql "$primary" postgres "SELECT pg_current_wal_lsn()") || return 1
	_node_wait "$standby" postgres "$timeout" \
		"SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn"
}

node_subscriber() {
	node_init "$@"
	node_start "$1"
}

node_publish() {
	local primary=$1 db=$2 pub=$3 what=$4
	node_psql "$primary" "$db" "CREATE PUBLICATION $pub FOR $what"
}

node_subscribe() {
	local sub=$1 db=$2 subname=$3 primary=$4 pub=$5 pubdb=${6:-$2}
	_node_check "$primary"
	node_psql "$sub" "$db" \
		"CREATE SUBSCRIPTION $subname CONNECTION '$(node_connstr "$primary" "$pubdb")' PUBLICATION $pub" &&
		_SUB_PUB[$sub/$subname]=$primary
}

# node_wait_sub_sync SUB DB SUBNAME [TIMEOUT]: wait until the initial table
# copy is done and the subscriber has applied everything the publisher had
# written when this was called.
node_wait_sub_sync() {
	local sub=$1 db=$2 subname=$3 timeout=${4:-60} primary lsn
	primary=${_SUB_PUB[$sub/$subname]:-}
	[ -n "$primary" ] || ti_die "unknown subscription '$subname' on '$sub'"
	_node_wait "$sub" "$db" "$timeout" \
		"SELECT count(*) = 0 FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
		 WHERE s.subname = '$subname' AND r.srsubstate NOT IN ('r', 's')" || return 1
	lsn=$(node_psql "$primary" postgres "SELECT pg_current_wal_lsn()") || return 1
	_node_wait "$primary" postgres "$timeout" \
		"SELECT count(*) > 0 FROM pg_stat_replication
		 WHERE application_name = '$subname' AND state = 'streaming' AND replay_lsn >= '$lsn'::pg_lsn"
}

# ---------------------------------------------------------------- cleanup

_cluster_cleanup() {
	local rc=$? name log
	if [ "$_TAP_DONE" -ne 1 ]; then
		diag "test exited (status $rc) before tap_done after $_TAP_RUN tests"
		[ "$rc" -ne 0 ] || rc=1
	fi
	if [ "$rc" -ne 0 ] || [ "$_TAP_FAILED" -gt 0 ]; then
		for name in "${_NODES[@]}"; do
			log=$CLUSTER_BASE/$name.log
			[ -f "$log" ] || continue
			diag "---- last 40 lines of $name.log (port ${_NODE_PORT[$name]})"
			diag "$(tail -n 40 "$log")"
		done
	fi
	for name in "${_NODES[@]}"; do
		ti_stop "${_NODE_DATA[$name]}" immediate
	done
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		diag "kept $CLUSTER_BASE"
	else
		rm -rf "$CLUSTER_BASE"
	fi
	exit "$rc"
}
trap _cluster_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
