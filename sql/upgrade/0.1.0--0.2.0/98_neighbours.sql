/*
 * Noisy neighbours: per-tenant statistics (shared memory, src/stats.c) and
 * per-tenant limits (src/limits.c, src/admission.c); docs/design/neighbours.md.
 *
 * Visibility: in a tenant context the views show only that tenant's rows;
 * outside, reading them needs pg_read_all_stats (or superuser).  The C
 * functions check this themselves, so the views may be granted to PUBLIC.
 *
 * Elevated paths (SECURITY DEFINER, search_path pinned, names and
 * operators qualified): set_tenant_limits.  _tenant_limits() (the view
 * tenant_limits) reads the configuration tables by direct scans in C and
 * applies the visibility rule above itself, so that EXPLAIN ANALYZE of the
 * view counts no other tenant's rows.
 */
CREATE TABLE tenant_iso.limits (
	tenant_id text PRIMARY KEY
		REFERENCES tenant_iso.tenants ON UPDATE CASCADE ON DELETE CASCADE,
	max_active_statements integer CHECK (max_active_statements >= 0),
	statement_timeout interval CHECK (statement_timeout >= interval '0'),
	work_mem text,
	temp_file_limit text,
	max_statements_per_second numeric CHECK (max_statements_per_second > 0),
	updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tenant_iso.limits IS
	'Per-tenant limits set by set_tenant_limits(); a NULL column takes tenant_iso.default_limits';
SELECT pg_catalog.pg_extension_config_dump('tenant_iso.limits', '');
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON tenant_iso.limits FOR EACH STATEMENT EXECUTE FUNCTION tenant_iso._config_changed();
REVOKE ALL ON tenant_iso.limits FROM PUBLIC;

/* Statistics */
CREATE FUNCTION tenant_iso._tenant_stats(
	OUT tenant text,
	OUT statements bigint, OUT statements_current bigint, OUT statements_previous bigint,
	OUT rows_read bigint, OUT rows_read_current bigint, OUT rows_read_previous bigint,
	OUT rows_written bigint, OUT rows_written_current bigint, OUT rows_written_previous bigint,
	OUT exec_time_ms double precision, OUT exec_time_ms_current double precision,
	OUT exec_time_ms_previous double precision,
	OUT cpu_time_ms double precision, OUT cpu_time_ms_current double precision,
	OUT cpu_time_ms_previous double precision,
	OUT shared_blks_hit bigint, OUT shared_blks_hit_current bigint,
	OUT shared_blks_hit_previous bigint,
	OUT shared_blks_read bigint, OUT shared_blks_read_current bigint,
	OUT shared_blks_read_previous bigint,
	OUT temp_blks_written bigint, OUT temp_blks_written_current bigint,
	OUT temp_blks_written_previous bigint,
	OUT wal_bytes bigint, OUT wal_bytes_current bigint, OUT wal_bytes_previous bigint,
	OUT throttled bigint, OUT throttled_current bigint, OUT throttled_previous bigint,
	OUT rejected bigint, OUT rejected_current bigint, OUT rejected_previous bigint,
	OUT active_statements integer, OUT sessions_in_context integer,
	OUT last_active timestamptz, OUT period_start timestamptz, OUT stats_reset timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'ti_tenant_stats'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._tenant_stats() IS
	'Internal: the rows of the view tenant_stats';

CREATE VIEW tenant_iso.tenant_stats AS
	SELECT * FROM tenant_iso._tenant_stats();
COMMENT ON VIEW tenant_iso.tenant_stats IS
	'Per-tenant statistics: totals since reset_tenant_stats(), the current and the previous period (tenant_iso.stats_period); tenant NULL for statements outside any tenant context and for evicted tenants';
GRANT SELECT ON tenant_iso.tenant_stats TO PUBLIC;

CREATE FUNCTION tenant_iso._tenant_query_stats(
	OUT tenant text, OUT queryid bigint, OUT calls bigint, OUT rows bigint,
	OUT exec_time_ms double precision)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'ti_tenant_query_stats'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._tenant_query_stats() IS
	'Internal: the per-tenant query counters of the view tenant_query_stats';

CREATE FUNCTION tenant_iso._stats_visible(tenant text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ti_stats_visible'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._stats_visible(text) IS
	'Internal: may the caller see the statistics and limits of this tenant (NULL: of the tenant = NULL row)';

/*
 * The query text comes from pg_stat_statements, when it is installed and
 * loaded, and only for readers outside any tenant context: two tenants'
 * queries with the same queryid may differ in their comments.  Runs as the
 * caller.
 */
CREATE FUNCTION tenant_iso._tenant_query_stats_text(
	OUT tenant text, OUT queryid bigint, OUT calls bigint, OUT rows bigint,
	OUT exec_time_ms double precision, OUT query text)
	RETURNS SETOF record
	LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	pgss name;
BEGIN
	IF tenant_iso._stats_visible(NULL) THEN
		SELECT n.nspname INTO pgss
		  FROM pg_catalog.pg_extension e
		  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
		 WHERE e.extname OPERATOR(pg_catalog.=) 'pg_stat_statements';
	END IF;
	IF pgss IS NOT NULL THEN
		BEGIN
			RETURN QUERY EXECUTE pg_catalog.format(
				'SELECT q.tenant, q.queryid, q.calls, q.rows, q.exec_time_ms,'
				'       (SELECT p.query FROM %I.pg_stat_statements(true) p'
				'         WHERE p.queryid OPERATOR(pg_catalog.=) q.queryid LIMIT 1)'
				'  FROM tenant_iso._tenant_query_stats() q', pgss);
			RETURN;
		EXCEPTION WHEN object_not_in_prerequisite_state THEN
			NULL;				/* installed but not loaded */
		END;
	END IF;
	RETURN QUERY SELECT q.tenant, q.queryid, q.calls, q.rows, q.exec_time_ms, NULL::text
				   FROM tenant_iso._tenant_query_stats() q;
END
$$;
COMMENT ON FUNCTION tenant_iso._tenant_query_stats_text() IS
	'Internal: the rows of the view tenant_query_stats';

CREATE VIEW tenant_iso.tenant_query_stats AS
	SELECT * FROM tenant_iso._tenant_query_stats_text();
COMMENT ON VIEW tenant_iso.tenant_query_stats IS
	'Per tenant, the top tenant_iso.stats_queries_per_tenant queries by queryid (needs tenant_iso.track_queries and a query id: compute_query_id or pg_stat_statements)';
GRANT SELECT ON tenant_iso.tenant_query_stats TO PUBLIC;

CREATE FUNCTION tenant_iso.reset_tenant_stats(tenant text DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'ti_reset_tenant_stats'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso.reset_tenant_stats(text) IS
	'Zero the statistics of one tenant, or of every tenant and the NULL row';
REVOKE ALL ON FUNCTION tenant_iso.reset_tenant_stats(text) FROM PUBLIC;

/* Limits */
CREATE FUNCTION tenant_iso._set_config_capped(setting_name text, new_value text, is_local boolean)
	RETURNS text
	AS 'MODULE_PATHNAME', 'ti_set_config_capped'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_iso._set_config_capped(text, text, boolean) IS
	'Internal: set_config() in a tenant context with caps (parse analysis calls it instead), which lowers the caps again after a reset';

CREATE FUNCTION tenant_iso._default_limits(
	OUT max_active_statements integer, OUT statement_timeout interval,
	OUT work_mem text, OUT temp_file_limit text,
	OUT max_statements_per_second numeric)
	AS 'MODULE_PATHNAME', 'ti_default_limits_row'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_iso._default_limits() IS
	'Internal: tenant_iso.default_limits as a row (NULL: no limit)';

CREATE FUNCTION tenant_iso._tenant_limits(
	OUT tenant text, OUT max_active_statements integer, OUT statement_timeout interval,
	OUT work_mem text, OUT temp_file_limit text, OUT max_statements_per_second numeric,
	OUT own_limits boolean, OUT updated_at timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'ti_tenant_limits_rows'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_iso._tenant_limits() IS
	'Internal: the rows of the view tenant_limits, filtered in C so that no plan counts the rows it passed over';

CREATE VIEW tenant_iso.tenant_limits AS
	SELECT * FROM tenant_iso._tenant_limits();
COMMENT ON VIEW tenant_iso.tenant_limits IS
	'The effective limits of each tenant: its own (set_tenant_limits) or else tenant_iso.default_limits';
GRANT SELECT ON tenant_iso.tenant_limits TO PUBLIC;

/* '64MB' for 65536 kB; exact, in the units the settings accept */
CREATE FUNCTION tenant_iso._memory_limit(what text, value text, minimum_kb bigint)
	RETURNS text
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	kb numeric;
BEGIN
	IF value IS NULL THEN
		RETURN NULL;
	END IF;
	IF what OPERATOR(pg_catalog.=) 'temp_file_limit'
	   AND pg_catalog.btrim(value) OPERATOR(pg_catalog.=) '-1' THEN
		RETURN '-1';
	END IF;
	BEGIN
		kb := pg_catalog.pg_size_bytes(value)::numeric OPERATOR(pg_catalog./) 1024;
	EXCEPTION WHEN invalid_parameter_value THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = pg_catalog.format('invalid %s limit "%s"', what, value),
			HINT = 'Give a size such as ''64MB'' or ''1GB''.';
	END;
	IF kb OPERATOR(pg_catalog.<>) pg_catalog.trunc(kb)
	   OR kb OPERATOR(pg_catalog.<) minimum_kb OR kb OPERATOR(pg_catalog.>) 2147483647 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = pg_catalog.format('invalid %s limit "%s"', what, value),
			DETAIL = pg_catalog.format('The limit must be a whole number of kilobytes from %s kB to 2147483647 kB.', minimum_kb);
	END IF;
	IF kb OPERATOR(pg_catalog.%) 1048576 OPERATOR(pg_catalog.=) 0 AND kb OPERATOR(pg_catalog.>) 0 THEN
		RETURN (kb OPERATOR(pg_catalog./) 1048576)::bigint::text OPERATOR(pg_catalog.||) 'GB';
	ELSIF kb OPERATOR(pg_catalog.%) 1024 OPERATOR(pg_catalog.=) 0 AND kb OPERATOR(pg_catalog.>) 0 THEN
		RETURN (kb OPERATOR(pg_catalog./) 1024)::bigint::text OPERATOR(pg_catalog.||) 'MB';
	END IF;
	RETURN kb::bigint::text OPERATOR(pg_catalog.||) 'kB';
END
$$;
COMMENT ON FUNCTION tenant_iso._memory_limit(text, text, bigint) IS
	'Internal: check a memory limit and write it exactly, in kB, MB or GB';
REVOKE ALL ON FUNCTION tenant_iso._memory_limit(text, text, bigint) FROM PUBLIC;

CREATE FUNCTION tenant_iso.set_tenant_limits(
	tenant text,
	max_active_statements integer DEFAULT NULL,
	statement_timeout interval DEFAULT NULL,
	work_mem text DEFAULT NULL,
	temp_file_limit text DEFAULT NULL,
	max_statements_per_second numeric DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	wm text;
	tf text;
BEGIN
	PERFORM tenant_iso._assert_no_tenant_context('set_tenant_limits');
	IF tenant IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'the tenant must not be NULL',
			HINT = 'tenant_iso.default_limits sets the limits of tenants without their own.';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM tenant_iso.tenants t
					WHERE t.tenant_id OPERATOR(pg_catalog.=) set_tenant_limits.tenant) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = pg_catalog.format('tenant "%s" is not registered', set_tenant_limits.tenant);
	END IF;
	IF max_active_statements OPERATOR(pg_catalog.<) 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'max_active_statements must not be negative',
			DETAIL = '0 means no limit.';
	END IF;
	IF statement_timeout OPERATOR(pg_catalog.<) '0'::interval
	   OR statement_timeout OPERATOR(pg_catalog.>) '2147483647 ms'::interval
	   OR statement_timeout OPERATOR(pg_catalog.<>)
		  pg_catalog.date_trunc('milliseconds', statement_timeout) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'statement_timeout must be a whole number of milliseconds from 0 to 2147483647 ms',
			DETAIL = '0 means no limit.';
	END IF;
	IF max_statements_per_second OPERATOR(pg_catalog.<=) 0
	   OR max_statements_per_second OPERATOR(pg_catalog.>) 1000000000 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'max_statements_per_second must be greater than 0 and at most 1e9',
			HINT = 'NULL means no limit of its own.';
	END IF;
	wm := tenant_iso._memory_limit('work_mem', work_mem, 64);
	tf := tenant_iso._memory_limit('temp_file_limit', temp_file_limit, 0);

	IF max_active_statements IS NULL AND statement_timeout IS NULL AND wm IS NULL
	   AND tf IS NULL AND max_statements_per_second IS NULL THEN
		DELETE FROM tenant_iso.limits l
		 WHERE l.tenant_id OPERATOR(pg_catalog.=) set_tenant_limits.tenant;
	ELSE
		INSERT INTO tenant_iso.limits AS l
			   (tenant_id, max_active_statements, statement_timeout, work_mem,
				temp_file_limit, max_statements_per_second, updated_at)
		VALUES (set_tenant_limits.tenant, set_tenant_limits.max_active_statements,
				set_tenant_limits.statement_timeout, wm, tf,
				set_tenant_limits.max_statements_per_second, pg_catalog.now())
		ON CONFLICT (tenant_id) DO UPDATE
		   SET max_active_statements = EXCLUDED.max_active_statements,
			   statement_timeout = EXCLUDED.statement_timeout,
			   work_mem = EXCLUDED.work_mem,
			   temp_file_limit = EXCLUDED.temp_file_limit,
			   max_statements_per_second = EXCLUDED.max_statements_per_second,
			   updated_at = EXCLUDED.updated_at;
	END IF;
END
$$;
COMMENT ON FUNCTION tenant_iso.set_tenant_limits(text, integer, interval, text, text, numeric) IS
	'Set all limits of one tenant (NULL: the default from tenant_iso.default_limits; all NULL removes its own limits)';
REVOKE ALL ON FUNCTION tenant_iso.set_tenant_limits(text, integer, interval, text, text, numeric) FROM PUBLIC;
