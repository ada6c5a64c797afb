#!/usr/bin/env bash
# test/cluster/t_crypto_dump_restore.sh: pg_dump and restore of encrypted
# columns.
#
# One node.  Database csrc has tenants acme and globex with member roles
# crypt_dr_alice and crypt_dr_bob, and a protected table secrets whose
# columns hold tenant_iso.encrypt() ciphertexts (text with a context, bytea
# without; empty, short and 200 kB values) and blind indexes.  acme's key
# is rotated once, so its rows use key versions 1 and 2.  csrc is dumped in
# custom format (restored with pg_restore into cdst) and in plain format
# (restored with psql into cdst_plain) on the same node, so the same master
# key.  In both copies: the data keys (tenant_iso.data_keys, a
# pg_extension_config_dump table) and the ciphertexts came back unchanged,
# each member role decrypts its own rows to the original plaintexts, blind
# index look-ups still match, the other tenant's ciphertext is still refused
# (39000), and new encryptions continue with the active key version.
#
# nodes: 1
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 25

# sqlstate NODE USER DB SQL: run SQL (errors do not stop psql) and print the
# SQLSTATE of the last error, or 00000.
sqlstate() {
	local name=$1 user=$2 db=$3 sql=$4
	printf '%s;\n\\echo :LAST_ERROR_SQLSTATE\n' "$sql" |
		"$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=0 -h 127.0.0.1 \
			-p "$(node_port "$name")" -U "$user" -d "$db" -f - 2>/dev/null | tail -n 1
}

# What a member sees of its own rows, decrypted: id:ssn:md5(note) ...
DEC_SQL="SELECT string_agg(id || ':' || tenant_iso.decrypt_text(ssn, 'secrets.ssn') || ':'
                           || coalesce(md5(tenant_iso.decrypt(note)), '-'), ',' ORDER BY id)
           FROM secrets WHERE tenant_id = tenant_iso.current_tenant()"
# The stored data as the superuser sees it: keys and raw ciphertexts.
KEYS_SQL="SELECT string_agg(tenant_id || ':' || version || ':' || state || ':' || created_at, ',' ORDER BY tenant_id, version)
            FROM tenant_iso.keys"
RAW_SQL="SELECT md5(string_agg(tenant_id || id || encode(ssn, 'hex') || encode(ssn_bi, 'hex')
                               || coalesce(encode(note, 'hex'), '-'), ',' ORDER BY tenant_id, id))
           FROM secrets"
BIG="(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 6250) i)"

node_init n1
node_start n1

# ---- the source database
node_psql n1 postgres "CREATE DATABASE csrc"
node_psql n1 csrc "
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
CREATE ROLE crypt_dr_alice LOGIN;
CREATE ROLE crypt_dr_bob LOGIN;
SELECT tenant_iso.create_tenant('acme') \\g /dev/null
SELECT tenant_iso.create_tenant('globex') \\g /dev/null
SELECT tenant_iso.add_member('crypt_dr_alice', 'acme') \\g /dev/null
SELECT tenant_iso.add_member('crypt_dr_bob', 'globex') \\g /dev/null
CREATE TABLE secrets (
	tenant_id text NOT NULL,
	id int NOT NULL,
	ssn bytea NOT NULL,
	ssn_bi bytea NOT NULL,
	note bytea,
	PRIMARY KEY (tenant_id, id)
);
SELECT tenant_iso.protect('secrets') \\g /dev/null
GRANT SELECT, INSERT ON secrets TO crypt_dr_alice, crypt_dr_bob;
"
node_psql_as n1 crypt_dr_alice csrc "
INSERT INTO secrets (id, ssn, ssn_bi, note) VALUES
	(1, tenant_iso.encrypt('111-11-1111', 'secrets.ssn'), tenant_iso.blind_index('111-11-1111', 'secrets.ssn'),
	    tenant_iso.encrypt(convert_to('alice note', 'UTF8'))),
	(2, tenant_iso.encrypt('', 'secrets.ssn'), tenant_iso.blind_index('', 'secrets.ssn'), NULL);
"
node_psql n1 csrc "SELECT tenant_iso.rotate_tenant_key('acme') \\g /dev/null"
node_psql_as n1 crypt_dr_alice csrc "
INSERT INTO secrets (id, ssn, ssn_bi, note) VALUES
	(3, tenant_iso.encrypt('333-33-3333', 'secrets.ssn'), tenant_iso.blind_index('333-33-3333', 'secrets.ssn'),
	    tenant_iso.encrypt(convert_to($BIG, 'UTF8')));
"
node_psql_as n1 crypt_dr_bob csrc "
INSERT INTO secrets (id, ssn, ssn_bi, note) VALUES
	(1, tenant_iso.encrypt('999-99-9999', 'secrets.ssn'), tenant_iso.blind_index('999-99-9999', 'secrets.ssn'),
	    tenant_iso.encrypt(convert_to('bob note', 'UTF8'))),
	(2, tenant_iso.encrypt('Grüße ☃', 'secrets.ssn'), tenant_iso.blind_index('Grüße ☃', 'secrets.ssn'), NULL);
"
ALICE_EXPECTED=$(node_psql n1 postgres "
SELECT '1:111-11-1111:' || md5('alice note') || ',2::-,3:333-33-3333:' || md5($BIG)")
BOB_EXPECTED="1:999-99-9999:$(node_psql n1 postgres "SELECT md5('bob note')"),2:Grüße ☃:-"

is "$(node_psql_as n1 crypt_dr_alice csrc "$DEC_SQL" 2>&1)" "$ALICE_EXPECTED" \
	"csrc: crypt_dr_alice decrypts acme's rows"
is "$(node_psql_as n1 crypt_dr_bob csrc "$DEC_SQL" 2>&1)" "$BOB_EXPECTED" \
	"csrc: crypt_dr_bob decrypts globex's rows"
is "$(node_psql n1 csrc "SELECT string_agg(tenant_id || ':' || id || ':' || tenant_iso.key_version(ssn), ',' ORDER BY tenant_id, id) FROM secrets")" \
	"acme:1:1,acme:2:1,acme:3:2,globex:1:1,globex:2:1" \
	"csrc: acme's rows use key versions 1 and 2, globex's version 1"
SRC_KEYS=$(node_psql n1 csrc "$KEYS_SQL")
SRC_RAW=$(node_psql n1 csrc "$RAW_SQL")
ALICE_CT=$(node_psql n1 csrc "SELECT encode(ssn, 'hex') FROM secrets WHERE tenant_id = 'acme' AND id = 1")

# ---- dumps
DUMP_DIR=$CLUSTER_BASE/crypto_dumps
mkdir -p "$DUMP_DIR"
PG_ARGS=(-h 127.0.0.1 -p "$(node_port n1)" -U postgres)
ok_cmd "pg_dump -Fc csrc" "$PGBIN/pg_dump" "${PG_ARGS[@]}" -Fc -f "$DUMP_DIR/csrc.dump" csrc
ok_cmd "pg_dump (plain) csrc" "$PGBIN/pg_dump" "${PG_ARGS[@]}" -Fp -f "$DUMP_DIR/csrc.sql" csrc

# ---- restores (same node: same master key)
node_psql n1 postgres "CREATE DATABASE cdst"
out=$("$PGBIN/pg_restore" "${PG_ARGS[@]}" -d cdst "$DUMP_DIR/csrc.dump" 2>&1) && rc=0 || rc=$?
ok "$rc" "pg_restore of the custom-format dump into cdst succeeds"
[ "$rc" -eq 0 ] || diag "$out"
node_psql n1 postgres "CREATE DATABASE cdst_plain"
out=$("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "${PG_ARGS[@]}" -d cdst_plain -f "$DUMP_DIR/csrc.sql" 2>&1) && rc=0 || rc=$?
ok "$rc" "psql restore of the plain dump into cdst_plain succeeds"
[ "$rc" -eq 0 ] || diag "$out"

for db in cdst cdst_plain; do
	is "$(node_psql n1 "$db" "$KEYS_SQL" 2>&1)" "$SRC_KEYS" \
		"$db: the data key versions, states and creation times came back"
	is "$(node_psql n1 "$db" "$RAW_SQL" 2>&1)" "$SRC_RAW" \
		"$db: the ciphertexts and blind indexes came back byte for byte"
	is "$(node_psql_as n1 crypt_dr_alice "$db" "$DEC_SQL" 2>&1)" "$ALICE_EXPECTED" \
		"$db: crypt_dr_alice decrypts acme's rows to the original plaintexts (key versions 1 and 2)"
	is "$(node_psql_as n1 crypt_dr_bob "$db" "$DEC_SQL" 2>&1)" "$BOB_EXPECTED" \
		"$db: crypt_dr_bob decrypts globex's rows to the original plaintexts"
	is "$(node_psql_as n1 crypt_dr_alice "$db" "
SELECT string_agg(id::text, ',') FROM secrets WHERE ssn_bi = tenant_iso.blind_index('333-33-3333', 'secrets.ssn')" 2>&1)" \
		"3" "$db: a blind-index look-up by crypt_dr_alice finds her row 3"
	is "$(sqlstate n1 crypt_dr_bob "$db" "SELECT tenant_iso.decrypt(decode('$ALICE_CT', 'hex'), 'secrets.ssn')")" \
		"39000" "$db: crypt_dr_bob still cannot decrypt acme's ciphertext (39000)"
	is "$(node_psql_as n1 crypt_dr_alice "$db" "
SELECT encode(substr(c, 2, 4), 'hex') || ' ' || tenant_iso.decrypt_text(c, 'x')
  FROM (SELECT tenant_iso.encrypt('new', 'x') AS c) s" 2>&1)" \
		'00000002 new' "$db: new encryptions for acme use the active version 2 and decrypt"
	is "$(node_psql_as n1 crypt_dr_alice "$db" "SELECT count(*) || ' ' || string_agg(DISTINCT tenant_id, ',') FROM secrets" 2>&1)" \
		"3 acme" "$db: crypt_dr_alice sees only acme's 3 rows (table still protected)"
done

is "$(node_psql_as n1 crypt_dr_alice csrc "$DEC_SQL" 2>&1)" "$ALICE_EXPECTED" \
	"csrc: still decrypts after the restores"
is "$(node_psql n1 csrc "$KEYS_SQL")" "$SRC_KEYS" "csrc: its data keys are unchanged"

tap_done
