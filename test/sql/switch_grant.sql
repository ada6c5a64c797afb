-- One behaviour: only a role granted the switch may enter a tenant's
-- context with set_tenant(); a member may not leave its own.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION tenant_iso;
SELECT tenant_iso.create_tenant('rg_a') IS NOT NULL AS a, tenant_iso.create_tenant('rg_b') IS NOT NULL AS b;
CREATE ROLE rg_app;
CREATE ROLE rg_pool;
CREATE ROLE rg_member_a;
SELECT tenant_iso.grant_switch('rg_pool');
SELECT tenant_iso.add_member('rg_member_a', 'rg_a');

SET ROLE rg_app;
SELECT tenant_iso.set_tenant('rg_a');
SELECT tenant_iso.current_tenant() AS app_tenant;
RESET ROLE;

SET ROLE rg_pool;
SELECT tenant_iso.set_tenant('rg_b');
SELECT tenant_iso.current_tenant() AS pool_tenant;
SELECT tenant_iso.set_tenant('no_such_tenant');
SELECT tenant_iso.current_tenant() AS pool_tenant_after_refusal;
SELECT tenant_iso.reset_tenant();
SELECT tenant_iso.current_tenant() IS NULL AS pool_without_tenant;
RESET ROLE;

SET ROLE rg_member_a;
SELECT tenant_iso.current_tenant() AS member_tenant;
SELECT tenant_iso.set_tenant('rg_b');
SELECT tenant_iso.current_tenant() AS member_tenant_after;
RESET ROLE;

SELECT tenant_iso.revoke_switch('rg_pool');
SELECT tenant_iso.remove_member('rg_member_a');
DROP ROLE rg_app, rg_pool, rg_member_a;
DROP EXTENSION tenant_iso;
