-- scripts/demo.sql: placeholder demo run by scripts/quickstart (to be replaced).
\echo '== installing tenant_iso'
CREATE EXTENSION IF NOT EXISTS tenant_iso;
\echo '== the tenant of this session (none yet)'
SELECT tenant_iso.current_tenant();
