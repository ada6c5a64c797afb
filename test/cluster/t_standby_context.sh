#!/usr/bin/env bash
# test/cluster/t_standby_context.sh: the tenant context on a hot standby and
# the extension on a logical subscriber.
#
# A primary with tenant "acme", member role acme_user and switcher role pool;
# a streaming standby (same master key file); a logical subscriber.
set -euo pipefail
. "$(dirname "$0")/../lib/cluster.sh"

tap_plan 12

# ---- primary
node_init primary
node_start primary
node_psql primary postgres "CREATE DATABASE app"
node_psql primary app "
CREATE EXTENSION tenant_iso;
CREATE ROLE acme_user LOGIN;
CREATE ROLE pool LOGIN;
CREATE ROLE anon LOGIN;
SELECT tenant_iso.create_tenant('acme') \\g /dev/null
SELECT tenant_iso.add_member('acme_user', 'acme') \\g /dev/null
SELECT tenant_iso.grant_switch('pool') \\g /dev/null
CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO notes VALUES (1, 'one'), (2, 'two');
"
is "$(node_psql_as primary acme_user app "SELECT tenant_iso.current_tenant()")" acme \
	"primary: member role acme_user is in tenant acme"

# ---- streaming standby
node_standby standby primary
ok_cmd "standby: caught up with the primary" node_wait_catchup standby primary
is "$(node_psql standby postgres "SELECT pg_is_in_recovery()")" t \
	"standby: is in recovery"
is "$(node_psql standby app "SELECT tenant_iso.master_key_loadable()")" t \
	"standby: loads the master key"
is "$(node_psql_as standby acme_user app "SELECT tenant_iso.current_tenant()" 2>&1)" acme \
	"standby: member role acme_user is in tenant acme"
is "$(node_psql_as standby pool app "
SELECT tenant_iso.set_tenant('acme') \\g /dev/null
SELECT tenant_iso.current_tenant();" 2>&1)" acme \
	"standby: switcher pool enters acme with set_tenant"
is "$(node_psql_as standby pool app "SELECT tenant_iso.current_tenant()" 2>&1)" "" \
	"standby: switcher pool without set_tenant has no tenant"
fails_cmd "standby: SET tenant_iso.tenant is refused for pool" \
	node_psql_as standby pool app "SET tenant_iso.tenant = 'acme'"
token=$(node_psql primary app "SELECT tenant_iso.issue_token('acme')") || token=
is "$(node_psql_as standby anon app "
SELECT tenant_iso.set_tenant_token('$token') \\g /dev/null
SELECT tenant_iso.current_tenant();" 2>&1)" acme \
	"standby: a token issued on the primary is accepted (shared master key)"

# ---- logical subscriber
node_subscriber sub
node_psql sub postgres "CREATE DATABASE app"
ok_cmd "subscriber: CREATE EXTENSION tenant_iso" \
	node_psql sub app "CREATE EXTENSION tenant_iso"
node_psql sub app "CREATE TABLE notes (id int PRIMARY KEY, body text)"
node_publish primary app notes_pub "TABLE notes"
node_subscribe sub app notes_sub primary notes_pub 2>/dev/null
node_psql primary app "INSERT INTO notes VALUES (3, 'three')"
ok_cmd "subscriber: subscription synced" node_wait_sub_sync sub app notes_sub
is "$(node_psql sub app "SELECT string_agg(body, ',' ORDER BY id) FROM notes")" one,two,three \
	"subscriber: rows replicated"

tap_done
