#!/usr/bin/env bash
# test/cluster/t_validate_hba.sh: validate()'s check switcher_without_tls
# against a real pg_hba.conf, which SQL cannot edit.
#
# pg_hba_file_rules reads the file as it is on disk, so each case appends a
# rule (and drift() sees it too, as an hba_rule).  The cluster starts with
# the harness's rules: trust for 127.0.0.1 and ::1 only.
#
#  - a LOGIN switcher over loopback only: low; a network host rule: high;
#  - an earlier "hostnossl ... reject" shadows a later host rule; hostssl
#    rules are fine; a rule for another database does not count;
#  - "+group": a switcher in the group is reported, a member role is not;
#  - a login role that can SET ROLE to a switcher is reported too.
#
# nodes: 1
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 11

node_init main
node_start main
node_psql main postgres "CREATE DATABASE app"
node_psql main app "
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
CREATE ROLE hba_pool LOGIN;
CREATE ROLE hba_member LOGIN;
CREATE ROLE hba_group;
CREATE ROLE hba_user LOGIN;         -- can SET ROLE to the switcher hba_nologin
CREATE ROLE hba_nologin;
GRANT hba_group TO hba_pool, hba_member;
GRANT hba_nologin TO hba_user;
SELECT tenant_iso.create_tenant('acme') \\g /dev/null
SELECT tenant_iso.add_member('hba_member', 'acme') \\g /dev/null
SELECT tenant_iso.grant_switch('hba_pool') \\g /dev/null
SELECT tenant_iso.grant_switch('hba_nologin') \\g /dev/null
SELECT tenant_iso.baseline_save() \\g /dev/null
"
HBA=$(node_datadir main)/pg_hba.conf
ORIG=$CLUSTER_BASE/pg_hba.conf.orig
cp "$HBA" "$ORIG"

# sev ROLE: the severity of switcher_without_tls for ROLE, or none
sev() {
	node_psql main app "SELECT coalesce(string_agg(severity, ','), 'none') FROM tenant_iso.validate()
		WHERE check_id = 'switcher_without_tls' AND object = '$1'"
}
# with_rules RULE...: the original pg_hba.conf plus these lines
with_rules() {
	cp "$ORIG" "$HBA"
	printf '%s\n' "$@" >>"$HBA"
}

is "$(sev hba_pool)" low "loopback trust only: the switcher is reported as low"
is "$(sev hba_member)" none "loopback trust only: a member role is not reported"

with_rules "host all all 10.0.0.0/8 scram-sha-256"
is "$(sev hba_pool)" high "host all all 10.0.0.0/8: the switcher is reported as high"
is "$(node_psql main app "SELECT string_agg(format('%s %s', change, object), ',') FROM tenant_iso.drift()
	WHERE object_type = 'hba_rule'")" "added host all all 10.0.0.0/255.0.0.0" \
	"drift(): the new pg_hba.conf rule shows up as an added hba_rule"

with_rules "hostnossl all all 0.0.0.0/0 reject" "host all all 10.0.0.0/8 scram-sha-256"
is "$(sev hba_pool)" low "an earlier hostnossl ... reject shadows the network rule: back to low"

with_rules "hostssl all all 0.0.0.0/0 scram-sha-256"
is "$(sev hba_pool)" low "hostssl rules do not count"

with_rules "host otherdb all 10.0.0.0/8 scram-sha-256"
is "$(sev hba_pool)" low "a rule for another database does not count"

with_rules "host all +hba_group 192.168.0.0/16 md5"
is "$(sev hba_pool)" high "host all +hba_group: a switcher in the group is high"
is "$(sev hba_member)" none "host all +hba_group: a member role in the group is not reported"

with_rules "host all hba_user 192.168.0.0/16 md5"
is "$(sev hba_user)" high "a login role that can SET ROLE to a switcher is reported too"
like "$(node_psql main app "SELECT detail FROM tenant_iso.validate()
	WHERE check_id = 'switcher_without_tls' AND object = 'hba_user'")" "member of switcher role hba_nologin" \
	"its detail names the switcher role"

cp "$ORIG" "$HBA"
tap_done
