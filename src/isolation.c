/*
 * src/isolation.c
 *	  Row isolation: the row-security policy hooks, the utility guards that
 *	  close RLS's whole-table bypasses, COPY FROM for tenants, and the
 *	  cursor check.
 *
 * Policies.  For every protected table the permissive and the restrictive
 * hook each return one policy, for all commands, USING and WITH CHECK:
 *		tenant_column = tenant_iso._enforced_tenant()::<column type>
 * built from a Var and a schema-qualified operator and function, so that
 * no search_path can change what it means.  The function is STABLE: it is
 * evaluated at run time (never folded into the plan), once per scan when
 * the qual is an index condition.  Because ours is also restrictive, user
 * policies can only narrow access.
 *
 * Cursors.  The tenant under which each executor run that touches a
 * protected table was started is remembered (executor hooks, and portal
 * names for SQL cursors, including WITH HOLD ones); fetching from it under
 * another context fails with 55000.
 *
 * Memory: the cursor list lives in TopMemoryContext and is emptied at the
 * end of every transaction (hold-cursor names survive until CLOSE).
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

static row_security_policy_hook_type prev_permissive_hook = NULL;
static row_security_policy_hook_type prev_restrictive_hook = NULL;
static ProcessUtility_hook_type prev_utility_hook = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorRun_hook_type prev_executor_run = NULL;
static ExecutorEnd_hook_type prev_executor_end = NULL;

/* ---------------------------------------------------------------------
 * Policies
 * --------------------------------------------------------------------- */

static Expr *
build_tenant_qual(Relation rel, const char *column)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Form_pg_attribute att = NULL;
	int			i;
	Var		   *var;
	Oid			fn;
	Node	   *rhs;
	Expr	   *op;
	ParseState *pstate;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), column) == 0)
		{
			att = a;
			break;
		}
	}
	if (att == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("tenant column \"%s\" of protected table \"%s\" does not exist",
						column, RelationGetRelationName(rel)),
				 errhint("Call tenant_iso.unprotect() and tenant_iso.protect() again.")));

	var = makeVar(1, att->attnum, att->atttypid, att->atttypmod, att->attcollation, 0);
	fn = LookupFuncName(list_make2(makeString("tenant_iso"), makeString("_enforced_tenant")),
						0, NULL, false);
	rhs = (Node *) makeFuncExpr(fn, TEXTOID, NIL, InvalidOid, InvalidOid,
								COERCE_EXPLICIT_CALL);

	pstate = make_parsestate(NULL);
	rhs = coerce_to_target_type(pstate, rhs, TEXTOID, att->atttypid, att->atttypmod,
								COERCION_EXPLICIT, COERCE_EXPLICIT_CAST, -1);
	if (rhs == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("tenant column \"%s\" has an unsupported type", column)));
	op = make_op(pstate,
				 list_make2(makeString("pg_catalog"), makeString("=")),
				 (Node *) var, rhs, NULL, -1);
	assign_expr_collations(pstate, (Node *) op);
	free_parsestate(pstate);
	return op;
}

/*
 * Set only inside the reencrypt() background worker, which runs nothing but
 * its own statements as the table's owner: its policies admit every tenant
 * (the owner could disable row security outside a tenant context anyway).
 * Not reachable from SQL.
 */
bool		ti_maintenance_worker = false;

static List *
tenant_policies(CmdType cmdtype, Relation rel, bool permissive)
{
	const char *column;
	RowSecurityPolicy *policy;
	Datum		role = ObjectIdGetDatum(ACL_ID_PUBLIC);
	Expr	   *qual;

	column = ti_protected_column(RelationGetRelid(rel));
	if (column == NULL)
		return NIL;

	if (ti_maintenance_worker)
	{
		if (!permissive)
			return NIL;
		qual = (Expr *) makeBoolConst(true, false);
	}
	else
		qual = build_tenant_qual(rel, column);
	policy = palloc0(sizeof(RowSecurityPolicy));
	policy->policy_name = pstrdup(permissive ? "tenant_iso_permissive" : "tenant_iso_restrictive");
	policy->polcmd = '*';
	policy->roles = construct_array(&role, 1, OIDOID, sizeof(Oid), true, TYPALIGN_INT);
	policy->qual = qual;
	policy->with_check_qual = copyObject(qual);
	policy->hassublinks = false;
	return list_make1(policy);
}

static List *
permissive_hook(CmdType cmdtype, Relation rel)
{
	List	   *result = prev_permissive_hook ? prev_permissive_hook(cmdtype, rel) : NIL;

	return list_concat(result, tenant_policies(cmdtype, rel, true));
}

static List *
restrictive_hook(CmdType cmdtype, Relation rel)
{
	List	   *result = prev_restrictive_hook ? prev_restrictive_hook(cmdtype, rel) : NIL;

	return list_concat(result, tenant_policies(cmdtype, rel, false));
}

/* ---------------------------------------------------------------------
 * Whole-table guards
 * --------------------------------------------------------------------- */

static Oid
rangevar_oid(RangeVar *rv)
{
	return rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
}

static bool
is_protected(Oid relid)
{
	return OidIsValid(relid) && ti_protected_column(relid) != NULL;
}

/* protected, or has a protected descendant */
static bool
tree_is_protected(Oid relid)
{
	List	   *all;
	ListCell   *lc;

	if (!OidIsValid(relid))
		return false;
	if (is_protected(relid))
		return true;
	if (!has_subclass(relid))
		return false;
	all = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, all)
	{
		if (is_protected(lfirst_oid(lc)))
			return true;
	}
	return false;
}

static void
refuse(const char *what, Oid relid)
{
	char	   *name = OidIsValid(relid) ? get_rel_name(relid) : NULL;

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is not allowed in a tenant context", what),
			 name ? errdetail("\"%s\" is protected by tenant_iso; this would reach other tenants' rows.", name) : 0,
			 errhint("Run it as an administrator that is not a tenant member, outside any tenant context.")));
}

static void
guard_fk_constraint(Node *n)
{
	Constraint *c;

	if (n == NULL || !IsA(n, Constraint))
		return;
	c = (Constraint *) n;
	if (c->contype == CONSTR_FOREIGN && is_protected(rangevar_oid(c->pktable)))
		refuse("creating a foreign key that references a protected table",
			   rangevar_oid(c->pktable));
}

static void
guard_alter_table(AlterTableStmt *stmt)
{
	Oid			relid = rangevar_oid(stmt->relation);
	const char *column = OidIsValid(relid) ? ti_protected_column(relid) : NULL;
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

		switch (cmd->subtype)
		{
			case AT_DisableRowSecurity:
				if (column)
					refuse("ALTER TABLE ... DISABLE ROW LEVEL SECURITY", relid);
				break;
			case AT_NoForceRowSecurity:
				if (column)
					refuse("ALTER TABLE ... NO FORCE ROW LEVEL SECURITY", relid);
				break;
			case AT_DropColumn:
				if (column && cmd->name && strcmp(cmd->name, column) == 0)
					refuse("dropping the tenant column", relid);
				break;
			case AT_AlterColumnType:
				if (column && cmd->name && strcmp(cmd->name, column) == 0)
					refuse("changing the type of the tenant column", relid);
				break;
			case AT_DetachPartition:
			case AT_DetachPartitionFinalize:
				if (column)
					refuse("detaching a partition of a protected table", relid);
				break;
			case AT_AttachPartition:
				if (column)
					refuse("attaching a partition to a protected table", relid);
				break;
			case AT_AddInherit:
				if (is_protected(rangevar_oid((RangeVar *) cmd->def)))
					refuse("adding a table to a protected parent",
						   rangevar_oid((RangeVar *) cmd->def));
				break;
			case AT_DropInherit:
				if (is_protected(rangevar_oid((RangeVar *) cmd->def)))
					refuse("removing a table from a protected parent",
						   rangevar_oid((RangeVar *) cmd->def));
				break;
			case AT_AddConstraint:
			case AT_AddConstraintRecurse:
				guard_fk_constraint(cmd->def);
				break;
			case AT_DisableTrig:
			case AT_DisableTrigAll:
			case AT_DisableTrigUser:
				if (column)
					refuse("disabling triggers on a protected table", relid);
				break;
			default:
				break;
		}
	}
}

static void
guard_create_table(CreateStmt *stmt)
{
	ListCell   *lc,
			   *lc2;

	foreach(lc, stmt->tableElts)
	{
		Node	   *elt = lfirst(lc);

		if (IsA(elt, ColumnDef))
		{
			foreach(lc2, ((ColumnDef *) elt)->constraints)
				guard_fk_constraint(lfirst(lc2));
		}
		else
			guard_fk_constraint(elt);
	}
	foreach(lc, stmt->constraints)
		guard_fk_constraint(lfirst(lc));
}

/* Only ENABLE/FORCE ROW LEVEL SECURITY and column defaults. */
static bool
alter_is_protective(AlterTableStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

		if (cmd->subtype != AT_EnableRowSecurity &&
			cmd->subtype != AT_ForceRowSecurity &&
			cmd->subtype != AT_ColumnDefault)
			return false;
	}
	return true;
}

static bool
explain_has_analyze(ExplainStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = (DefElem *) lfirst(lc);

		if (strcmp(opt->defname, "analyze") == 0 && defGetBoolean(opt))
			return true;
	}
	return false;
}

/*
 * Refuse whole-table operations on protected tables while in a tenant
 * context (which every member role's session is).
 */
static void
guard_whole_table(Node *parsetree)
{
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_TruncateStmt:
			foreach(lc, ((TruncateStmt *) parsetree)->relations)
			{
				Oid			relid = rangevar_oid((RangeVar *) lfirst(lc));

				if (tree_is_protected(relid))
					refuse("TRUNCATE of a protected table", relid);
			}
			break;
		case T_AlterTableStmt:
			{
				AlterTableStmt *at = (AlterTableStmt *) parsetree;
				Oid			relid = rangevar_oid(at->relation);

				guard_alter_table(at);
				/*
				 * Anything else that alters a protected table (constraints
				 * validated over every row, column rewrites with USING,
				 * generated columns, owner changes) would run over every
				 * tenant's rows.  Only what protect() itself does is left.
				 */
				if (tree_is_protected(relid) && !alter_is_protective(at))
					refuse("ALTER TABLE on a protected table", relid);
				break;
			}
		case T_IndexStmt:
			{
				Oid			relid = rangevar_oid(((IndexStmt *) parsetree)->relation);

				if (tree_is_protected(relid))
					refuse("creating an index on a protected table", relid);
				break;
			}
		case T_CreateStatsStmt:
			foreach(lc, ((CreateStatsStmt *) parsetree)->relations)
			{
				Node	   *n = lfirst(lc);
				Oid			relid = IsA(n, RangeVar) ? rangevar_oid((RangeVar *) n) : InvalidOid;

				if (tree_is_protected(relid))
					refuse("creating statistics on a protected table", relid);
			}
			break;
		case T_DropOwnedStmt:
			refuse("DROP OWNED", InvalidOid);
			break;
		case T_ReassignOwnedStmt:
			refuse("REASSIGN OWNED", InvalidOid);
			break;
		case T_RenameStmt:
			{
				RenameStmt *rs = (RenameStmt *) parsetree;

				if (rs->renameType == OBJECT_COLUMN)
				{
					Oid			relid = rangevar_oid(rs->relation);
					const char *column = OidIsValid(relid) ? ti_protected_column(relid) : NULL;

					if (column && rs->subname && strcmp(rs->subname, column) == 0)
						refuse("renaming the tenant column", relid);
				}
				break;
			}
		case T_CreateTrigStmt:
			{
				Oid			relid = rangevar_oid(((CreateTrigStmt *) parsetree)->relation);

				if (tree_is_protected(relid))
					refuse("creating a trigger on a protected table", relid);
				break;
			}
		case T_RuleStmt:
			{
				Oid			relid = rangevar_oid(((RuleStmt *) parsetree)->relation);

				if (tree_is_protected(relid))
					refuse("creating a rule on a protected table", relid);
				break;
			}
		case T_CreateStmt:
			guard_create_table((CreateStmt *) parsetree);
			break;
		case T_DropStmt:
			{
				DropStmt   *ds = (DropStmt *) parsetree;

				if (ds->removeType != OBJECT_TABLE)
					break;
				foreach(lc, ds->objects)
				{
					RangeVar   *rv = makeRangeVarFromNameList((List *) lfirst(lc));
					Oid			relid = rangevar_oid(rv);

					if (tree_is_protected(relid))
						refuse("DROP TABLE of a protected table", relid);
				}
				break;
			}
		case T_ExplainStmt:
			if (explain_has_analyze((ExplainStmt *) parsetree))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("EXPLAIN ANALYZE is not allowed in a tenant context"),
						 errdetail("Its row counts would reveal other tenants' rows."),
						 errhint("Use plain EXPLAIN, or run EXPLAIN ANALYZE outside any tenant context.")));
			break;
		default:
			break;
	}
}

PG_FUNCTION_INFO_V1(ti_assert_no_tenant_context);
Datum
ti_assert_no_tenant_context(PG_FUNCTION_ARGS)
{
	if (ti_in_tenant_context())
		refuse(PG_ARGISNULL(0) ? "this operation" : text_to_cstring(PG_GETARG_TEXT_PP(0)),
			   PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1));
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * COPY FROM for tenants
 *
 * Native RLS refuses COPY FROM.  For a session subject to row security on
 * a protected table, load into a private temporary table first, then move
 * the rows with INSERT ... SELECT, which applies every policy's WITH CHECK:
 * one foreign row aborts the statement and nothing is loaded.
 * --------------------------------------------------------------------- */

static uint32 copy_counter = 0;

static void
spi_exec(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
}

static bool
copy_from_protected(PlannedStmt *pstmt, CopyStmt *stmt, const char *queryString,
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
	relid = rangevar_oid(stmt->relation);
	if (!is_protected(relid) || check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED)
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

/* ---------------------------------------------------------------------
 * Cursors opened under another tenant context
 * --------------------------------------------------------------------- */

typedef struct OpenRun
{
	const void *key;			/* QueryDesc or Portal */
	bool		has_tenant;
	char		tenant[NAMEDATALEN];
} OpenRun;

static List *open_runs = NIL;	/* executor runs touching protected tables */
static List *open_portals = NIL;	/* SQL cursors, by portal name */

static void
remember(List **list, const void *key)
{
	const char *t = ti_effective_tenant();
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	OpenRun    *r = palloc0(sizeof(OpenRun));

	r->key = key;
	r->has_tenant = (t != NULL);
	if (t)
		strlcpy(r->tenant, t, NAMEDATALEN);
	/* the list cells must outlive any subtransaction: TopMemoryContext */
	*list = lappend(*list, r);
	MemoryContextSwitchTo(old);
}

static OpenRun *
find_run(List *list, const void *key)
{
	ListCell   *lc;

	foreach(lc, list)
	{
		OpenRun    *r = lfirst(lc);

		if (r->key == key)
			return r;
	}
	return NULL;
}

static void
forget(List **list, const void *key)
{
	OpenRun    *r = find_run(*list, key);

	if (r)
	{
		*list = list_delete_ptr(*list, r);
		pfree(r);
	}
}

static void
check_same_context(OpenRun *r)
{
	const char *t = ti_effective_tenant();
	bool		same = (t == NULL) ? !r->has_tenant :
		(r->has_tenant && strcmp(t, r->tenant) == 0);

	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cursor was opened under a different tenant context"),
				 errhint("Close the cursor and open it again in the current tenant context.")));
}

static bool
plan_touches_protected(PlannedStmt *plan)
{
	ListCell   *lc;

	if (!ti_any_protected())
		return false;
	foreach(lc, plan->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION && is_protected(rte->relid))
			return true;
	}
	return false;
}

static void
ti_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && ti_extension_present() &&
		plan_touches_protected(queryDesc->plannedstmt))
	{
		forget(&open_runs, queryDesc);
		remember(&open_runs, queryDesc);
	}
}

static void
ti_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
			   bool execute_once)
{
	if (open_runs != NIL)
	{
		OpenRun    *r = find_run(open_runs, queryDesc);

		if (r)
			check_same_context(r);
	}
	if (prev_executor_run)
		prev_executor_run(queryDesc, direction, count, execute_once);
	else
		standard_ExecutorRun(queryDesc, direction, count, execute_once);
}

static void
ti_ExecutorEnd(QueryDesc *queryDesc)
{
	if (open_runs != NIL)
		forget(&open_runs, queryDesc);
	if (prev_executor_end)
		prev_executor_end(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

static void
cursor_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	list_free_deep(open_runs);
	open_runs = NIL;
	/* keep only names of portals that still exist (WITH HOLD cursors) */
	foreach(lc, open_portals)
	{
		OpenRun    *r = lfirst(lc);

		if (GetPortalByName((const char *) r->key) == NULL)
		{
			open_portals = foreach_delete_current(open_portals, lc);
			pfree((void *) r->key);
			pfree(r);
		}
	}
}

static OpenRun *
find_portal(const char *name)
{
	ListCell   *lc;

	foreach(lc, open_portals)
	{
		OpenRun    *r = lfirst(lc);

		if (strcmp((const char *) r->key, name) == 0)
			return r;
	}
	return NULL;
}

static void
forget_portal(const char *name)
{
	OpenRun    *r = find_portal(name);

	if (r)
	{
		open_portals = list_delete_ptr(open_portals, r);
		pfree((void *) r->key);
		pfree(r);
	}
}

/*
 * After a context switch: a WITH HOLD cursor opened under another context
 * is materialised and could be read (e.g. through a PL/pgSQL refcursor)
 * without the executor, so mark it failed.  Any later FETCH then fails with
 * 55000 ("portal cannot be run").
 */
void
ti_fail_foreign_portals(void)
{
	ListCell   *lc;

	foreach(lc, open_portals)
	{
		OpenRun    *r = lfirst(lc);
		const char *t = ti_effective_tenant();
		bool		same = (t == NULL) ? !r->has_tenant :
			(r->has_tenant && strcmp(t, r->tenant) == 0);
		Portal		portal;

		if (same)
			continue;
		portal = GetPortalByName((const char *) r->key);
		if (portal != NULL && (portal->cursorOptions & CURSOR_OPT_HOLD) &&
			portal->status == PORTAL_READY)
			MarkPortalFailed(portal);
	}
}

/* ---------------------------------------------------------------------
 * The utility hook
 * --------------------------------------------------------------------- */

static void
ti_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		present;

	ti_context_guard_utility(parsetree);
	present = IsTransactionState() && ti_extension_present();

	if (present)
	{
		if (ti_any_protected() && ti_in_tenant_context())
			guard_whole_table(parsetree);

		if (IsA(parsetree, FetchStmt) && open_portals != NIL)
		{
			FetchStmt  *fs = (FetchStmt *) parsetree;
			OpenRun    *r = fs->portalname ? find_portal(fs->portalname) : NULL;

			if (r)
				check_same_context(r);
		}
		if (IsA(parsetree, CopyStmt) && ti_any_protected() &&
			copy_from_protected(pstmt, (CopyStmt *) parsetree, queryString, qc))
			return;
	}

	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params,
						  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	switch (nodeTag(parsetree))
	{
		case T_DeclareCursorStmt:
			if (present && ti_any_protected())
			{
				DeclareCursorStmt *dc = (DeclareCursorStmt *) parsetree;
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				forget_portal(dc->portalname);
				remember(&open_portals, pstrdup(dc->portalname));
				MemoryContextSwitchTo(old);
			}
			break;
		case T_ClosePortalStmt:
			{
				ClosePortalStmt *cp = (ClosePortalStmt *) parsetree;

				if (cp->portalname)
					forget_portal(cp->portalname);
				break;
			}
		case T_DiscardStmt:
			if (((DiscardStmt *) parsetree)->target == DISCARD_ALL)
			{
				ti_clear_switcher_context();
				ti_keys_flush();
			}
			break;
		default:
			break;
	}
}

void
ti_isolation_init(void)
{
#ifndef TENANT_ISO_MUTANT_NO_POLICIES
	/*
	 * Building with -DTENANT_ISO_MUTANT_NO_POLICIES leaves the policy hooks
	 * out: the attack suite must then fail (see test/README.md).
	 */
	prev_permissive_hook = row_security_policy_hook_permissive;
	row_security_policy_hook_permissive = permissive_hook;
	prev_restrictive_hook = row_security_policy_hook_restrictive;
	row_security_policy_hook_restrictive = restrictive_hook;
#else
	(void) permissive_hook;
	(void) restrictive_hook;
#endif

	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = ti_ProcessUtility;

	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = ti_ExecutorStart;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = ti_ExecutorRun;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = ti_ExecutorEnd;

	RegisterXactCallback(cursor_xact_callback, NULL);
}
