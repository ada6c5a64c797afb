/*
 * Row isolation.
 */
CREATE FUNCTION tenant_iso._assert_no_tenant_context(what text, rel regclass DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_assert_no_tenant_context'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._assert_no_tenant_context(text, regclass) IS
	'Internal: raise 42501 when the session is in a tenant context';
REVOKE ALL ON FUNCTION tenant_iso._assert_no_tenant_context(text, regclass) FROM PUBLIC;

CREATE VIEW tenant_iso.protected_tables AS
	SELECT rel, tenant_column, protected_at FROM tenant_iso.protected;
COMMENT ON VIEW tenant_iso.protected_tables IS
	'Tables under tenant isolation, with their tenant column';

/* Covert channels: unique keys and foreign keys that leave out the tenant column. */
CREATE FUNCTION tenant_iso._leaky_constraints(rel regclass, tenant_column name)
	RETURNS TABLE (object text, detail text)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT format('index %s', i.indexrelid::regclass),
		   format('unique index %s on %s does not include the tenant column %I',
				  i.indexrelid::regclass, rel, tenant_column)
	  FROM pg_index i
	 WHERE i.indrelid = rel AND i.indisunique
	   AND NOT EXISTS (SELECT 1 FROM pg_attribute a
					   WHERE a.attrelid = rel AND a.attname = tenant_column
					     AND a.attnum = ANY (i.indkey))
	UNION ALL
	SELECT format('constraint %I on %s', c.conname, c.conrelid::regclass),
		   format('foreign key %I from %s to %s does not carry the tenant column on both sides',
				  c.conname, c.conrelid::regclass, c.confrelid::regclass)
	  FROM pg_constraint c
	 WHERE c.contype = 'f' AND (c.conrelid = rel OR c.confrelid = rel)
	   AND NOT EXISTS (
			SELECT 1
			  FROM unnest(c.conkey, c.confkey) AS k(l, r)
			  JOIN pg_attribute la ON la.attrelid = c.conrelid AND la.attnum = k.l
			  JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.r
			 WHERE la.attname = coalesce((SELECT p.tenant_column FROM tenant_iso.protected p
										   WHERE p.rel = c.conrelid), tenant_column)
			   AND ra.attname = coalesce((SELECT p.tenant_column FROM tenant_iso.protected p
										   WHERE p.rel = c.confrelid), tenant_column))
$$;
REVOKE ALL ON FUNCTION tenant_iso._leaky_constraints(regclass, name) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._leaky_constraints(regclass, name) IS
	'Internal: unique and foreign keys on a table that let one tenant probe another''s keys';

CREATE FUNCTION tenant_iso._enforced_tenant_as(typ regtype, typmod int4) RETURNS text
	AS 'MODULE_PATHNAME', 'ti_enforced_tenant_as'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso._enforced_tenant_as(regtype, int4) IS
	'Internal: the tenant that row policies compare with, checked to be the canonical text form of the type; raises 42501 when there is no usable tenant context or the id is not canonical';

CREATE FUNCTION tenant_iso._tenant_default(tenant text, typ regtype, typmod int4) RETURNS text
	AS 'MODULE_PATHNAME', 'ti_tenant_default'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso._tenant_default(text, regtype, int4) IS
	'Internal: the default of a tenant column, called with tenant_iso.current_tenant(): that tenant, NULL outside a tenant context, an error when the id is not the canonical form of the type or too long for it';

/* Is this column's default one that tenant_iso set (0.1.0 or 0.2.0 form)? */
CREATE FUNCTION tenant_iso._is_tenant_default(expr text) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(expr OPERATOR(pg_catalog.~~) '%tenant\_iso.current\_tenant()%'
					OR expr OPERATOR(pg_catalog.~~) '%tenant\_iso.\_tenant\_default(%', false)
$$;
COMMENT ON FUNCTION tenant_iso._is_tenant_default(text) IS
	'Internal: whether a column default expression is the tenant default tenant_iso sets';
REVOKE ALL ON FUNCTION tenant_iso._is_tenant_default(text) FROM PUBLIC;

/* The default expression tenant_iso sets on a tenant column. */
CREATE FUNCTION tenant_iso._tenant_default_expr(typ oid, typmod int4) RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.format('(tenant_iso._tenant_default(tenant_iso.current_tenant(), %L::pg_catalog.regtype, %s))::%s',
							 pg_catalog.format_type(typ, NULL), typmod,
							 pg_catalog.format_type(typ, typmod))
$$;
COMMENT ON FUNCTION tenant_iso._tenant_default_expr(oid, int4) IS
	'Internal: the tenant default expression for a tenant column of this type and typmod';
REVOKE ALL ON FUNCTION tenant_iso._tenant_default_expr(oid, int4) FROM PUBLIC;

/*
 * Refuse a tenant column where two distinct ids could compare equal or an
 * id could be truncated.
 */
CREATE FUNCTION tenant_iso._check_tenant_column(rel regclass, tenant_column name) RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a record;
BEGIN
	SELECT at.atttypid, at.atttypmod, at.attcollation, co.collname, co.collisdeterministic
	  INTO a
	  FROM pg_catalog.pg_attribute at
	  LEFT JOIN pg_catalog.pg_collation co ON co.oid OPERATOR(pg_catalog.=) at.attcollation
	 WHERE at.attrelid OPERATOR(pg_catalog.=) rel AND at.attname OPERATOR(pg_catalog.=) tenant_column
	   AND at.attnum OPERATOR(pg_catalog.>) 0 AND NOT at.attisdropped;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	IF a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.varchar'::pg_catalog.regtype
	   AND a.atttypmod OPERATOR(pg_catalog.<>) -1
	   AND a.atttypmod OPERATOR(pg_catalog.-) 4 OPERATOR(pg_catalog.<) 63 THEN
		RAISE EXCEPTION 'tenant column "%" of table % is too short for a tenant id', tenant_column, rel
			USING ERRCODE = 'datatype_mismatch',
				  DETAIL = pg_catalog.format('Type %s holds fewer than the 63 characters a tenant id may have: a longer id would be cut to another tenant''s id.',
											 pg_catalog.format_type(a.atttypid, a.atttypmod)),
				  HINT = 'Use text or varchar(63) or longer for the tenant column.';
	END IF;
	IF a.collisdeterministic IS NOT NULL AND NOT a.collisdeterministic THEN
		RAISE EXCEPTION 'tenant column "%" of table % has the nondeterministic collation %',
				tenant_column, rel, a.collname
			USING ERRCODE = 'datatype_mismatch',
				  DETAIL = 'Under a nondeterministic collation two distinct tenant ids can compare equal.',
				  HINT = 'Use a deterministic collation for the tenant column, for example COLLATE "C".';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._check_tenant_column(regclass, name) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._check_tenant_column(regclass, name) IS
	'Internal: raise 42804 for a tenant column where distinct tenant ids could compare equal or be truncated';

/* Protect one table (no checks: callers check). */
CREATE FUNCTION tenant_iso._protect_one(rel regclass, tenant_column name, via regclass) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c pg_class%ROWTYPE;
	typ oid;
	typmod int4;
	has_default boolean;
	ours boolean;
BEGIN
	IF EXISTS (SELECT 1 FROM tenant_iso.protected p WHERE p.rel = _protect_one.rel) THEN
		RETURN;
	END IF;
	SELECT * INTO c FROM pg_class WHERE oid = rel;
	SELECT a.atttypid, a.atttypmod, a.atthasdef,
		   tenant_iso._is_tenant_default(pg_get_expr(d.adbin, d.adrelid))
	  INTO typ, typmod, has_default, ours
	  FROM pg_attribute a
	  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	 WHERE a.attrelid = rel AND a.attname = tenant_column AND NOT a.attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', tenant_column, rel
			USING ERRCODE = 'undefined_column';
	END IF;
	-- partitions and children too: none may alias tenant ids
	PERFORM tenant_iso._check_tenant_column(rel, tenant_column);
	-- a partition created later inherits our default: it is still ours
	IF ours THEN
		has_default := false;
	END IF;
	-- record first: the ALTERs below fire the event trigger, which must see it
	INSERT INTO tenant_iso.protected (rel, tenant_column, via, default_set, prior_rls, prior_force)
		VALUES (rel, tenant_column, via, NOT has_default, c.relrowsecurity, c.relforcerowsecurity);
	EXECUTE format('ALTER TABLE ONLY %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', rel);
	IF NOT has_default AND NOT ours THEN
		EXECUTE format('ALTER TABLE ONLY %s ALTER COLUMN %I SET DEFAULT %s',
					   rel, tenant_column, tenant_iso._tenant_default_expr(typ, typmod));
	END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._protect_one(regclass, name, regclass) FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._protect_one(regclass, name, regclass) IS
	'Internal: enable and force row security on one table, set the tenant default, record it';

/* Every descendant (partitions and inheritance children, at any depth). */
CREATE FUNCTION tenant_iso._descendants(rel regclass) RETURNS SETOF regclass
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE d(oid) AS (
		SELECT inhrelid FROM pg_inherits WHERE inhparent = rel
		UNION
		SELECT i.inhrelid FROM pg_inherits i JOIN d ON i.inhparent = d.oid)
	SELECT oid::regclass FROM d
$$;
COMMENT ON FUNCTION tenant_iso._descendants(regclass) IS
	'Internal: all partitions and inheritance children of a table';
REVOKE ALL ON FUNCTION tenant_iso._descendants(regclass) FROM PUBLIC;

CREATE FUNCTION tenant_iso.protect(rel regclass, tenant_column name DEFAULT 'tenant_id',
											  strict boolean DEFAULT false) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c pg_class%ROWTYPE;
	typ regtype;
	existing name;
	leak record;
	kid regclass;
BEGIN
	IF rel IS NULL OR tenant_column IS NULL THEN
		RAISE EXCEPTION 'table and tenant column must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO c FROM pg_class WHERE oid = rel;
	IF c.relkind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '% is not a table', rel USING ERRCODE = 'wrong_object_type';
	END IF;
	IF NOT pg_has_role(tenant_iso._caller(), c.relowner, 'USAGE') THEN
		RAISE EXCEPTION 'must be owner of table %', rel USING ERRCODE = 'insufficient_privilege';
	END IF;
	SELECT a.atttypid INTO typ FROM pg_attribute a
	 WHERE a.attrelid = rel AND a.attname = tenant_column AND a.attnum > 0 AND NOT a.attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', tenant_column, rel
			USING ERRCODE = 'undefined_column';
	END IF;
	IF typ NOT IN ('text'::regtype, 'varchar'::regtype, 'uuid'::regtype,
				   'int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
		RAISE EXCEPTION 'tenant column "%" has unsupported type %', tenant_column, typ
			USING ERRCODE = 'datatype_mismatch',
				  HINT = 'The tenant column must be text, varchar, uuid, smallint, integer or bigint.';
	END IF;
	SELECT p.tenant_column INTO existing FROM tenant_iso.protected p WHERE p.rel = protect.rel;
	IF FOUND THEN
		IF existing <> tenant_column THEN
			RAISE EXCEPTION 'table % is already protected on column "%"', rel, existing
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
		RETURN;
	END IF;
	-- a parent shows its children's rows under its own policies: protecting
	-- a child alone would leave them readable through an unprotected parent
	SELECT a.anc INTO kid
	  FROM (WITH RECURSIVE up(anc) AS (
				SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) rel
				UNION
				SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid OPERATOR(pg_catalog.=) up.anc)
			SELECT up.anc::regclass AS anc FROM up) a
	 WHERE NOT EXISTS (SELECT 1 FROM tenant_iso.protected p WHERE p.rel OPERATOR(pg_catalog.=) a.anc)
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'table % inherits from %, which is not protected', rel, kid
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'Every row of a child or partition is also read through its parent, under the parent''s policies.',
				  HINT = 'Protect the root table: its partitions and children are protected with it.';
	END IF;
	PERFORM tenant_iso._check_tenant_column(rel, tenant_column);
	FOR kid IN SELECT * FROM tenant_iso._descendants(rel) LOOP
		PERFORM tenant_iso._check_tenant_column(kid, tenant_column);
	END LOOP;

	FOR leak IN SELECT * FROM tenant_iso._leaky_constraints(rel, tenant_column) LOOP
		IF strict THEN
			RAISE EXCEPTION '%', leak.detail
				USING ERRCODE = 'invalid_table_definition',
					  DETAIL = 'One tenant could learn whether another tenant''s key exists.',
					  HINT = 'Include the tenant column in the key, for example PRIMARY KEY (tenant_id, id).';
		END IF;
		RAISE WARNING '%', leak.detail
			USING DETAIL = 'One tenant could learn whether another tenant''s key exists.',
				  HINT = 'Include the tenant column in the key, for example PRIMARY KEY (tenant_id, id).';
	END LOOP;

	PERFORM tenant_iso._protect_one(rel, tenant_column, NULL);
	FOR kid IN SELECT * FROM tenant_iso._descendants(rel) LOOP
		PERFORM tenant_iso._protect_one(kid, tenant_column, rel);
	END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_iso.protect(regclass, name, boolean) IS
	'Put a table, its partitions and its inheritance children under tenant isolation (owner or superuser)';

CREATE FUNCTION tenant_iso.unprotect(rel regclass) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	owner oid;
	p record;
BEGIN
	SELECT relowner INTO owner FROM pg_class WHERE oid = rel;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'relation does not exist' USING ERRCODE = 'undefined_table';
	END IF;
	IF NOT pg_has_role(tenant_iso._caller(), owner, 'USAGE') THEN
		RAISE EXCEPTION 'must be owner of table %', rel USING ERRCODE = 'insufficient_privilege';
	END IF;
	PERFORM tenant_iso._assert_no_tenant_context('unprotect()', rel);
	IF NOT EXISTS (SELECT 1 FROM tenant_iso.protected x WHERE x.rel = unprotect.rel) THEN
		RETURN;
	END IF;
	FOR p IN SELECT x.* FROM tenant_iso.protected x
			  WHERE x.rel = unprotect.rel OR x.via = unprotect.rel LOOP
		IF NOT p.prior_force THEN
			EXECUTE format('ALTER TABLE ONLY %s NO FORCE ROW LEVEL SECURITY', p.rel);
		END IF;
		IF NOT p.prior_rls THEN
			EXECUTE format('ALTER TABLE ONLY %s DISABLE ROW LEVEL SECURITY', p.rel);
		END IF;
		IF p.default_set AND EXISTS (
				SELECT 1 FROM pg_attrdef d JOIN pg_attribute a
					ON a.attrelid = d.adrelid AND a.attnum = d.adnum
				 WHERE d.adrelid = p.rel AND a.attname = p.tenant_column
				   AND tenant_iso._is_tenant_default(pg_get_expr(d.adbin, d.adrelid))) THEN
			EXECUTE format('ALTER TABLE ONLY %s ALTER COLUMN %I DROP DEFAULT', p.rel, p.tenant_column);
		END IF;
		DELETE FROM tenant_iso.protected x WHERE x.rel = p.rel;
	END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_iso.unprotect(regclass) IS
	'Take a table (and the partitions and children it protected) out of tenant isolation (owner or superuser, outside any tenant context)';

/* New partitions and children of protected tables are protected as they appear. */
CREATE FUNCTION tenant_iso._on_ddl() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cmd record;
	anc record;
	kid regclass;
BEGIN
	FOR cmd IN SELECT DISTINCT objid FROM pg_event_trigger_ddl_commands()
				WHERE object_type IN ('table', 'table column') AND classid = 'pg_class'::regclass LOOP
		-- the table itself, under a protected ancestor
		IF NOT EXISTS (SELECT 1 FROM tenant_iso.protected p WHERE p.rel = cmd.objid) THEN
			WITH RECURSIVE a(oid, depth) AS (
				SELECT inhparent, 1 FROM pg_inherits WHERE inhrelid = cmd.objid
				UNION
				SELECT i.inhparent, a.depth + 1 FROM pg_inherits i JOIN a ON i.inhrelid = a.oid)
			SELECT p.rel, p.tenant_column INTO anc
			  FROM a JOIN tenant_iso.protected p ON p.rel = a.oid::regclass
			 ORDER BY a.depth LIMIT 1;
			IF FOUND THEN
				PERFORM tenant_iso._protect_one(cmd.objid::regclass, anc.tenant_column, anc.rel);
			END IF;
		END IF;
		-- children attached to it
		FOR anc IN SELECT p.rel, p.tenant_column FROM tenant_iso.protected p WHERE p.rel = cmd.objid LOOP
			FOR kid IN SELECT * FROM tenant_iso._descendants(anc.rel) LOOP
				PERFORM tenant_iso._protect_one(kid, anc.tenant_column, anc.rel);
			END LOOP;
		END LOOP;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._on_ddl() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._on_ddl() IS
	'Internal: event trigger that protects new partitions and children of protected tables';

CREATE EVENT TRIGGER tenant_iso_protect_children ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
	EXECUTE FUNCTION tenant_iso._on_ddl();

/*
 * The fast COPY FROM path (src/copy.c) runs PostgreSQL's own COPY into a
 * protected table with this function in its WHERE list: it raises, with the
 * message of a WITH CHECK violation, instead of skipping a foreign row.
 * IMMUTABLE (it returns true or raises, for its arguments alone): COPY then
 * keeps its batched inserts, which a volatile WHERE would turn off.
 */
CREATE FUNCTION tenant_iso._copy_check(ok boolean, relname text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ti_copy_check'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso._copy_check(boolean, text) IS
	'Internal (COPY FROM into a protected table): true, or 42501 for a row of another tenant';
GRANT EXECUTE ON FUNCTION tenant_iso._copy_check(boolean, text) TO PUBLIC;
