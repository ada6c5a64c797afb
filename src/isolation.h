/*
 * src/isolation.h
 *	  The row-isolation subsystem: what hooks.c calls in policy.c, guards.c,
 *	  copy.c, cursors.c, residue.c, foreign.c and planner.c.
 *
 * hooks.c owns every hook variable and the order in which these run; the
 * other files hold no hook state of their own.
 */
#ifndef TI_ISOLATION_H
#define TI_ISOLATION_H

#include "postgres.h"

#include "catalog/objectaccess.h"
#include "executor/execdesc.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "parser/parse_node.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"

#include "compat.h"

/* policy.c: "column = the enforced tenant" with the tenant as a constant (COPY) */
extern Expr *ti_tenant_qual_const(Relation rel, const char *column);

/* policy.c: the tenant policies of a protected table (NIL if not protected) */
extern List *ti_tenant_policies(CmdType cmdtype, Relation rel, bool permissive);

/*
 * policy.c: the enforced tenant as a value of a tenant column's type and
 * typmod.  Raises 42501 when there is no usable context, or when the id is
 * not the canonical text form of that type (so that '042' never matches the
 * integer 42, nor an upper-case id a lower-case uuid).
 */
extern Datum ti_enforced_tenant_datum(Oid typid, int32 typmod);

/* guards.c */
extern Oid	ti_rangevar_oid(RangeVar *rv);
extern bool ti_is_protected(Oid relid);
extern bool ti_tree_is_protected(Oid relid);
pg_noreturn extern void ti_refuse(const char *what, Oid relid);
extern void ti_guard_whole_table(Node *parsetree);

/*
 * The arguments of a ProcessUtility_hook call, so that copy.c can pass a
 * statement of its own down the rest of the hook chain.
 */
typedef struct TiUtilityCall
{
	PlannedStmt *pstmt;
	const char *queryString;
	bool		readOnlyTree;
	ProcessUtilityContext context;
	ParamListInfo params;
	QueryEnvironment *queryEnv;
	DestReceiver *dest;
	QueryCompletion *qc;
} TiUtilityCall;

/* hooks.c: the utility hooks below ours, or standard_ProcessUtility */
extern void ti_utility_next(const TiUtilityCall *call);
extern bool ti_utility_chained(void);

/* copy.c: true if it ran the COPY itself */
extern bool ti_copy_from_protected(const TiUtilityCall *call, CopyStmt *stmt);

/* cursors.c */
extern void ti_cursors_init(void);
extern void ti_cursors_executor_start(QueryDesc *queryDesc, int eflags);
extern void ti_cursors_executor_run(QueryDesc *queryDesc);
extern void ti_cursors_executor_end(QueryDesc *queryDesc);
extern void ti_cursors_before_utility(Node *parsetree);
extern void ti_cursors_after_utility(Node *parsetree, bool present);

/*
 * residue.c: what one pooled request leaves behind for the next (temporary
 * objects, prepared transactions).
 */
extern void ti_residue_init(void);
extern void ti_residue_post_parse(Query *query);
extern void ti_residue_check_plan(PlannedStmt *plan);
extern void ti_residue_check_utility(Node *parsetree);
extern void ti_residue_object_access(ObjectAccessType access, Oid classId,
									 Oid objectId, int subId, void *arg);

/* foreign.c: code owned by one tenant run from another tenant's context */
extern void ti_foreign_init(void);
extern void ti_foreign_check_plan(PlannedStmt *plan);
extern bool ti_foreign_needs_fmgr(Oid fn_oid);
extern void ti_foreign_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg);

/* planner.c: the planner is not an oracle (MERGE, statistics) */
extern void ti_planner_post_parse(ParseState *pstate, Query *query);
extern bool ti_planner_relation_stats(PlannerInfo *root, RangeTblEntry *rte,
									  AttrNumber attnum, VariableStatData *vardata);
extern bool ti_planner_index_stats(PlannerInfo *root, Oid indexOid,
								   AttrNumber indexattnum, VariableStatData *vardata);
extern void ti_planner_relation_info(PlannerInfo *root, Oid relationObjectId,
									 bool inhparent, RelOptInfo *rel);

#endif
