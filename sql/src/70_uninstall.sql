/*
 * Uninstalling.
 * DROP EXTENSION tenant_iso CASCADE leaves protected tables with row
 * security forced and no policy (every non-owner then sees no row), tracked
 * tables without their digests but with nothing else of ours, and the
 * tenant_iso schema.  uninstall() undoes what protect() and track() did,
 * for every table, and says what remains; DROP EXTENSION afterwards leaves
 * the tables as they were before tenant_iso.
 */
CREATE FUNCTION tenant_iso.uninstall()
	RETURNS TABLE (object text, remains text)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	n_prot bigint := 0;
	n_track bigint := 0;
	n_hist bigint := 0;
	n_keys bigint;
	n_tenants bigint;
BEGIN
	IF NOT (SELECT a.rolsuper FROM pg_catalog.pg_authid a
			 WHERE a.oid OPERATOR(pg_catalog.=) tenant_iso._caller()::pg_catalog.oid) THEN
		RAISE EXCEPTION 'tenant_iso.uninstall() is for a superuser'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	IF tenant_iso.current_tenant() IS NOT NULL THEN
		RAISE EXCEPTION 'tenant_iso.uninstall() cannot run in a tenant context'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Call tenant_iso.reset_tenant() first.';
	END IF;
	FOR r IN SELECT h.rel FROM tenant_iso.history_tables h ORDER BY h.rel::pg_catalog.text LOOP
		PERFORM tenant_iso.disable_history(r.rel, false);
		n_hist := n_hist OPERATOR(pg_catalog.+) 1;
	END LOOP;
	-- roots first: unprotect() of a root also unprotects what inherited from it
	FOR r IN SELECT p.rel FROM tenant_iso.protected p WHERE p.via IS NULL ORDER BY p.rel::pg_catalog.text LOOP
		PERFORM tenant_iso.unprotect(r.rel);
		n_prot := n_prot OPERATOR(pg_catalog.+) 1;
	END LOOP;
	FOR r IN SELECT p.rel FROM tenant_iso.protected p ORDER BY p.rel::pg_catalog.text LOOP
		PERFORM tenant_iso.unprotect(r.rel);
		n_prot := n_prot OPERATOR(pg_catalog.+) 1;
	END LOOP;
	FOR r IN SELECT t.rel FROM tenant_iso.tracked t ORDER BY t.relname LOOP
		PERFORM tenant_iso.untrack(r.rel);
		n_track := n_track OPERATOR(pg_catalog.+) 1;
	END LOOP;
	SELECT pg_catalog.count(*) INTO n_keys FROM tenant_iso.data_keys k WHERE k.state OPERATOR(pg_catalog.<>) 'destroyed';
	SELECT pg_catalog.count(*) INTO n_tenants FROM tenant_iso.tenants;

	object := 'protected tables'; remains := pg_catalog.format('%s unprotected: row security and tenant defaults restored as they were before protect()', n_prot);
	RETURN NEXT;
	object := 'history'; remains := pg_catalog.format('%s tables: history triggers and history tables removed', n_hist);
	RETURN NEXT;
	object := 'tracked tables'; remains := pg_catalog.format('%s untracked: digest triggers and digests removed', n_track);
	RETURN NEXT;
	object := 'data keys';
	remains := pg_catalog.format('%s wrapped data keys; they are dropped with the extension, and every value encrypted under them can then never be decrypted: decrypt the columns first', n_keys);
	RETURN NEXT;
	object := 'registry';
	remains := pg_catalog.format('%s tenants, their members, switchers and revoked tokens: dropped with the extension; the roles themselves stay', n_tenants);
	RETURN NEXT;
	object := 'next steps';
	remains := 'DROP EXTENSION tenant_iso; DROP SCHEMA IF EXISTS tenant_iso; remove tenant_iso from shared_preload_libraries and the tenant_iso.* settings, and any pg_cron jobs that call it';
	RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso.uninstall() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso.uninstall() IS
	'For a superuser: unprotect and untrack every table, and list what remains before DROP EXTENSION';
