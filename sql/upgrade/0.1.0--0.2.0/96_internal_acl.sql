-- Internal helpers that only the extension's own (SECURITY DEFINER or
-- superuser-only) functions call: PUBLIC has no use for them.
REVOKE ALL ON FUNCTION tenant_iso._check_tenant_id(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._caller() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._assert_no_tenant_context(text, regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._descendants(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._lanes_sum(bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_iso._peer_bytes() FROM PUBLIC;
