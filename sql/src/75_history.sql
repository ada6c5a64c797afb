/*
 * Self-service restore: row history of protected tables, read and restored
 * by the tenant that owns the rows (docs/design/history.md).
 *
 * enable_history() gives a protected table a history table in schema
 * tenant_iso_history and a row trigger (src/history.c) that appends every
 * change to it: 'I' insert markers (key only), 'U'/'D' old images, and 'T'
 * images of what an administrator's TRUNCATE removed.  Nobody but the
 * extension writes history tables and nobody but their superuser owner
 * reads them directly: tenants read their own history through the
 * functions below, which decide the acting tenant from the caller's
 * context (never from an argument a tenant could forge).
 *
 * Elevated paths (SECURITY DEFINER, search_path pinned, names qualified):
 *   enable_history, disable_history, set_history_retention, purge_history,
 *   _history_tenant, _history_rows, _history_truncate (trigger) and
 *   _history_on_ddl (event trigger).  The readers and restorers (history,
 *   deleted_rows, as_of, undelete, restore_rows, restore_tenant) run as
 *   the caller: their writes are the caller's own writes.
 */
CREATE SCHEMA tenant_iso_history;
COMMENT ON SCHEMA tenant_iso_history IS
	'History tables of history-enabled tables (tenant_iso.enable_history); written only by the extension';
REVOKE ALL ON SCHEMA tenant_iso_history FROM PUBLIC;

CREATE TABLE tenant_iso.history_tables (
	rel regclass PRIMARY KEY,
	hist regclass NOT NULL UNIQUE,
	tenant_column name NOT NULL,
	key_columns name[] NOT NULL,
	retention interval CHECK (retention > interval '0'),
	enabled_at timestamptz NOT NULL DEFAULT now(),
	columns jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE tenant_iso.history_tables IS
	'History-enabled tables: their history table, tenant and primary key columns, retention, and the column map (attnum -> history column, and since when it is recorded)';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.history_tables', '');

CREATE TABLE tenant_iso.history_retention (
	tenant_id text PRIMARY KEY REFERENCES tenant_iso.tenants ON UPDATE CASCADE ON DELETE CASCADE,
	retention interval NOT NULL CHECK (retention > interval '0')
);
COMMENT ON TABLE tenant_iso.history_retention IS
	'Per-tenant history retention, overriding the table''s and tenant_iso.history_retention';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.history_retention', '');
REVOKE ALL ON tenant_iso.history_tables, tenant_iso.history_retention FROM PUBLIC;

CREATE TYPE tenant_iso.restore_report AS (
	rel regclass,
	inserted bigint,
	updated bigint,
	deleted bigint
);
COMMENT ON TYPE tenant_iso.restore_report IS
	'What a restore changed (or, in a dry run, would change) in one table';

/* The registration of a history-enabled table (what is not secret about it). */
CREATE FUNCTION tenant_iso._history_reg(rel regclass) RETURNS tenant_iso.history_tables
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h tenant_iso.history_tables%ROWTYPE;
BEGIN
	SELECT * INTO h FROM tenant_iso.history_tables x WHERE x.rel OPERATOR(pg_catalog.=) _history_reg.rel;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % has no history', rel
			USING ERRCODE = 'undefined_object',
				  HINT = 'The table''s owner enables it with tenant_iso.enable_history().';
	END IF;
	RETURN h;
END
$$;
COMMENT ON FUNCTION tenant_iso._history_reg(regclass) IS
	'Internal: the history_tables row of a table (42704 when it has no history)';

CREATE FUNCTION tenant_iso._history_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'ti_history_trigger'
	LANGUAGE C;
COMMENT ON FUNCTION tenant_iso._history_trigger() IS
	'Internal: row trigger that appends each change of a history-enabled table to its history table';
REVOKE ALL ON FUNCTION tenant_iso._history_trigger() FROM PUBLIC;

/* "OPERATOR(schema.=)" of the btree equality of each primary key column. */
CREATE FUNCTION tenant_iso._history_key_ops(rel regclass)
	RETURNS TABLE (col name, typ regtype, eq text)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT a.attname, a.atttypid::pg_catalog.regtype,
		   pg_catalog.format('OPERATOR(%I.%s)', n.nspname, o.oprname)
	  FROM pg_catalog.pg_index i
	  CROSS JOIN LATERAL pg_catalog.generate_subscripts(i.indkey, 1) AS k(pos)
	  JOIN pg_catalog.pg_attribute a
		ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
	   AND a.attnum OPERATOR(pg_catalog.=) i.indkey[k.pos]
	  JOIN pg_catalog.pg_opclass oc ON oc.oid OPERATOR(pg_catalog.=) i.indclass[k.pos]
	  JOIN pg_catalog.pg_amop ao
		ON ao.amopfamily OPERATOR(pg_catalog.=) oc.opcfamily
	   AND ao.amoplefttype OPERATOR(pg_catalog.=) oc.opcintype
	   AND ao.amoprighttype OPERATOR(pg_catalog.=) oc.opcintype
	   AND ao.amopstrategy OPERATOR(pg_catalog.=) 3
	  JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) ao.amopopr
	  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace
	 WHERE i.indrelid OPERATOR(pg_catalog.=) rel AND i.indisprimary
	 ORDER BY k.pos
$$;
COMMENT ON FUNCTION tenant_iso._history_key_ops(regclass) IS
	'Internal: the primary key columns of a table with their types and qualified equality operators';

/*
 * "a.k1 OPERATOR(s.=) b.k1 AND ..." over the tenant column and the primary
 * key of a history-enabled table.
 */
CREATE FUNCTION tenant_iso._history_key_match(rel regclass, a text, b text) RETURNS text
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.format('%s.%I OPERATOR(pg_catalog.=) %s.%I', a, h.tenant_column, b, h.tenant_column)
		   OPERATOR(pg_catalog.||)
		   coalesce((SELECT pg_catalog.string_agg(pg_catalog.format(' AND %s.%I %s %s.%I', a, k.col, k.eq, b, k.col), '')
								  FROM tenant_iso._history_key_ops(rel) k
								 WHERE k.col OPERATOR(pg_catalog.<>) h.tenant_column), '')
	  FROM tenant_iso.history_tables h WHERE h.rel OPERATOR(pg_catalog.=) _history_key_match.rel
$$;
COMMENT ON FUNCTION tenant_iso._history_key_match(regclass, text, text) IS
	'Internal: the SQL condition that matches two rows of a history-enabled table by tenant and primary key';

/* The retention that applies to one tenant's history of one table. */
CREATE FUNCTION tenant_iso._history_retention_of(rel regclass, tenant text) RETURNS interval
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(
		(SELECT r.retention FROM tenant_iso.history_retention r WHERE r.tenant_id OPERATOR(pg_catalog.=) tenant),
		(SELECT h.retention FROM tenant_iso.history_tables h WHERE h.rel OPERATOR(pg_catalog.=) _history_retention_of.rel),
		pg_catalog.current_setting('tenant_iso.history_retention')::pg_catalog.interval)
$$;
COMMENT ON FUNCTION tenant_iso._history_retention_of(regclass, text) IS
	'Internal: the history retention of a tenant in a table (tenant override, else the table''s, else tenant_iso.history_retention)';
REVOKE ALL ON FUNCTION tenant_iso._history_retention_of(regclass, text) FROM PUBLIC;

/*
 * The tenant a history function acts for, from the caller's context:
 *   - in a tenant context: that tenant (another one named in tenant is
 *     refused), with the table privileges privs;
 *   - outside one: a superuser or a switcher, naming an existing tenant.
 * Returns the tenant and whether the caller has no context (an
 * administrator, for whom the restore functions enter the tenant's context).
 */
CREATE FUNCTION tenant_iso._history_tenant(rel regclass, tenant text, privs text,
										   OUT acting text, OUT admin boolean)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller regrole := tenant_iso._caller();
	ctx text := tenant_iso.current_tenant();
BEGIN
	IF rel IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM tenant_iso.history_tables h WHERE h.rel OPERATOR(pg_catalog.=) _history_tenant.rel) THEN
		RAISE EXCEPTION 'table % has no history', rel
			USING ERRCODE = 'undefined_object',
				  HINT = 'The table''s owner enables it with tenant_iso.enable_history().';
	END IF;
	IF ctx IS NOT NULL THEN
		acting := tenant_iso._enforced_tenant();	-- raises unless active and unambiguous
		IF tenant IS NOT NULL AND tenant OPERATOR(pg_catalog.<>) acting THEN
			RAISE EXCEPTION 'a tenant context acts only for its own tenant'
				USING ERRCODE = 'insufficient_privilege',
					  HINT = 'Leave the tenant argument out.';
		END IF;
		admin := false;
	ELSE
		IF tenant IS NULL THEN
			RAISE EXCEPTION 'no tenant context'
				USING ERRCODE = 'insufficient_privilege',
					  HINT = 'Connect as a tenant member role or call tenant_iso.set_tenant(); an administrator passes tenant => ''...''.';
		END IF;
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
						WHERE r.oid OPERATOR(pg_catalog.=) caller::pg_catalog.oid AND r.rolsuper)
		   AND NOT EXISTS (SELECT 1 FROM tenant_iso.switchers s
							WHERE pg_catalog.pg_has_role(caller, s.grantee, 'USAGE')) THEN
			RAISE EXCEPTION 'only a superuser or a switcher role acts for a tenant from outside its context'
				USING ERRCODE = 'insufficient_privilege';
		END IF;
		PERFORM tenant_iso._require_tenant(tenant);
		acting := tenant;
		admin := true;
	END IF;
	IF rel IS NOT NULL AND NOT pg_catalog.has_table_privilege(caller, rel, privs) THEN
		RAISE EXCEPTION 'permission denied for table %', rel
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Needs %s on the table.', privs);
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso._history_tenant(regclass, text, text) IS
	'Internal: the tenant a history function acts for (the caller''s own, or for an administrator the one it names)';
GRANT EXECUTE ON FUNCTION tenant_iso._history_tenant(regclass, text, text) TO PUBLIC;

/*
 * The column list of a table's row type, as "name type" for a column
 * definition list and as plain names, in attnum order.
 */
CREATE FUNCTION tenant_iso._history_columns(rel regclass)
	RETURNS TABLE (attnum int2, col name, typ text, generated boolean, identity_always boolean,
				   in_key boolean, since timestamptz)
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
		   a.attgenerated OPERATOR(pg_catalog.<>) '', a.attidentity OPERATOR(pg_catalog.=) 'a',
		   a.attname OPERATOR(pg_catalog.=) ANY (h.key_columns)
			   OR a.attname OPERATOR(pg_catalog.=) h.tenant_column,
		   (h.columns OPERATOR(pg_catalog.->) a.attnum::pg_catalog.text
					  OPERATOR(pg_catalog.->>) 'since')::pg_catalog.timestamptz
	  FROM pg_catalog.pg_attribute a
	  JOIN tenant_iso.history_tables h ON h.rel OPERATOR(pg_catalog.=) a.attrelid::pg_catalog.regclass
	 WHERE a.attrelid OPERATOR(pg_catalog.=) _history_columns.rel AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
	 ORDER BY a.attnum
$$;
COMMENT ON FUNCTION tenant_iso._history_columns(regclass) IS
	'Internal: the columns of a history-enabled table, with what restores must know about each';
GRANT EXECUTE ON FUNCTION tenant_iso._history_columns(regclass) TO PUBLIC;

/*
 * The acting tenant's history rows of a table, as the table's columns
 * (in its current column order; a column the history lacks reads NULL)
 * followed by op, valid_from, valid_to and xid.  mode:
 *   'after'   the first event after t1 of every key: its image is the
 *             key's state at t1 (op 'I': the key did not exist);
 *   'deleted' the keys whose latest event is a D or T at or after t1,
 *             optionally only the one named by key;
 *   'all'     every event at or after t1, newest first.
 * Needs a column definition list; callers build it from _history_columns.
 */
CREATE FUNCTION tenant_iso._history_rows(rel regclass, tenant text, mode text, t1 timestamptz,
										 key jsonb DEFAULT NULL)
	RETURNS SETOF record
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h tenant_iso.history_tables%ROWTYPE;
	who record;
	cols text;
	keys text;
	cond text := '';
	ts text := 'coalesce(h.valid_to, h.valid_from)';
BEGIN
	SELECT * INTO who FROM tenant_iso._history_tenant(rel, tenant, 'SELECT');
	SELECT * INTO h FROM tenant_iso.history_tables x WHERE x.rel OPERATOR(pg_catalog.=) _history_rows.rel;
	IF t1 IS NULL THEN
		RAISE EXCEPTION 'the time must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT pg_catalog.string_agg(
			   CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_attribute ha
								  WHERE ha.attrelid OPERATOR(pg_catalog.=) h.hist
									AND ha.attname OPERATOR(pg_catalog.=) c.col AND NOT ha.attisdropped
									AND pg_catalog.format_type(ha.atttypid, ha.atttypmod) OPERATOR(pg_catalog.=) c.typ)
					THEN pg_catalog.format('h.%I', c.col)
					ELSE pg_catalog.format('NULL::%s', c.typ) END, ', ' ORDER BY c.attnum)
	  INTO cols FROM tenant_iso._history_columns(rel) c;
	SELECT pg_catalog.string_agg(pg_catalog.format('h.%I', x), ', ' ORDER BY o)
	  INTO keys FROM pg_catalog.unnest(h.tenant_column OPERATOR(pg_catalog.||) h.key_columns) WITH ORDINALITY AS u(x, o);
	IF key IS NOT NULL THEN
		IF pg_catalog.jsonb_typeof(key) OPERATOR(pg_catalog.<>) 'object'
		   OR (SELECT pg_catalog.array_agg(k ORDER BY k) FROM pg_catalog.jsonb_object_keys(key) k
				WHERE k OPERATOR(pg_catalog.<>) h.tenant_column::pg_catalog.text)
			  IS DISTINCT FROM (SELECT pg_catalog.array_agg(k::pg_catalog.text ORDER BY k::pg_catalog.text)
								  FROM pg_catalog.unnest(h.key_columns) k) THEN
			RAISE EXCEPTION 'key must name exactly the primary key columns of %', rel
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = pg_catalog.format('The primary key is (%s).', pg_catalog.array_to_string(h.key_columns, ', '));
		END IF;
		SELECT pg_catalog.string_agg(pg_catalog.format(' AND h.%I %s (pg_catalog.jsonb_populate_record(NULL::%s, $3)).%I',
													   k.col, k.eq, h.hist, k.col), '')
		  INTO cond FROM tenant_iso._history_key_ops(rel) k
		 WHERE k.col OPERATOR(pg_catalog.<>) h.tenant_column;
		cond := coalesce(cond, '');
	END IF;
	IF mode OPERATOR(pg_catalog.=) 'after' THEN
		RETURN QUERY EXECUTE pg_catalog.format(
			'SELECT DISTINCT ON (%s) %s, h.op, h.valid_from, h.valid_to, h.xid FROM %s h'
			' WHERE h.%I OPERATOR(pg_catalog.=) $1 AND %s OPERATOR(pg_catalog.>) $2%s'
			' ORDER BY %s, %s, h.xid',
			keys, cols, h.hist, h.tenant_column, ts, cond, keys, ts)
			USING who.acting, t1, key;
	ELSIF mode OPERATOR(pg_catalog.=) 'deleted' THEN
		RETURN QUERY EXECUTE pg_catalog.format(
			'SELECT * FROM (SELECT DISTINCT ON (%s) %s, h.op, h.valid_from, h.valid_to, h.xid FROM %s h'
			' WHERE h.%I OPERATOR(pg_catalog.=) $1%s'
			' ORDER BY %s, %s DESC, h.xid DESC) d'
			' WHERE d.op OPERATOR(pg_catalog.=) ANY (''{D,T}''::pg_catalog."char"[]) AND d.valid_to OPERATOR(pg_catalog.>=) $2'
			' ORDER BY d.valid_to DESC',
			keys, cols, h.hist, h.tenant_column, cond, keys, ts)
			USING who.acting, t1, key;
	ELSIF mode OPERATOR(pg_catalog.=) 'all' THEN
		RETURN QUERY EXECUTE pg_catalog.format(
			'SELECT %s, h.op, h.valid_from, h.valid_to, h.xid FROM %s h'
			' WHERE h.%I OPERATOR(pg_catalog.=) $1 AND %s OPERATOR(pg_catalog.>=) $2'
			' ORDER BY %s DESC, h.xid DESC',
			cols, h.hist, h.tenant_column, ts, ts)
			USING who.acting, t1, key;
	ELSE
		RAISE EXCEPTION 'unknown history mode' USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso._history_rows(regclass, text, text, timestamptz, jsonb) IS
	'Internal: the acting tenant''s history rows of a table (needs a column definition list)';
GRANT EXECUTE ON FUNCTION tenant_iso._history_rows(regclass, text, text, timestamptz, jsonb) TO PUBLIC;

/* "FROM tenant_iso._history_rows(...) AS h(<the table's columns>, op, ...)" */
CREATE FUNCTION tenant_iso._history_source(rel regclass, mode text, key boolean DEFAULT false) RETURNS text
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.format(
		'tenant_iso._history_rows(%L::pg_catalog.regclass, $1, %L, $2%s) AS h(%s, op "char", valid_from timestamptz, valid_to timestamptz, xid xid8)',
		rel::pg_catalog.text, mode, CASE WHEN key THEN ', $3' ELSE '' END,
		pg_catalog.string_agg(pg_catalog.format('%I %s', c.col, c.typ), ', ' ORDER BY c.attnum))
	  FROM tenant_iso._history_columns(rel) c
$$;
COMMENT ON FUNCTION tenant_iso._history_source(regclass, text, boolean) IS
	'Internal: the FROM item that reads a table''s history with its column definition list';
GRANT EXECUTE ON FUNCTION tenant_iso._history_source(regclass, text, boolean) TO PUBLIC;

/* The oldest time a rewind of the tenant's rows of a table can go back to. */
CREATE FUNCTION tenant_iso._history_horizon(rel regclass, tenant text) RETURNS timestamptz
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- only the caller's own tenant (or, for an administrator, the one named)
	PERFORM tenant_iso._history_tenant(NULL, tenant, 'SELECT');
	RETURN (SELECT greatest(h.enabled_at,
							pg_catalog.now() OPERATOR(pg_catalog.-) tenant_iso._history_retention_of(h.rel, tenant))
			  FROM tenant_iso.history_tables h WHERE h.rel OPERATOR(pg_catalog.=) _history_horizon.rel);
END
$$;
COMMENT ON FUNCTION tenant_iso._history_horizon(regclass, text) IS
	'Internal: how far back the history of a table reaches for a tenant (enable time, or the retention)';
GRANT EXECUTE ON FUNCTION tenant_iso._history_horizon(regclass, text) TO PUBLIC;

CREATE FUNCTION tenant_iso._history_check_at(rel regclass, tenant text, at timestamptz) RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	horizon timestamptz := tenant_iso._history_horizon(rel, tenant);
BEGIN
	IF at IS NULL THEN
		RAISE EXCEPTION 'the time must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF at OPERATOR(pg_catalog.<) horizon THEN
		RAISE EXCEPTION 'the history of % goes back to %, not to %', rel, horizon, at
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'History starts when enable_history() ran and is kept for the retention.';
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso._history_check_at(regclass, text, timestamptz) IS
	'Internal: refuse a point in time that the history of a table no longer (or not yet) covers';

/*
 * Rewind (or undelete) one table for one tenant.  Runs as the caller.
 * Inserts and updates first, then deletes: a restored row may point at a
 * restored parent, and a row created since points only at rows that are
 * still there (restore_tenant orders the tables by their foreign keys).
 * phase: 'write' (inserts and updates) or 'delete'; mode: 'after' (rewind
 * to t1) or 'deleted' (bring back what was deleted since t1).
 */
CREATE FUNCTION tenant_iso._history_apply(rel regclass, acting text, mode text, t1 timestamptz,
										  key jsonb, phase text,
										  INOUT inserted bigint, INOUT updated bigint, INOUT deleted bigint)
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h tenant_iso.history_tables%ROWTYPE;
	src text := tenant_iso._history_source(rel, mode, true);
	match text;
	tc text;
	ins_cols text;
	ins_vals text;
	upd_set text;
	cmp_c text;
	cmp_h text;
	n bigint;
BEGIN
	h := tenant_iso._history_reg(rel);
	match := tenant_iso._history_key_match(rel, 'c', 'h');
	tc := pg_catalog.format('c.%I OPERATOR(pg_catalog.=) $1', h.tenant_column);
	-- a column added after an image was recorded takes its default
	SELECT pg_catalog.string_agg(pg_catalog.format('%I', c.col), ', ' ORDER BY c.attnum),
		   pg_catalog.string_agg(
			   CASE WHEN c.since IS NOT NULL AND d.expr IS NOT NULL
					THEN pg_catalog.format('CASE WHEN h.valid_to OPERATOR(pg_catalog.<) %L::pg_catalog.timestamptz THEN (%s)::%s ELSE h.%I END',
										   c.since, d.expr, c.typ, c.col)
					ELSE pg_catalog.format('h.%I', c.col) END, ', ' ORDER BY c.attnum)
	  INTO ins_cols, ins_vals
	  FROM tenant_iso._history_columns(rel) c
	  LEFT JOIN LATERAL (SELECT pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS expr
						   FROM pg_catalog.pg_attrdef ad
						  WHERE ad.adrelid OPERATOR(pg_catalog.=) rel AND ad.adnum OPERATOR(pg_catalog.=) c.attnum) d ON true
	 WHERE NOT c.generated;
	SELECT pg_catalog.string_agg(
			   pg_catalog.format('%I = %s', c.col,
								 CASE WHEN c.since IS NOT NULL
									  THEN pg_catalog.format('CASE WHEN h.valid_to OPERATOR(pg_catalog.<) %L::pg_catalog.timestamptz THEN c.%I ELSE h.%I END',
															 c.since, c.col, c.col)
									  ELSE pg_catalog.format('h.%I', c.col) END), ', ' ORDER BY c.attnum),
		   pg_catalog.string_agg(pg_catalog.format('c.%I', c.col), ', ' ORDER BY c.attnum),
		   pg_catalog.string_agg(CASE WHEN c.since IS NOT NULL
									  THEN pg_catalog.format('CASE WHEN h.valid_to OPERATOR(pg_catalog.<) %L::pg_catalog.timestamptz THEN c.%I ELSE h.%I END',
															 c.since, c.col, c.col)
									  ELSE pg_catalog.format('h.%I', c.col) END, ', ' ORDER BY c.attnum)
	  INTO upd_set, cmp_c, cmp_h
	  FROM tenant_iso._history_columns(rel) c
	 WHERE NOT c.generated AND NOT c.in_key AND NOT c.identity_always;

	IF phase OPERATOR(pg_catalog.=) 'write' THEN
		EXECUTE pg_catalog.format(
			'INSERT INTO %s AS c (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s'
			' WHERE h.op OPERATOR(pg_catalog.<>) ''I'' AND NOT EXISTS (SELECT 1 FROM %s c WHERE %s AND %s)',
			rel, ins_cols, ins_vals, src, rel, tc, match)
			USING acting, t1, key;
		GET DIAGNOSTICS n = ROW_COUNT;
		inserted := inserted + n;
		IF upd_set IS NOT NULL THEN
			EXECUTE pg_catalog.format(
				'UPDATE %s AS c SET %s FROM %s WHERE h.op OPERATOR(pg_catalog.<>) ''I'' AND %s AND %s'
				' AND ROW(%s)::pg_catalog.text IS DISTINCT FROM ROW(%s)::pg_catalog.text',
				rel, upd_set, src, tc, match, cmp_c, cmp_h)
				USING acting, t1, key;
			GET DIAGNOSTICS n = ROW_COUNT;
			updated := updated + n;
		END IF;
	ELSIF mode OPERATOR(pg_catalog.=) 'after' THEN
		EXECUTE pg_catalog.format(
			'DELETE FROM %s AS c USING %s WHERE h.op OPERATOR(pg_catalog.=) ''I'' AND %s AND %s',
			rel, src, tc, match)
			USING acting, t1, key;
		GET DIAGNOSTICS n = ROW_COUNT;
		deleted := deleted + n;
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso._history_apply(regclass, text, text, timestamptz, jsonb, text, bigint, bigint, bigint) IS
	'Internal: one phase of a restore of one table for one tenant, as the caller';

/*
 * The history-enabled tables in foreign-key order (a referenced table
 * before the tables that reference it; cycles in name order).
 */
CREATE FUNCTION tenant_iso._history_fk_order() RETURNS TABLE (rel regclass, depth int)
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE e AS (
		SELECT DISTINCT c.conrelid::pg_catalog.regclass AS child, c.confrelid::pg_catalog.regclass AS parent
		  FROM pg_catalog.pg_constraint c
		  JOIN tenant_iso.history_tables a ON a.rel OPERATOR(pg_catalog.=) c.conrelid::pg_catalog.regclass
		  JOIN tenant_iso.history_tables b ON b.rel OPERATOR(pg_catalog.=) c.confrelid::pg_catalog.regclass
		 WHERE c.contype OPERATOR(pg_catalog.=) 'f' AND c.conrelid OPERATOR(pg_catalog.<>) c.confrelid
		   AND c.conparentid OPERATOR(pg_catalog.=) 0
	), d(rel, depth, path) AS (
		SELECT h.rel, 0, ARRAY[h.rel::pg_catalog.oid] FROM tenant_iso.history_tables h
		UNION ALL
		SELECT e.child, d.depth OPERATOR(pg_catalog.+) 1, d.path OPERATOR(pg_catalog.||) e.child::pg_catalog.oid
		  FROM d JOIN e ON e.parent OPERATOR(pg_catalog.=) d.rel
		 WHERE NOT e.child::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (d.path)
	)
	SELECT d.rel, pg_catalog.max(d.depth)::int FROM d GROUP BY d.rel
	 ORDER BY 2, d.rel::pg_catalog.text
$$;
COMMENT ON FUNCTION tenant_iso._history_fk_order() IS
	'Internal: history-enabled tables, referenced tables first';

/*
 * Apply a restore to some tables: writes parents first, then deletes
 * children first.  With find, a table and phase whose bulk statement
 * fails is redone key by key, so that the error names the key.
 */
CREATE FUNCTION tenant_iso._history_run(rels regclass[], acting text, mode text, t1 timestamptz,
										key jsonb, find boolean)
	RETURNS tenant_iso.restore_report[]
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	reports tenant_iso.restore_report[] := '{}';
	rep tenant_iso.restore_report;
	n int := coalesce(pg_catalog.array_length(rels, 1), 0);
	i int;
	ph text;
	k jsonb;
	msg text;
	det text;
	state text;
BEGIN
	FOR i IN 1 .. n LOOP
		reports := reports OPERATOR(pg_catalog.||) ROW(rels[i], 0, 0, 0)::tenant_iso.restore_report;
	END LOOP;
	FOREACH ph IN ARRAY ARRAY['write', 'delete'] LOOP
		FOR i IN 1 .. n LOOP
			rep := reports[CASE WHEN ph OPERATOR(pg_catalog.=) 'write' THEN i ELSE n OPERATOR(pg_catalog.-) i OPERATOR(pg_catalog.+) 1 END];
			BEGIN
				SELECT * INTO rep.inserted, rep.updated, rep.deleted
				  FROM tenant_iso._history_apply(rep.rel, acting, mode, t1, key, ph,
												 rep.inserted, rep.updated, rep.deleted);
			EXCEPTION WHEN integrity_constraint_violation OR check_violation OR not_null_violation
						   OR foreign_key_violation OR unique_violation OR exclusion_violation
						   OR restrict_violation THEN
				IF NOT find THEN
					RAISE;
				END IF;
				-- key by key, to name the one that fails
				FOR k IN EXECUTE pg_catalog.format(
						'SELECT pg_catalog.jsonb_build_object(%s) FROM %s',
						(SELECT pg_catalog.string_agg(pg_catalog.format('%L, h.%I', x.col, x.col), ', ')
						   FROM tenant_iso._history_key_ops(rep.rel) x
						  WHERE x.col OPERATOR(pg_catalog.<>) (tenant_iso._history_reg(rep.rel)).tenant_column),
						tenant_iso._history_source(rep.rel, mode, true))
						USING acting, t1, key LOOP
					BEGIN
						PERFORM tenant_iso._history_apply(rep.rel, acting, mode, t1, k, ph, 0, 0, 0);
					EXCEPTION WHEN integrity_constraint_violation OR check_violation OR not_null_violation
								   OR foreign_key_violation OR unique_violation OR exclusion_violation
								   OR restrict_violation THEN
						GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, state = RETURNED_SQLSTATE;
						RAISE EXCEPTION 'restore of % would violate a constraint; nothing was changed', rep.rel
							USING ERRCODE = state,
								  DETAIL = pg_catalog.format('Row with key %s: %s%s', k, msg,
															 CASE WHEN coalesce(det, '') OPERATOR(pg_catalog.=) '' THEN ''
																  ELSE ' ' OPERATOR(pg_catalog.||) det END),
								  HINT = 'Fix or remove the conflicting row, or restore to another point in time.';
					END;
				END LOOP;
				RAISE;	-- no single key fails on its own: the original error
			END;
			reports[CASE WHEN ph OPERATOR(pg_catalog.=) 'write' THEN i ELSE n OPERATOR(pg_catalog.-) i OPERATOR(pg_catalog.+) 1 END] := rep;
		END LOOP;
	END LOOP;
	RETURN reports;
END
$$;
COMMENT ON FUNCTION tenant_iso._history_run(regclass[], text, text, timestamptz, jsonb, boolean) IS
	'Internal: apply a restore to some tables in foreign-key order, as the caller';

/*
 * The restore driver, in one subtransaction.  A dry run makes the same
 * changes and rolls them back, so its counts are the real run's.  A
 * constraint violation is redone key by key to name the key, and nothing
 * stays changed.
 */
CREATE FUNCTION tenant_iso._history_restore(rels regclass[], tenant text, mode text, t1 timestamptz,
											key jsonb, dry_run boolean)
	RETURNS SETOF tenant_iso.restore_report
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	who record;
	r regclass;
	reports tenant_iso.restore_report[];
BEGIN
	IF dry_run IS NULL THEN
		RAISE EXCEPTION 'dry_run must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO who FROM tenant_iso._history_tenant(NULL, tenant, 'SELECT');
	FOREACH r IN ARRAY coalesce(rels, '{}') LOOP
		PERFORM tenant_iso._history_tenant(r, tenant, 'SELECT, INSERT, UPDATE, DELETE');
		IF mode OPERATOR(pg_catalog.=) 'after' THEN
			PERFORM tenant_iso._history_check_at(r, who.acting, t1);
		ELSIF t1 IS NULL THEN
			RAISE EXCEPTION 'the time must not be null' USING ERRCODE = 'null_value_not_allowed';
		END IF;
	END LOOP;
	IF coalesce(pg_catalog.array_length(rels, 1), 0) OPERATOR(pg_catalog.=) 0 THEN
		RETURN;
	END IF;
	IF who.admin THEN
		-- an administrator acts inside the tenant's context for this call
		PERFORM tenant_iso.set_tenant(who.acting, true);
	END IF;
	BEGIN
		reports := tenant_iso._history_run(rels, who.acting, mode, t1, key, false);
		IF dry_run THEN
			RAISE EXCEPTION 'dry run' USING ERRCODE = 'TIDRY';
		END IF;
	EXCEPTION
		WHEN SQLSTATE 'TIDRY' THEN
			NULL;	-- the dry run's changes are rolled back; reports keep the counts
		WHEN integrity_constraint_violation OR check_violation OR not_null_violation
			 OR foreign_key_violation OR unique_violation OR exclusion_violation
			 OR restrict_violation THEN
			-- again, key by key: this raises with the key that fails
			PERFORM tenant_iso._history_run(rels, who.acting, mode, t1, key, true);
			RAISE EXCEPTION 'restore would violate a constraint; nothing was changed'
				USING ERRCODE = 'integrity_constraint_violation';
	END;
	IF who.admin THEN
		PERFORM tenant_iso.reset_tenant();
	END IF;
	RETURN QUERY SELECT * FROM pg_catalog.unnest(reports);
END
$$;
COMMENT ON FUNCTION tenant_iso._history_restore(regclass[], text, text, timestamptz, jsonb, boolean) IS
	'Internal: restore the acting tenant''s rows of some tables in one subtransaction (dry run: rolled back), as the caller';

CREATE FUNCTION tenant_iso.undelete(rel regclass, since timestamptz, key jsonb DEFAULT NULL,
									tenant text DEFAULT NULL)
	RETURNS SETOF tenant_iso.restore_report
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT * FROM tenant_iso._history_restore(ARRAY[rel], tenant, 'deleted', since, key, false)
$$;
COMMENT ON FUNCTION tenant_iso.undelete(regclass, timestamptz, jsonb, text) IS
	'Bring back the current tenant''s rows of a table deleted since a time (or the one with this primary key)';

CREATE FUNCTION tenant_iso.restore_rows(rel regclass, at timestamptz, dry_run boolean DEFAULT false,
										tenant text DEFAULT NULL)
	RETURNS SETOF tenant_iso.restore_report
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT * FROM tenant_iso._history_restore(ARRAY[rel], tenant, 'after', at, NULL, dry_run)
$$;
COMMENT ON FUNCTION tenant_iso.restore_rows(regclass, timestamptz, boolean, text) IS
	'Rewind the current tenant''s rows of one table to their state at a point in time';

CREATE FUNCTION tenant_iso.restore_tenant(at timestamptz, dry_run boolean DEFAULT false,
										  tenant text DEFAULT NULL)
	RETURNS SETOF tenant_iso.restore_report
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT * FROM tenant_iso._history_restore(
		(SELECT pg_catalog.array_agg(o.rel ORDER BY o.depth, o.rel::pg_catalog.text)
		   FROM tenant_iso._history_fk_order() o), tenant, 'after', at, NULL, dry_run)
$$;
COMMENT ON FUNCTION tenant_iso.restore_tenant(timestamptz, boolean, text) IS
	'Rewind the current tenant''s rows of every history-enabled table to a point in time, in foreign-key order, in one transaction';

CREATE FUNCTION tenant_iso.history(rel regclass, since timestamptz DEFAULT now() - interval '1 day',
								   tenant text DEFAULT NULL)
	RETURNS TABLE (changed_at timestamptz, op "char", key jsonb, image jsonb,
				   valid_from timestamptz, valid_to timestamptz, xid xid8)
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	who record;
	keyobj text;
BEGIN
	SELECT * INTO who FROM tenant_iso._history_tenant(rel, tenant, 'SELECT');
	SELECT pg_catalog.format('pg_catalog.jsonb_build_object(%s)',
							 pg_catalog.string_agg(pg_catalog.format('%L, h.%I', k.col, k.col), ', '))
	  INTO keyobj FROM tenant_iso._history_key_ops(rel) k;
	RETURN QUERY EXECUTE pg_catalog.format(
		'SELECT coalesce(h.valid_to, h.valid_from), h.op, %s,'
		' CASE WHEN h.op OPERATOR(pg_catalog.=) ''I'' THEN %s'
		' ELSE pg_catalog.to_jsonb(h) OPERATOR(pg_catalog.-) ''{op,valid_from,valid_to,xid}''::pg_catalog.text[] END,'
		' h.valid_from, h.valid_to, h.xid FROM %s',
		keyobj, keyobj, tenant_iso._history_source(rel, 'all'))
		USING who.acting, since;
END
$$;
COMMENT ON FUNCTION tenant_iso.history(regclass, timestamptz, text) IS
	'The current tenant''s changes to a table since a time, newest first (op I insert, U update, D delete, T truncate)';

CREATE FUNCTION tenant_iso.deleted_rows(rel regclass, since timestamptz DEFAULT now() - interval '1 day',
										tenant text DEFAULT NULL)
	RETURNS TABLE (deleted_at timestamptz, key jsonb, image jsonb, xid xid8)
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	who record;
	keyobj text;
	tc name;
BEGIN
	SELECT * INTO who FROM tenant_iso._history_tenant(rel, tenant, 'SELECT');
	SELECT pg_catalog.format('pg_catalog.jsonb_build_object(%s)',
							 pg_catalog.string_agg(pg_catalog.format('%L, h.%I', k.col, k.col), ', '))
	  INTO keyobj FROM tenant_iso._history_key_ops(rel) k;
	tc := (tenant_iso._history_reg(rel)).tenant_column;
	IF who.admin THEN
		PERFORM tenant_iso.set_tenant(who.acting, true);
	END IF;
	RETURN QUERY EXECUTE pg_catalog.format(
		'SELECT h.valid_to, %s, pg_catalog.to_jsonb(h) OPERATOR(pg_catalog.-) ''{op,valid_from,valid_to,xid}''::pg_catalog.text[], h.xid'
		' FROM %s WHERE NOT EXISTS (SELECT 1 FROM %s c WHERE c.%I OPERATOR(pg_catalog.=) $1 AND %s)'
		' ORDER BY h.valid_to DESC',
		keyobj, tenant_iso._history_source(rel, 'deleted'), rel, tc,
		tenant_iso._history_key_match(rel, 'c', 'h'))
		USING who.acting, since;
	IF who.admin THEN
		PERFORM tenant_iso.reset_tenant();
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso.deleted_rows(regclass, timestamptz, text) IS
	'The recycle bin: the current tenant''s rows of a table deleted since a time and not there now, newest first';

CREATE FUNCTION tenant_iso.as_of(rel regclass, at timestamptz, tenant text DEFAULT NULL)
	RETURNS SETOF record
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	who record;
	cols text;
	tc name;
BEGIN
	SELECT * INTO who FROM tenant_iso._history_tenant(rel, tenant, 'SELECT');
	PERFORM tenant_iso._history_check_at(rel, who.acting, at);
	tc := (tenant_iso._history_reg(rel)).tenant_column;
	SELECT pg_catalog.string_agg(pg_catalog.format('%I', c.col), ', ' ORDER BY c.attnum)
	  INTO cols FROM tenant_iso._history_columns(rel) c;
	IF who.admin THEN
		PERFORM tenant_iso.set_tenant(who.acting, true);
	END IF;
	-- rows without a change since at are as they are now; the others as
	-- the image of their first change after at (none: created since)
	RETURN QUERY EXECUTE pg_catalog.format(
		'SELECT %s FROM %s c WHERE c.%I OPERATOR(pg_catalog.=) $1'
		' AND NOT EXISTS (SELECT 1 FROM %s WHERE %s)'
		' UNION ALL SELECT %s FROM %s WHERE h.op OPERATOR(pg_catalog.<>) ''I''',
		(SELECT pg_catalog.string_agg(pg_catalog.format('c.%I', c.col), ', ' ORDER BY c.attnum) FROM tenant_iso._history_columns(rel) c),
		rel, tc, tenant_iso._history_source(rel, 'after'), tenant_iso._history_key_match(rel, 'c', 'h'),
		(SELECT pg_catalog.string_agg(pg_catalog.format('h.%I', c.col), ', ' ORDER BY c.attnum) FROM tenant_iso._history_columns(rel) c),
		tenant_iso._history_source(rel, 'after'))
		USING who.acting, at;
	IF who.admin THEN
		PERFORM tenant_iso.reset_tenant();
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso.as_of(regclass, timestamptz, text) IS
	'The current tenant''s rows of a table as they were at a point in time; needs a column definition list with the table''s columns: AS t(id int, ...)';

/* ------------------------------------------------------------------ */
/* Administration                                                       */
/* ------------------------------------------------------------------ */

/* BEFORE TRUNCATE: what the TRUNCATE removes goes to history as 'T'. */
CREATE FUNCTION tenant_iso._history_truncate() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h tenant_iso.history_tables%ROWTYPE;
	hcols text;
	scols text;
BEGIN
	IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) TG_RELID) OPERATOR(pg_catalog.=) 'p' THEN
		RETURN NULL;	-- its partitions' own triggers record their rows
	END IF;
	SELECT x.* INTO h FROM tenant_iso.history_tables x
	 WHERE x.rel::pg_catalog.oid OPERATOR(pg_catalog.=) TG_RELID
		OR x.rel::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (
			SELECT a.relid FROM pg_catalog.pg_partition_ancestors(TG_RELID) a)
	 LIMIT 1;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	SELECT pg_catalog.string_agg(pg_catalog.format('%I', ha.attname), ', ' ORDER BY ha.attnum),
		   pg_catalog.string_agg(pg_catalog.format('r.%I', ha.attname), ', ' ORDER BY ha.attnum)
	  INTO hcols, scols
	  FROM pg_catalog.pg_attribute ha
	  JOIN pg_catalog.pg_attribute sa
		ON sa.attrelid OPERATOR(pg_catalog.=) TG_RELID AND sa.attname OPERATOR(pg_catalog.=) ha.attname
	   AND NOT sa.attisdropped AND sa.atttypid OPERATOR(pg_catalog.=) ha.atttypid
	 WHERE ha.attrelid OPERATOR(pg_catalog.=) h.hist AND ha.attnum OPERATOR(pg_catalog.>) 0 AND NOT ha.attisdropped
	   AND ha.attname OPERATOR(pg_catalog.<>) ALL ('{valid_from,valid_to,op,xid}'::pg_catalog.name[]);
	EXECUTE pg_catalog.format(
		'INSERT INTO %s (%s, valid_from, valid_to, op, xid)'
		' SELECT %s, (SELECT pg_catalog.max(coalesce(h.valid_to, h.valid_from)) FROM %s h WHERE %s),'
		' pg_catalog.clock_timestamp(), ''T'', pg_catalog.pg_current_xact_id() FROM ONLY %s r',
		h.hist, hcols, scols, h.hist, tenant_iso._history_key_match(h.rel, 'h', 'r'), TG_RELID::pg_catalog.regclass);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenant_iso._history_truncate() IS
	'Internal: BEFORE TRUNCATE trigger that keeps the rows a TRUNCATE removes in the history table';
REVOKE ALL ON FUNCTION tenant_iso._history_truncate() FROM PUBLIC;

/* The TRUNCATE triggers of a table and of every partition below it. */
CREATE FUNCTION tenant_iso._history_truncate_triggers(rel regclass, create_them boolean) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t regclass;
BEGIN
	FOR t IN SELECT rel UNION SELECT d.relid::pg_catalog.regclass FROM pg_catalog.pg_partition_tree(rel) d LOOP
		IF create_them THEN
			IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
							WHERE g.tgrelid OPERATOR(pg_catalog.=) t AND g.tgname OPERATOR(pg_catalog.=) 'tenant_iso_history_truncate') THEN
				EXECUTE pg_catalog.format('CREATE TRIGGER tenant_iso_history_truncate BEFORE TRUNCATE ON %s'
										  ' FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._history_truncate()', t);
			END IF;
		ELSE
			EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS tenant_iso_history_truncate ON %s', t);
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_iso._history_truncate_triggers(regclass, boolean) IS
	'Internal: create or drop the TRUNCATE history triggers of a table and its partitions';
REVOKE ALL ON FUNCTION tenant_iso._history_truncate_triggers(regclass, boolean) FROM PUBLIC;

/*
 * Keep a history table's columns in step with its table (ALTER TABLE):
 * a new column is added (older images restore with its default), a
 * renamed one is renamed, a dropped one is set aside as
 * "<name>@dropped<attnum>", and a column whose type changed is converted
 * when both types are built in (the cast then runs no user code), else set
 * aside as "<name>@retyped<attnum>" and added anew.
 */
CREATE FUNCTION tenant_iso._history_sync(rel regclass) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h tenant_iso.history_tables%ROWTYPE;
	a record;
	m jsonb;
	old name;
	htyp text;
	cols jsonb := '{}';
	k text;
BEGIN
	SELECT * INTO h FROM tenant_iso.history_tables x WHERE x.rel OPERATOR(pg_catalog.=) _history_sync.rel;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	-- dropped columns first, so that their names are free
	FOR k IN SELECT * FROM pg_catalog.jsonb_object_keys(h.columns) LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute x
						WHERE x.attrelid OPERATOR(pg_catalog.=) rel AND x.attnum OPERATOR(pg_catalog.=) k::pg_catalog.int2
						  AND NOT x.attisdropped) THEN
			EXECUTE pg_catalog.format('ALTER TABLE %s RENAME COLUMN %I TO %I', h.hist,
									  h.columns OPERATOR(pg_catalog.->) k OPERATOR(pg_catalog.->>) 'name',
									  pg_catalog.left((h.columns OPERATOR(pg_catalog.->) k OPERATOR(pg_catalog.->>) 'name'), 40)
									  OPERATOR(pg_catalog.||) '@dropped' OPERATOR(pg_catalog.||) k);
		END IF;
	END LOOP;
	FOR a IN SELECT x.attnum, x.attname, x.atttypid, pg_catalog.format_type(x.atttypid, x.atttypmod) AS typ,
					x.attcollation
			   FROM pg_catalog.pg_attribute x
			  WHERE x.attrelid OPERATOR(pg_catalog.=) rel AND x.attnum OPERATOR(pg_catalog.>) 0 AND NOT x.attisdropped
			  ORDER BY x.attnum LOOP
		m := h.columns OPERATOR(pg_catalog.->) a.attnum::pg_catalog.text;
		IF m IS NULL THEN
			EXECUTE pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s', h.hist, a.attname, a.typ);
			m := pg_catalog.jsonb_build_object('name', a.attname, 'since', pg_catalog.clock_timestamp());
		ELSE
			old := m OPERATOR(pg_catalog.->>) 'name';
			IF old OPERATOR(pg_catalog.<>) a.attname THEN
				EXECUTE pg_catalog.format('ALTER TABLE %s RENAME COLUMN %I TO %I', h.hist, old, a.attname);
				m := m OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('name', a.attname);
			END IF;
			SELECT pg_catalog.format_type(x.atttypid, x.atttypmod) INTO htyp
			  FROM pg_catalog.pg_attribute x
			 WHERE x.attrelid OPERATOR(pg_catalog.=) h.hist AND x.attname OPERATOR(pg_catalog.=) a.attname;
			IF htyp OPERATOR(pg_catalog.<>) a.typ THEN
				IF a.atttypid OPERATOR(pg_catalog.<) 10000 AND (SELECT x.atttypid FROM pg_catalog.pg_attribute x
						WHERE x.attrelid OPERATOR(pg_catalog.=) h.hist AND x.attname OPERATOR(pg_catalog.=) a.attname)
						OPERATOR(pg_catalog.<) 10000 THEN
					BEGIN
						EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING %I::%s',
												  h.hist, a.attname, a.typ, a.attname, a.typ);
						htyp := a.typ;
					EXCEPTION WHEN OTHERS THEN
						NULL;
					END;
				END IF;
				IF htyp OPERATOR(pg_catalog.<>) a.typ THEN
					EXECUTE pg_catalog.format('ALTER TABLE %s RENAME COLUMN %I TO %I', h.hist, a.attname,
											  pg_catalog.left(a.attname, 40) OPERATOR(pg_catalog.||) '@retyped'
											  OPERATOR(pg_catalog.||) a.attnum::pg_catalog.text);
					EXECUTE pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s', h.hist, a.attname, a.typ);
					m := m OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('since', pg_catalog.clock_timestamp());
				END IF;
			END IF;
		END IF;
		cols := cols OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(a.attnum::pg_catalog.text, m);
	END LOOP;
	UPDATE tenant_iso.history_tables x SET columns = cols WHERE x.rel OPERATOR(pg_catalog.=) _history_sync.rel;
END
$$;
COMMENT ON FUNCTION tenant_iso._history_sync(regclass) IS
	'Internal: bring a history table''s columns in step with its table after ALTER TABLE';
REVOKE ALL ON FUNCTION tenant_iso._history_sync(regclass) FROM PUBLIC;

CREATE FUNCTION tenant_iso._history_on_ddl() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cmd record;
	h regclass;
BEGIN
	FOR cmd IN SELECT DISTINCT d.objid FROM pg_catalog.pg_event_trigger_ddl_commands() d
				WHERE d.object_type OPERATOR(pg_catalog.=) ANY ('{table,"table column"}'::pg_catalog.text[])
				  AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass LOOP
		IF EXISTS (SELECT 1 FROM tenant_iso.history_tables x WHERE x.rel::pg_catalog.oid OPERATOR(pg_catalog.=) cmd.objid) THEN
			PERFORM tenant_iso._history_sync(cmd.objid::pg_catalog.regclass);
		END IF;
		-- a new or attached partition of a history-enabled table
		SELECT x.rel INTO h FROM tenant_iso.history_tables x
		 WHERE x.rel::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (
				SELECT a.relid FROM pg_catalog.pg_partition_ancestors(cmd.objid) a
				 WHERE a.relid OPERATOR(pg_catalog.<>) cmd.objid);
		IF FOUND THEN
			PERFORM tenant_iso._history_truncate_triggers(h, true);
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION tenant_iso._history_on_ddl() FROM PUBLIC;
COMMENT ON FUNCTION tenant_iso._history_on_ddl() IS
	'Internal: event trigger that keeps history tables in step with ALTER TABLE and covers new partitions';
CREATE EVENT TRIGGER tenant_iso_history_ddl ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
	EXECUTE FUNCTION tenant_iso._history_on_ddl();

CREATE FUNCTION tenant_iso.enable_history(rel regclass, retention interval DEFAULT NULL) RETURNS regclass
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c pg_catalog.pg_class%ROWTYPE;
	p record;
	keys name[];
	name text;
	hist regclass;
	cols text;
	n int := 0;
BEGIN
	IF rel IS NULL THEN
		RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO c FROM pg_catalog.pg_class x WHERE x.oid OPERATOR(pg_catalog.=) rel;
	IF c.relkind OPERATOR(pg_catalog.<>) ALL ('{r,p}'::pg_catalog."char"[]) THEN
		RAISE EXCEPTION '% is not a table', rel USING ERRCODE = 'wrong_object_type';
	END IF;
	IF NOT pg_catalog.pg_has_role(tenant_iso._caller(), c.relowner, 'USAGE') THEN
		RAISE EXCEPTION 'must be owner of table %', rel USING ERRCODE = 'insufficient_privilege';
	END IF;
	PERFORM tenant_iso._assert_no_tenant_context('enable_history()', rel);
	IF c.relispartition THEN
		RAISE EXCEPTION '% is a partition', rel
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Enable history on the partitioned table: its partitions are covered with it.';
	END IF;
	SELECT * INTO p FROM tenant_iso.protected x WHERE x.rel OPERATOR(pg_catalog.=) enable_history.rel;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not protected', rel
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'History belongs to tenants: protect the table with tenant_iso.protect() first.';
	END IF;
	IF p.via IS NOT NULL THEN
		RAISE EXCEPTION 'table % is protected through %', rel, p.via
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Enable history on the table it inherits its protection from.';
	END IF;
	IF c.relkind OPERATOR(pg_catalog.=) 'r' AND c.relhassubclass THEN
		RAISE EXCEPTION 'table % has inheritance children', rel
			USING ERRCODE = 'feature_not_supported';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM tenant_iso._history_key_ops(rel)) THEN
		RAISE EXCEPTION 'table % has no primary key', rel
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Restores match rows by primary key; add one.';
	END IF;
	-- rows are matched by tenant and the rest of the primary key
	SELECT coalesce(pg_catalog.array_agg(k.col ORDER BY k.ord), '{}') INTO keys
	  FROM (SELECT o.col, pg_catalog.row_number() OVER () AS ord FROM tenant_iso._history_key_ops(rel) o) k
	 WHERE k.col OPERATOR(pg_catalog.<>) p.tenant_column;
	IF EXISTS (SELECT 1 FROM tenant_iso.history_tables x WHERE x.rel OPERATOR(pg_catalog.=) enable_history.rel) THEN
		RAISE EXCEPTION 'table % already has history', rel USING ERRCODE = 'duplicate_object';
	END IF;
	IF retention OPERATOR(pg_catalog.<=) interval '0' THEN
		RAISE EXCEPTION 'retention must be positive' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
				WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
				  AND a.attname OPERATOR(pg_catalog.=) ANY ('{valid_from,valid_to,op,xid}'::pg_catalog.name[])) THEN
		RAISE EXCEPTION 'table % has a column named valid_from, valid_to, op or xid', rel
			USING ERRCODE = 'duplicate_column',
				  DETAIL = 'History tables add these columns to the table''s own.';
	END IF;

	name := pg_catalog.left(pg_catalog.format('%s.%s',
		(SELECT s.nspname FROM pg_catalog.pg_namespace s WHERE s.oid OPERATOR(pg_catalog.=) c.relnamespace), c.relname), 55);
	WHILE pg_catalog.to_regclass(pg_catalog.format('tenant_iso_history.%I',
			name OPERATOR(pg_catalog.||) CASE WHEN n OPERATOR(pg_catalog.=) 0 THEN '' ELSE '#' OPERATOR(pg_catalog.||) n::pg_catalog.text END)) IS NOT NULL LOOP
		n := n OPERATOR(pg_catalog.+) 1;
	END LOOP;
	IF n OPERATOR(pg_catalog.>) 0 THEN
		name := name OPERATOR(pg_catalog.||) '#' OPERATOR(pg_catalog.||) n::pg_catalog.text;
	END IF;
	SELECT pg_catalog.string_agg(pg_catalog.format('%I %s%s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
							 CASE WHEN a.attcollation OPERATOR(pg_catalog.<>) 0
								  THEN pg_catalog.format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END),
							 ', ' ORDER BY a.attnum)
	  INTO cols
	  FROM pg_catalog.pg_attribute a
	  LEFT JOIN pg_catalog.pg_collation co ON co.oid OPERATOR(pg_catalog.=) a.attcollation
	  LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) co.collnamespace
	 WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
	EXECUTE pg_catalog.format(
		'CREATE TABLE tenant_iso_history.%I (%s, valid_from timestamptz, valid_to timestamptz,'
		' op "char" NOT NULL CHECK (op OPERATOR(pg_catalog.=) ANY (''{I,U,D,T}''::pg_catalog."char"[])), xid xid8 NOT NULL)',
		name, cols);
	hist := pg_catalog.format('tenant_iso_history.%I', name)::pg_catalog.regclass;
	EXECUTE pg_catalog.format('COMMENT ON TABLE %s IS %L', hist,
							  pg_catalog.format('History of %s (tenant_iso.enable_history); written only by the extension', rel));
	EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (%I%s, valid_to DESC NULLS FIRST)',
							  pg_catalog.left(name, 55) OPERATOR(pg_catalog.||) '_key', hist, p.tenant_column,
							  (SELECT pg_catalog.string_agg(pg_catalog.format(', %I', k), '' ORDER BY o)
								 FROM pg_catalog.unnest(keys) WITH ORDINALITY u(k, o)));
	INSERT INTO tenant_iso.history_tables (rel, hist, tenant_column, key_columns, retention, columns)
	VALUES (rel, hist, p.tenant_column, keys, retention,
			(SELECT pg_catalog.jsonb_object_agg(a.attnum::pg_catalog.text, pg_catalog.jsonb_build_object('name', a.attname))
			   FROM pg_catalog.pg_attribute a
			  WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped));
	-- history tables are protected like the tables they shadow
	PERFORM tenant_iso._protect_one(hist, p.tenant_column, rel);
	EXECUTE pg_catalog.format('CREATE TRIGGER tenant_iso_history AFTER INSERT OR UPDATE OR DELETE ON %s'
							  ' FOR EACH ROW EXECUTE FUNCTION tenant_iso._history_trigger()', rel);
	PERFORM tenant_iso._history_truncate_triggers(rel, true);
	RETURN hist;
END
$$;
COMMENT ON FUNCTION tenant_iso.enable_history(regclass, interval) IS
	'Keep the old images of every row change of a protected table (owner or superuser), so that its tenants can undelete and rewind their rows';

CREATE FUNCTION tenant_iso.disable_history(rel regclass, keep boolean DEFAULT false) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h tenant_iso.history_tables%ROWTYPE;
BEGIN
	SELECT * INTO h FROM tenant_iso.history_tables x WHERE x.rel OPERATOR(pg_catalog.=) disable_history.rel;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % has no history', rel USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT pg_catalog.pg_has_role(tenant_iso._caller(),
			(SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) rel), 'USAGE') THEN
		RAISE EXCEPTION 'must be owner of table %', rel USING ERRCODE = 'insufficient_privilege';
	END IF;
	PERFORM tenant_iso._assert_no_tenant_context('disable_history()', rel);
	EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS tenant_iso_history ON %s', rel);
	PERFORM tenant_iso._history_truncate_triggers(rel, false);
	DELETE FROM tenant_iso.history_tables x WHERE x.rel OPERATOR(pg_catalog.=) disable_history.rel;
	IF keep THEN
		EXECUTE pg_catalog.format('ALTER TABLE %s RENAME TO %I', h.hist,
			pg_catalog.left((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) h.hist), 40)
			OPERATOR(pg_catalog.||) '@' OPERATOR(pg_catalog.||) pg_catalog.to_char(pg_catalog.now(), 'YYYYMMDD"T"HH24MISS'));
	ELSE
		DELETE FROM tenant_iso.protected x WHERE x.rel OPERATOR(pg_catalog.=) h.hist;
		EXECUTE pg_catalog.format('DROP TABLE %s', h.hist);
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso.disable_history(regclass, boolean) IS
	'Stop keeping history of a table; its history table is dropped, or with keep => true kept (renamed) for the superuser';

CREATE FUNCTION tenant_iso.set_history_retention(tenant text, retention interval) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
					WHERE r.oid OPERATOR(pg_catalog.=) tenant_iso._caller()::pg_catalog.oid AND r.rolsuper)
	   AND EXISTS (SELECT 1 FROM tenant_iso.history_tables h JOIN pg_catalog.pg_class c
					   ON c.oid OPERATOR(pg_catalog.=) h.rel::pg_catalog.oid
					WHERE NOT pg_catalog.pg_has_role(tenant_iso._caller(), c.relowner, 'USAGE')) THEN
		RAISE EXCEPTION 'must be superuser or own every history-enabled table' USING ERRCODE = 'insufficient_privilege';
	END IF;
	PERFORM tenant_iso._assert_no_tenant_context('set_history_retention()');
	PERFORM tenant_iso._require_tenant(tenant);
	IF retention IS NULL THEN
		DELETE FROM tenant_iso.history_retention r WHERE r.tenant_id OPERATOR(pg_catalog.=) tenant;
		RETURN;
	END IF;
	IF retention OPERATOR(pg_catalog.<=) interval '0' THEN
		RAISE EXCEPTION 'retention must be positive' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	INSERT INTO tenant_iso.history_retention AS r (tenant_id, retention) VALUES (tenant, retention)
		ON CONFLICT (tenant_id) DO UPDATE SET retention = excluded.retention;
END
$$;
COMMENT ON FUNCTION tenant_iso.set_history_retention(text, interval) IS
	'How long one tenant''s history is kept (NULL: the table''s or tenant_iso.history_retention again)';

/*
 * Remove history older than the retention (or older_than, when given), in
 * the tables the caller owns (a superuser: all), outside any tenant
 * context.  shred_tenant() erases all of one tenant's history through
 * _purge_history(NULL, tenant, true).
 */
CREATE FUNCTION tenant_iso._purge_history(older_than interval, only_tenant text, everything boolean) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	h tenant_iso.history_tables%ROWTYPE;
	total bigint := 0;
	n bigint;
	su boolean := EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
						   WHERE r.oid OPERATOR(pg_catalog.=) tenant_iso._caller()::pg_catalog.oid AND r.rolsuper);
BEGIN
	IF older_than OPERATOR(pg_catalog.<) interval '0' THEN
		RAISE EXCEPTION 'older_than must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR h IN SELECT * FROM tenant_iso.history_tables x ORDER BY x.rel::pg_catalog.text LOOP
		CONTINUE WHEN NOT su AND only_tenant IS NULL AND NOT pg_catalog.pg_has_role(tenant_iso._caller(),
				(SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) h.rel::pg_catalog.oid), 'USAGE');
		EXECUTE pg_catalog.format(
			'DELETE FROM %s h WHERE ($2 IS NULL OR h.%I::pg_catalog.text OPERATOR(pg_catalog.=) $2)'
			' AND ($4 OR coalesce(h.valid_to, h.valid_from) OPERATOR(pg_catalog.<)'
			' (pg_catalog.now() OPERATOR(pg_catalog.-) coalesce($1,'
			' (SELECT r.retention FROM tenant_iso.history_retention r WHERE r.tenant_id OPERATOR(pg_catalog.=) h.%I::pg_catalog.text),'
			' $3, pg_catalog.current_setting(''tenant_iso.history_retention'')::pg_catalog.interval)))',
			h.hist, h.tenant_column, h.tenant_column)
			USING older_than, only_tenant, h.retention, everything;
		GET DIAGNOSTICS n = ROW_COUNT;
		total := total OPERATOR(pg_catalog.+) n;
	END LOOP;
	RETURN total;
END
$$;
COMMENT ON FUNCTION tenant_iso._purge_history(interval, text, boolean) IS
	'Internal: purge_history(), and shred_tenant()''s erasure of one tenant''s history';
REVOKE ALL ON FUNCTION tenant_iso._purge_history(interval, text, boolean) FROM PUBLIC;

CREATE FUNCTION tenant_iso.purge_history(older_than interval DEFAULT NULL) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_iso._assert_no_tenant_context('purge_history()');
	RETURN tenant_iso._purge_history(older_than, NULL, false);
END
$$;
COMMENT ON FUNCTION tenant_iso.purge_history(interval) IS
	'Remove row history older than each tenant''s retention (or older_than) from the tables the caller owns; returns the number of history rows removed';
