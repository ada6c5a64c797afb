# scripts/lib.sh: shared bash helpers for scripts/test, scripts/quickstart
# and test/lib/cluster.sh.  Source it; it defines functions and variables
# (all prefixed ti_ / TI_, plus PGBIN) and runs nothing.
#
# Running as root: PostgreSQL refuses to run as root, so initdb, pg_ctl and
# pg_basebackup run as the "postgres" OS user via runuser (ti_as_pg), and
# every directory they write is chowned to that user (ti_chown_pg).
# Running as a normal user: everything runs as that user.

# TI_PGBIN points at another bin directory: a private, relocated copy of
# PostgreSQL 15, or a 17/18 server built by scripts/build-pg.
PGBIN=${TI_PGBIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$PGBIN/pg_config
TI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TI_PACKAGES="postgresql-15 postgresql-server-dev-15 libssl-dev libpq-dev
postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-cron
postgresql-15-pgaudit
clang libclang-rt-14-dev make gcc"

ti_die() { echo "error: $*" >&2; exit 1; }

ti_is_root() { [ "$(id -u)" -eq 0 ]; }

# ti_sudo CMD...: run CMD as root (directly, or through sudo).
ti_sudo() {
	if ti_is_root; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		ti_die "need root to run: $* (no sudo available)"
	fi
}

# ti_pg_user: the OS user that runs the PostgreSQL server processes.
ti_pg_user() {
	if ti_is_root; then echo postgres; else id -un; fi
}

# ti_as_pg CMD...: run CMD as the pg user.
ti_as_pg() {
	if ti_is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# ti_chown_pg PATH...: give PATH to the pg user (only needed as root).
ti_chown_pg() {
	if ti_is_root; then
		chown postgres: "$@"
	fi
}

# ti_ensure_packages: install the Debian packages the build and tests need,
# but only if one of them is missing.
ti_ensure_packages() {
	local p missing=()
	command -v dpkg-query >/dev/null 2>&1 ||
		ti_die "dpkg-query not found: install these packages by hand: $TI_PACKAGES"
	for p in $TI_PACKAGES; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "== installing packages: ${missing[*]}"
	ti_sudo apt-get update
	ti_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# ti_build_install: build the extension and install it into the server of
# PG_CONFIG (PostgreSQL 15 unless TI_PGBIN says otherwise).
ti_build_install() {
	local stamp=$TI_ROOT/.build-pg-config
	# Objects built for another server major must not be linked into this one.
	if [ "$(cat "$stamp" 2>/dev/null)" != "$PG_CONFIG" ]; then
		make -C "$TI_ROOT" clean PG_CONFIG="$PG_CONFIG" >/dev/null
		echo "$PG_CONFIG" >"$stamp"
	fi
	echo "== building tenant_iso"
	make -C "$TI_ROOT" -j"$(nproc 2>/dev/null || echo 2)" PG_CONFIG="$PG_CONFIG"
	echo "== installing tenant_iso"
	ti_sudo make -C "$TI_ROOT" install PG_CONFIG="$PG_CONFIG" >/dev/null
}

# ti_port_in_use PORT: true if something listens on 127.0.0.1:PORT.
ti_port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ti_free_port [PORT...]: print a free port in 54300-54999, starting at a
# random place; the ports given as arguments are skipped (already handed out).
ti_free_port() {
	local i p skip start=$((RANDOM % 700))
	for ((i = 0; i < 700; i++)); do
		p=$((54300 + (start + i) % 700))
		for skip in "$@"; do
			[ "$skip" = "$p" ] && continue 2
		done
		ti_port_in_use "$p" || { echo "$p"; return 0; }
	done
	ti_die "no free port in 54300-54999"
}

# ti_gen_key FILE: write a random 256-bit master key (64 hex characters, no
# newline) to FILE, mode 0600, owned by the pg user.
ti_gen_key() {
	local file=$1 key
	if command -v openssl >/dev/null 2>&1; then
		key=$(openssl rand -hex 32)
	else
		key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
	fi
	[ ${#key} -eq 64 ] || ti_die "could not generate a master key"
	(umask 077 && printf '%s' "$key" >"$file")
	chmod 600 "$file"
	ti_chown_pg "$file"
}

# ti_init_cluster DATADIR PORT KEYFILE [CONF_LINE...]: initdb a new cluster
# for tests/demos: TCP on 127.0.0.1 only (no Unix socket, so nothing clashes
# with /var/run/postgresql and pg_basebackup copies no socket file), trust
# auth, superuser "postgres",
# tenant_iso preloaded, master key read from KEYFILE (which must be outside
# DATADIR).  Extra CONF_LINEs are appended last, so they override.
ti_init_cluster() {
	local datadir=$1 port=$2 keyfile=$3 line
	shift 3
	case "$keyfile" in
	"$datadir"/*) ti_die "master key file must be outside the data directory" ;;
	*[\'\"\$\`\\]*) ti_die "unusual characters in the key file path: $keyfile" ;;
	esac
	mkdir -p "$datadir"
	chmod 700 "$datadir"
	ti_chown_pg "$datadir"
	(cd / && ti_as_pg "$PGBIN/initdb" -D "$datadir" -U postgres -A trust \
		-E UTF8 --no-locale --no-sync >/dev/null) ||
		ti_die "initdb failed for $datadir"
	{
		echo
		echo "# added by tenant_iso scripts/lib.sh"
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $port"
		echo "unix_socket_directories = ''"
		echo "shared_preload_libraries = 'tenant_iso'"
		echo "tenant_iso.master_key_command = 'cat \"$keyfile\"'"
		echo "max_worker_processes = 16"
		echo "max_prepared_transactions = 10"
		echo "wal_level = logical"
		echo "max_wal_senders = 10"
		echo "max_replication_slots = 10"
		echo "hot_standby = on"
		echo "fsync = off"
		echo "log_line_prefix = '%m [%p] %q%u@%d '"
		for line in "$@"; do
			echo "$line"
		done
	} >>"$datadir/postgresql.conf"
	{
		echo
		echo "# added by tenant_iso scripts/lib.sh (local test cluster only)"
		echo "host all         all 127.0.0.1/32 trust"
		echo "host replication all 127.0.0.1/32 trust"
	} >>"$datadir/pg_hba.conf"
}

# ti_start DATADIR [LOGFILE]: start the server and wait until it accepts
# connections.  LOGFILE defaults to DATADIR/server.log.
ti_start() {
	local datadir=$1 log=${2:-$1/server.log}
	if ! (cd / && ti_as_pg "$PGBIN/pg_ctl" -D "$datadir" -l "$log" -w -t 120 start >/dev/null); then
		echo "error: could not start the server in $datadir; end of $log:" >&2
		tail -n 30 "$log" >&2 || true
		return 1
	fi
}

# ti_stop DATADIR [MODE]: stop the server if it runs (MODE: fast, immediate).
ti_stop() {
	local datadir=$1 mode=${2:-fast}
	[ -f "$datadir/postmaster.pid" ] || return 0
	(cd / && ti_as_pg "$PGBIN/pg_ctl" -D "$datadir" -m "$mode" -w -t 120 stop >/dev/null 2>&1) || true
}

# ti_is_running DATADIR: true if a server runs on DATADIR.
ti_is_running() {
	(cd / && ti_as_pg "$PGBIN/pg_ctl" -D "$1" status >/dev/null 2>&1)
}
