/*
 * src/hooks.c
 *	  Installs every hook of tenant_iso and dispatches to the subsystems.
 *
 * Each hook saves the previous value in a static prev_* variable and always
 * calls it (or the standard_* function).  The subsystems (policy.c,
 * guards.c, copy.c, cursors.c, residue.c, foreign.c, planner.c, context.c)
 * hold no hook state; this file decides the order in which they run.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "optimizer/plancat.h"
#include "parser/analyze.h"
#include "rewrite/rowsecurity.h"
#include "tcop/utility.h"
#include "utils/selfuncs.h"

#include "digest.h"
#include "isolation.h"
#include "keys.h"
#include "neighbours.h"
#include "tenant_iso.h"

static row_security_policy_hook_type prev_permissive_hook = NULL;
static row_security_policy_hook_type prev_restrictive_hook = NULL;
static ProcessUtility_hook_type prev_utility_hook = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorRun_hook_type prev_executor_run = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;
static ExecutorEnd_hook_type prev_executor_end = NULL;

static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;
static object_access_hook_type prev_object_access = NULL;
static needs_fmgr_hook_type prev_needs_fmgr = NULL;
static fmgr_hook_type prev_fmgr = NULL;
static get_relation_stats_hook_type prev_relation_stats = NULL;
static get_index_stats_hook_type prev_index_stats = NULL;
static get_relation_info_hook_type prev_relation_info = NULL;

/*
 * Nesting depth of executor runs and counted utility statements, as in
 * pg_stat_statements: a statement that starts at depth 0 is top-level
 * (stats.c counts and limits it).
 */
static int	exec_nested = 0;

/* ---------------------------------------------------------------------
 * Row security
 * --------------------------------------------------------------------- */

static List *
permissive_hook(CmdType cmdtype, Relation rel)
{
	List	   *result = prev_permissive_hook ? prev_permissive_hook(cmdtype, rel) : NIL;

	return list_concat(result, ti_tenant_policies(cmdtype, rel, true));
}

static List *
restrictive_hook(CmdType cmdtype, Relation rel)
{
	List	   *result = prev_restrictive_hook ? prev_restrictive_hook(cmdtype, rel) : NIL;

	return list_concat(result, ti_tenant_policies(cmdtype, rel, false));
}

/* ---------------------------------------------------------------------
 * Parse analysis and planning
 * --------------------------------------------------------------------- */

static void
ti_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);
	ti_context_post_parse(query);
	/* the planner reads work_mem: cap it before planning */
	if (exec_nested == 0 && IsTransactionState() && ti_extension_present())
		ti_limits_apply(ti_effective_tenant(), true);
	ti_limits_post_parse(query);
	ti_residue_post_parse(query);
	ti_planner_post_parse(pstate, query);
}

static bool
ti_relation_stats(PlannerInfo *root, RangeTblEntry *rte, AttrNumber attnum,
				  VariableStatData *vardata)
{
	if (ti_planner_relation_stats(root, rte, attnum, vardata))
		return true;
	return prev_relation_stats ? prev_relation_stats(root, rte, attnum, vardata) : false;
}

static bool
ti_index_stats(PlannerInfo *root, Oid indexOid, AttrNumber indexattnum,
			   VariableStatData *vardata)
{
	if (ti_planner_index_stats(root, indexOid, indexattnum, vardata))
		return true;
	return prev_index_stats ? prev_index_stats(root, indexOid, indexattnum, vardata) : false;
}

static void
ti_relation_info(PlannerInfo *root, Oid relationObjectId, bool inhparent,
				 RelOptInfo *rel)
{
	if (prev_relation_info)
		prev_relation_info(root, relationObjectId, inhparent, rel);
	ti_planner_relation_info(root, relationObjectId, inhparent, rel);
}

/* ---------------------------------------------------------------------
 * Executor
 * --------------------------------------------------------------------- */

static void
ti_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		ti_residue_check_plan(queryDesc->plannedstmt);
		ti_foreign_check_plan(queryDesc->plannedstmt);
	}
	/* may wait for a rate-limit token */
	ti_stats_executor_start(queryDesc,
							exec_nested == 0 && !(eflags & EXEC_FLAG_EXPLAIN_ONLY));

	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	ti_cursors_executor_start(queryDesc, eflags);
}

static void
ti_ExecutorRun(TI_EXECUTOR_RUN_PARAMS)
{
	void	   *stats;

	ti_cursors_executor_run(queryDesc);
	/* may wait for admission */
	ti_stats_run_begin(queryDesc, exec_nested == 0, true, &stats);
	exec_nested++;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(TI_EXECUTOR_RUN_ARGS);
		else
			standard_ExecutorRun(TI_EXECUTOR_RUN_ARGS);
	}
	PG_FINALLY();
	{
		exec_nested--;
		ti_stats_run_end(queryDesc, stats);
	}
	PG_END_TRY();
}

static void
ti_ExecutorFinish(QueryDesc *queryDesc)
{
	void	   *stats;

	ti_stats_run_begin(queryDesc, exec_nested == 0, false, &stats);
	exec_nested++;
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		exec_nested--;
		ti_stats_run_end(queryDesc, stats);
	}
	PG_END_TRY();
}

static void
ti_ExecutorEnd(QueryDesc *queryDesc)
{
	ti_stats_executor_end(queryDesc);
	ti_cursors_executor_end(queryDesc);
	if (prev_executor_end)
		prev_executor_end(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/* ---------------------------------------------------------------------
 * Objects and functions
 * --------------------------------------------------------------------- */

static void
ti_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				 int subId, void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
	ti_residue_object_access(access, classId, objectId, subId, arg);
}

static bool
ti_needs_fmgr(Oid fn_oid)
{
	if (prev_needs_fmgr && prev_needs_fmgr(fn_oid))
		return true;
	return ti_foreign_needs_fmgr(fn_oid);
}

static void
ti_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg)
{
	ti_foreign_fmgr(event, flinfo, arg);
	if (prev_fmgr)
		prev_fmgr(event, flinfo, arg);
}

/* ---------------------------------------------------------------------
 * The utility hook
 * --------------------------------------------------------------------- */

/*
 * The rest of the utility chain: the hooks installed before ours (a library
 * listed earlier in shared_preload_libraries, such as pg_stat_statements or
 * pgaudit), then standard_ProcessUtility.  copy.c sends the COPY that reads
 * a tenant's rows down this chain, so those libraries see it.
 */
void
ti_utility_next(const TiUtilityCall *c)
{
	if (prev_utility_hook)
		prev_utility_hook(c->pstmt, c->queryString, c->readOnlyTree, c->context,
						  c->params, c->queryEnv, c->dest, c->qc);
	else
		standard_ProcessUtility(c->pstmt, c->queryString, c->readOnlyTree,
								c->context, c->params, c->queryEnv, c->dest, c->qc);
}

bool
ti_utility_chained(void)
{
	return prev_utility_hook != NULL;
}

static void
process_utility(PlannedStmt *pstmt, const char *queryString,
				bool readOnlyTree, ProcessUtilityContext context,
				ParamListInfo params, QueryEnvironment *queryEnv,
				DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	TiUtilityCall call = {pstmt, queryString, readOnlyTree, context,
	params, queryEnv, dest, qc};
	bool		present;

	ti_context_guard_utility(parsetree);
	present = IsTransactionState() && ti_extension_present();

	if (present)
	{
		ti_residue_check_utility(parsetree);
		/* role and database settings are refused even with no protected table */
		if (ti_in_tenant_context() &&
			(ti_any_protected() || IsA(parsetree, AlterRoleSetStmt) ||
			 IsA(parsetree, AlterDatabaseSetStmt)))
			ti_guard_whole_table(parsetree);
		ti_cursors_before_utility(parsetree);
		if (IsA(parsetree, CopyStmt) && ti_any_protected() &&
			ti_copy_from_protected(&call, (CopyStmt *) parsetree))
			return;
	}

	ti_utility_next(&call);

	ti_cursors_after_utility(parsetree, present);
	/* RESET, SET ... TO DEFAULT and RESET ALL bypass the caps' check hooks */
	if (present && IsA(parsetree, VariableSetStmt) && IsTransactionState())
		ti_limits_apply(ti_effective_tenant(), false);
	if (present && IsA(parsetree, AlterTableStmt))
		ti_digest_after_alter((AlterTableStmt *) parsetree);
	if (IsA(parsetree, DiscardStmt) &&
		((DiscardStmt *) parsetree)->target == DISCARD_ALL)
	{
		ti_clear_switcher_context();
		ti_keys_flush();
	}
}

/*
 * Utility statements that count as statements of their own.  Transaction
 * control is not one; PREPARE, EXECUTE, DEALLOCATE, DECLARE, FETCH and
 * CLOSE count through the query they run (its executor starts at depth 0).
 */
static bool
utility_counted(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_TransactionStmt:
		case T_PrepareStmt:
		case T_ExecuteStmt:
		case T_DeallocateStmt:
		case T_DeclareCursorStmt:
		case T_FetchStmt:
		case T_ClosePortalStmt:
			return false;
		default:
			return true;
	}
}

/*
 * Counted utility statements that do not take an active slot: settings and
 * notifications, which a tenant at its limit may still send.
 */
static bool
utility_admitted(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_VariableSetStmt:
		case T_VariableShowStmt:
		case T_DiscardStmt:
		case T_ListenStmt:
		case T_UnlistenStmt:
		case T_NotifyStmt:
			return false;
		default:
			return true;
	}
}

static void
ti_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	void	   *stats;
	volatile bool ok = false;

	if (exec_nested != 0 || !utility_counted(pstmt->utilityStmt))
	{
		process_utility(pstmt, queryString, readOnlyTree, context, params,
						queryEnv, dest, qc);
		return;
	}
	/* may wait for a rate-limit token and for admission */
	stats = ti_stats_utility_begin(utility_admitted(pstmt->utilityStmt));
	exec_nested++;
	PG_TRY();
	{
		process_utility(pstmt, queryString, readOnlyTree, context, params,
						queryEnv, dest, qc);
		ok = true;
	}
	PG_FINALLY();
	{
		exec_nested--;
		ti_stats_utility_end(stats, ok);
	}
	PG_END_TRY();
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
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = ti_ExecutorFinish;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = ti_ExecutorEnd;

	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = ti_post_parse_analyze;

	prev_object_access = object_access_hook;
	object_access_hook = ti_object_access;
	prev_needs_fmgr = needs_fmgr_hook;
	needs_fmgr_hook = ti_needs_fmgr;
	prev_fmgr = fmgr_hook;
	fmgr_hook = ti_fmgr;

	prev_relation_stats = get_relation_stats_hook;
	get_relation_stats_hook = ti_relation_stats;
	prev_index_stats = get_index_stats_hook;
	get_index_stats_hook = ti_index_stats;
	prev_relation_info = get_relation_info_hook;
	get_relation_info_hook = ti_relation_info;

	ti_cursors_init();
	ti_residue_init();
	ti_foreign_init();
}
