/*
 * src/copy.c
 *	  COPY FROM into a protected table by a session subject to its policies.
 *
 * Native RLS refuses COPY FROM.  For a session subject to row security on
 * a protected table there are two paths; on both, one foreign row aborts
 * the statement (42501, the message of a WITH CHECK violation) and nothing
 * is loaded.
 *
 * The fast path runs PostgreSQL's own COPY FROM into the table, with one
 * more condition in its WHERE list: tenant_iso._copy_check(tenant column =
 * <the enforced tenant>), which raises instead of skipping.  COPY evaluates
 * it after the column defaults and before anything is inserted.  It is used
 * only when nothing but our policy could decide which rows may go in, and
 * nothing can change a row between the check and the insert: no BEFORE ROW
 * INSERT trigger and no row-security policy of its own (pg_policy) on the
 * table or any partition, and a tenant column that is not generated.  The
 * same permission checks as COPY's are made first (INSERT on the columns,
 * the server-file roles, read-only transactions).
 *
 * The general path loads into a private temporary table first, then moves
 * the rows with INSERT ... SELECT, which applies every policy's WITH CHECK
 * after BEFORE ROW triggers, as any INSERT does.
 *
 * Libraries whose utility hook lies below ours (listed before tenant_iso in
 * shared_preload_libraries: pg_stat_statements, pgaudit) must see the
 * tenant's COPY, and the fast path cannot pass through them: PostgreSQL's
 * DoCopy() refuses COPY FROM under row security.  So when such a hook is
 * present the general path is taken, and its COPY into the staging table
 * goes down the chain with the original statement's query id and text.
 * Libraries listed after tenant_iso wrap our hook and see every COPY.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "parser/parse_relation.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
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
#include "optimizer/optimizer.h"
#include "parser/parse_expr.h"
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

/* nesting depth of staged COPYs: a trigger may COPY during a COPY */
static int	copy_depth = 0;

static void
spi_exec(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
}

/* tenant_iso._copy_check(boolean): the fast path's per-row check */
PG_FUNCTION_INFO_V1(ti_copy_check);
Datum
ti_copy_check(PG_FUNCTION_ARGS)
{
#ifdef TENANT_ISO_MUTANT_COPY_NOCHECK
	PG_RETURN_BOOL(true);
#endif
	if (PG_ARGISNULL(0) || !PG_GETARG_BOOL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("new row violates row-level security policy \"tenant_iso_restrictive\" for table \"%s\"",
						PG_NARGS() > 1 && !PG_ARGISNULL(1) ? text_to_cstring(PG_GETARG_TEXT_PP(1)) : "?")));
	PG_RETURN_BOOL(true);
}

/* Could anything but our policy decide, or change a row after the check? */
static bool
rel_allows_fast_copy(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	bool		ok = true;
	TriggerDesc *td = rel->trigdesc;

	if (td && (td->trig_insert_before_row || td->trig_insert_instead_row))
		ok = false;
	table_close(rel, AccessShareLock);
	if (ok)
	{
		Relation	pol = table_open(PolicyRelationId, AccessShareLock);
		ScanKeyData key;
		SysScanDesc scan;

		ScanKeyInit(&key, Anum_pg_policy_polrelid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(relid));
		scan = systable_beginscan(pol, PolicyPolrelidPolnameIndexId, true, NULL, 1, &key);
		if (HeapTupleIsValid(systable_getnext(scan)))
			ok = false;
		systable_endscan(scan);
		table_close(pol, AccessShareLock);
	}
	return ok;
}

static bool
fast_copy_possible(Oid relid, const char *column)
{
	List	   *tree = find_all_inheritors(relid, AccessShareLock, NULL);
	ListCell   *lc;
	AttrNumber	att = get_attnum(relid, column);

	if (att == InvalidAttrNumber || get_attgenerated(relid, att) != '\0')
		return false;
	foreach(lc, tree)
		if (!rel_allows_fast_copy(lfirst_oid(lc)))
			return false;
	return true;
}

/* The checks DoCopy() makes before it reads a row. */
static void
check_copy_rights(CopyStmt *stmt, Relation rel, List *attnums)
{
	if (stmt->filename)
	{
		if (stmt->is_program &&
			!has_privs_of_role(GetUserId(), ROLE_PG_EXECUTE_SERVER_PROGRAM))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be superuser or have privileges of the pg_execute_server_program role to COPY to or from an external program")));
		if (!stmt->is_program &&
			!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be superuser or have privileges of the pg_read_server_files role to COPY from a file")));
	}
	ti_check_insert_perms(rel, attnums);
	PreventCommandIfReadOnly("COPY FROM");
	PreventCommandIfParallelMode("COPY FROM");
}

/*
 * The fast path: COPY FROM into the table itself, with the tenant check in
 * its WHERE list.
 */
static uint64
fast_copy(CopyStmt *stmt, const char *queryString, Relation rel, const char *column)
{
	ParseState *pstate = make_parsestate(NULL);
	ParseNamespaceItem *nsitem;
	List	   *attnums = NIL;
	List	   *quals = NIL;
	Expr	   *eq;
	FuncExpr   *check;
	Oid			checkfn;
	CopyFromState cstate;
	uint64		processed;
	Oid			argtypes[2] = {BOOLOID, TEXTOID};
	TupleDesc	desc = RelationGetDescr(rel);
	ListCell   *lc;

	pstate->p_sourcetext = queryString;
	if (stmt->attlist != NIL)
	{
		foreach(lc, stmt->attlist)
		{
			AttrNumber	a = attnameAttNum(rel, strVal(lfirst(lc)), false);

			if (a == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation \"%s\" does not exist",
								strVal(lfirst(lc)), RelationGetRelationName(rel))));
			attnums = lappend_int(attnums, a);
		}
	}
	else
	{
		int			i;

		for (i = 0; i < desc->natts; i++)
			if (!TupleDescAttr(desc, i)->attisdropped && !TupleDescAttr(desc, i)->attgenerated)
				attnums = lappend_int(attnums, i + 1);
	}
	check_copy_rights(stmt, rel, attnums);

	/* the user's own WHERE first: rows it skips need no check */
	nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	addNSItemToQuery(pstate, nsitem, false, true, true);
	if (stmt->whereClause)
	{
		Node	   *w = transformExpr(pstate, stmt->whereClause, EXPR_KIND_COPY_WHERE);

		w = coerce_to_boolean(pstate, w, "WHERE");
		assign_expr_collations(pstate, w);
		w = eval_const_expressions(NULL, w);
		w = (Node *) canonicalize_qual((Expr *) w, false);
		quals = make_ands_implicit((Expr *) w);
	}
	eq = ti_tenant_qual_const(rel, column);
	checkfn = LookupFuncName(list_make2(makeString("tenant_iso"), makeString("_copy_check")),
							 2, argtypes, true);
	if (!OidIsValid(checkfn))
		ti_catalog_too_old("COPY into a protected table");
	check = makeFuncExpr(checkfn, BOOLOID,
						 list_make2(eq, makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID, -1,
												  CStringGetTextDatum(RelationGetRelationName(rel)),
												  false, false)),
						 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	quals = lappend(quals, check);

	cstate = BeginCopyFrom(pstate, rel, (Node *) quals, stmt->filename,
						   stmt->is_program, NULL, stmt->attlist, stmt->options);
	processed = CopyFrom(cstate);
	EndCopyFrom(cstate);
	free_parsestate(pstate);
	return processed;
}

/*
 * The general path: COPY into a private staging table, sent down the rest
 * of the utility chain as a statement of its own (with the original query
 * id and text, so pg_stat_statements and pgaudit record the tenant's COPY),
 * then INSERT ... SELECT into the protected table.  The staging table is
 * named after the nesting depth, not the backend, so that the statements
 * that other libraries see are the same for every COPY of one table.
 */
static uint64
staged_copy(const TiUtilityCall *call, CopyStmt *stmt, Relation rel)
{
	List	   *columns = NIL;
	ListCell   *lc;
	StringInfoData cols;
	StringInfoData sql;
	char		tmpname[NAMEDATALEN];
	char	   *target;
	CopyStmt   *inner;
	PlannedStmt *ps;
	QueryCompletion innerqc;
	TiUtilityCall next = *call;
	uint64		processed;

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

	initStringInfo(&cols);
	foreach(lc, columns)
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "",
						 quote_identifier((char *) lfirst(lc)));
	snprintf(tmpname, sizeof(tmpname), "tenant_iso_copy_%d", copy_depth);

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TEMP TABLE %s ON COMMIT DROP AS SELECT %s FROM %s WITH NO DATA",
					 quote_identifier(tmpname), cols.data, target);
	SPI_connect();
	spi_exec(sql.data, SPI_OK_UTILITY);
	SPI_finish();

	inner = copyObject(stmt);
	inner->relation = makeRangeVar("pg_temp", pstrdup(tmpname), -1);
	inner->attlist = NIL;
	foreach(lc, columns)
		inner->attlist = lappend(inner->attlist, makeString(lfirst(lc)));
	ps = makeNode(PlannedStmt);
	ps->commandType = CMD_UTILITY;
	ps->canSetTag = call->pstmt->canSetTag;
	ps->utilityStmt = (Node *) inner;
	ps->queryId = call->pstmt->queryId;
	ps->stmt_location = call->pstmt->stmt_location;
	ps->stmt_len = call->pstmt->stmt_len;
	InitializeQueryCompletion(&innerqc);
	next.pstmt = ps;
	next.readOnlyTree = false;
	next.qc = &innerqc;
	ti_utility_next(&next);

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
	return processed;
}

/*
 * COPY FROM into a protected table by a session subject to its policies:
 * run it here and return true, or return false to let PostgreSQL run it.
 * The fast path runs in this hook; it is taken only when no utility hook
 * lies below ours, since those would not see it.
 */
bool
ti_copy_from_protected(const TiUtilityCall *call, CopyStmt *stmt)
{
	Oid			relid;
	Relation	rel;
	uint64		processed;
	const char *column;

	if (!stmt->is_from || stmt->relation == NULL)
		return false;
	relid = ti_rangevar_oid(stmt->relation);
	if (!ti_is_protected(relid) || check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED)
		return false;

	rel = table_open(relid, RowExclusiveLock);
	column = ti_protected_column(relid);
	if (!ti_utility_chained() && fast_copy_possible(relid, column))
		processed = fast_copy(stmt, call->queryString, rel, column);
	else
	{
		copy_depth++;
		PG_TRY();
		{
			processed = staged_copy(call, stmt, rel);
		}
		PG_FINALLY();
		{
			copy_depth--;
		}
		PG_END_TRY();
	}
	table_close(rel, NoLock);
	if (call->qc)
		SetQueryCompletion(call->qc, CMDTAG_COPY, processed);
	return true;
}
