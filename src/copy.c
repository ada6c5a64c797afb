/*
 * src/copy.c
 *	  COPY FROM into a protected table by a session subject to its policies.
 *
 * Native RLS refuses COPY FROM.  For a session subject to row security on
 * a protected table, load into a private temporary table first, then move
 * the rows with INSERT ... SELECT, which applies every policy's WITH CHECK:
 * one foreign row aborts the statement and nothing is loaded.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_func.h"
#include "parser/parse_oper.h"
#include "parser/parse_node.h"
#include "rewrite/rowsecurity.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "keys.h"
#include "tenant_iso.h"

#include "isolation.h"

static uint32 copy_counter = 0;

static void
spi_exec(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
}

bool
ti_copy_from_protected(PlannedStmt *pstmt, CopyStmt *stmt, const char *queryString,
					QueryCompletion *qc)
{
	Oid			relid;
	Relation	rel;
	List	   *columns = NIL;
	ListCell   *lc;
	StringInfoData cols;
	StringInfoData sql;
	char		tmpname[NAMEDATALEN];
	char	   *target;
	CopyStmt   *inner;
	ParseState *pstate;
	uint64		processed;

	if (!stmt->is_from || stmt->relation == NULL)
		return false;
	relid = ti_rangevar_oid(stmt->relation);
	if (!ti_is_protected(relid) || check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED)
		return false;

	rel = table_open(relid, RowExclusiveLock);
	target = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										RelationGetRelationName(rel));
	if (stmt->attlist != NIL)
	{
		foreach(lc, stmt->attlist)
			columns = lappend(columns, pstrdup(strVal(lfirst(lc))));
	}
	else
	{
		TupleDesc	desc = RelationGetDescr(rel);
		int			i;

		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(desc, i);

			if (!a->attisdropped && !a->attgenerated)
				columns = lappend(columns, pstrdup(NameStr(a->attname)));
		}
	}
	table_close(rel, NoLock);

	initStringInfo(&cols);
	foreach(lc, columns)
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "",
						 quote_identifier((char *) lfirst(lc)));
	snprintf(tmpname, sizeof(tmpname), "tenant_iso_copy_%d_%u", MyProcPid, ++copy_counter);

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TEMP TABLE %s AS SELECT %s FROM %s WITH NO DATA",
					 quote_identifier(tmpname), cols.data, target);
	SPI_connect();
	spi_exec(sql.data, SPI_OK_UTILITY);
	SPI_finish();

	inner = copyObject(stmt);
	inner->relation = makeRangeVar("pg_temp", pstrdup(tmpname), -1);
	inner->attlist = NIL;
	foreach(lc, columns)
		inner->attlist = lappend(inner->attlist, makeString(lfirst(lc)));
	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = queryString;
	DoCopy(pstate, inner, pstmt->stmt_location, pstmt->stmt_len, &processed);
	free_parsestate(pstate);

	SPI_connect();
	resetStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_temp.%s",
					 target, cols.data, cols.data, quote_identifier(tmpname));
	spi_exec(sql.data, SPI_OK_INSERT);
	processed = SPI_processed;
	resetStringInfo(&sql);
	appendStringInfo(&sql, "DROP TABLE pg_temp.%s", quote_identifier(tmpname));
	spi_exec(sql.data, SPI_OK_UTILITY);
	SPI_finish();

	if (qc)
		SetQueryCompletion(qc, CMDTAG_COPY, processed);
	return true;
}
