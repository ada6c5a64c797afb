/*
 * src/planner.c
 *	  The planner is not an oracle: MERGE conditions see only the tenant's
 *	  rows, and value-bearing statistics of protected tables are withheld
 *	  from planning in a tenant context.
 *
 *	  - ti_planner_post_parse: a MERGE whose target is a protected table
 *	    needs SELECT on the target, so that RLS adds the SELECT policy as a
 *	    security qual and WHEN conditions never see other tenants' rows.
 *	  - ti_planner_relation_stats / ti_planner_index_stats: in a tenant
 *	    context, hand the planner a copy of the pg_statistic tuple with the
 *	    MCV lists and histograms removed (null fraction, width, n_distinct
 *	    and correlation kept).
 *	  - ti_planner_relation_info: drop extended statistics of protected
 *	    relations in a tenant context.
 *	  Setting tenant_iso.hide_statistics (PGC_SUSET, default on) turns the
 *	  statistics part off.
 *
 * Called from hooks.c; holds no hook state of its own.  Memory: the
 * statistics copy is allocated in the caller's context and freed by the
 * planner through vardata->freefunc.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_statistic.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parsetree.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"

#include "guc.h"
#include "isolation.h"
#include "tenant_iso.h"


/*
 * MERGE INTO protected ... WHEN MATCHED AND f(t.*): PG 15 evaluates the
 * WHEN condition over target rows the SELECT policy never filtered.
 * Requiring SELECT on the target makes RLS add the SELECT USING quals as
 * security quals on the target (see get_row_security_policies).  Done for
 * every MERGE on a protected table, not only in a tenant context, because
 * a parsed query may be planned later in another context.
 */
void
ti_planner_post_parse(ParseState *pstate, Query *query)
{
	RangeTblEntry *rte;

	if (query->commandType != CMD_MERGE || query->resultRelation <= 0)
		return;
	if (!ti_any_protected())
		return;
	rte = rt_fetch(query->resultRelation, query->rtable);
	if (rte->rtekind == RTE_RELATION && ti_tree_is_protected(rte->relid))
		ti_add_required_perms(query, rte, ACL_SELECT);
}

static bool
hiding(Oid relid)
{
	return ti_hide_statistics && ti_any_protected() &&
		ti_in_tenant_context() && ti_is_protected(relid);
}

static bool
value_bearing(int16 kind)
{
	switch (kind)
	{
		case STATISTIC_KIND_MCV:
		case STATISTIC_KIND_HISTOGRAM:
		case STATISTIC_KIND_MCELEM:
		case STATISTIC_KIND_DECHIST:
		case STATISTIC_KIND_RANGE_LENGTH_HISTOGRAM:
		case STATISTIC_KIND_BOUNDS_HISTOGRAM:
			return true;
		default:
			return false;
	}
}

/* A copy of the pg_statistic tuple without its value-bearing slots, or NULL. */
static HeapTuple
stripped_stats(Oid relid, AttrNumber attnum, bool inh)
{
	HeapTuple	tup;
	HeapTuple	result;
	Relation	statrel;
	Datum		values[Natts_pg_statistic];
	bool		nulls[Natts_pg_statistic];
	int			k;

	tup = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(relid),
						  Int16GetDatum(attnum), BoolGetDatum(inh));
	if (!HeapTupleIsValid(tup))
		return NULL;
	statrel = table_open(StatisticRelationId, AccessShareLock);
	heap_deform_tuple(tup, RelationGetDescr(statrel), values, nulls);
	for (k = 0; k < STATISTIC_NUM_SLOTS; k++)
	{
		int16		kind = DatumGetInt16(values[Anum_pg_statistic_stakind1 - 1 + k]);

		if (!value_bearing(kind))
			continue;
		values[Anum_pg_statistic_stakind1 - 1 + k] = Int16GetDatum(0);
		values[Anum_pg_statistic_staop1 - 1 + k] = ObjectIdGetDatum(InvalidOid);
		values[Anum_pg_statistic_stacoll1 - 1 + k] = ObjectIdGetDatum(InvalidOid);
		nulls[Anum_pg_statistic_stanumbers1 - 1 + k] = true;
		nulls[Anum_pg_statistic_stavalues1 - 1 + k] = true;
	}
	result = heap_form_tuple(RelationGetDescr(statrel), values, nulls);
	table_close(statrel, AccessShareLock);
	ReleaseSysCache(tup);
	return result;
}

bool
ti_planner_relation_stats(PlannerInfo *root, RangeTblEntry *rte,
						  AttrNumber attnum, VariableStatData *vardata)
{
	RelOptInfo *onerel;
	Oid			userid;

	if (rte->rtekind != RTE_RELATION || !hiding(rte->relid))
		return false;
	vardata->statsTuple = stripped_stats(rte->relid, attnum, rte->inh);
	vardata->freefunc = heap_freetuple;
	if (!HeapTupleIsValid(vardata->statsTuple))
		return true;

	/* As examine_variable does when no hook supplies the tuple. */
	onerel = vardata->rel;
	userid = (onerel && OidIsValid(onerel->userid)) ? onerel->userid : GetUserId();
	vardata->acl_ok =
		rte->securityQuals == NIL &&
		((pg_class_aclcheck(rte->relid, userid, ACL_SELECT) == ACLCHECK_OK) ||
		 (pg_attribute_aclcheck(rte->relid, attnum, userid, ACL_SELECT) == ACLCHECK_OK));
	return true;
}

bool
ti_planner_index_stats(PlannerInfo *root, Oid indexOid,
					   AttrNumber indexattnum, VariableStatData *vardata)
{
	Oid			heapid;

	if (!ti_hide_statistics || !ti_any_protected() || !ti_in_tenant_context())
		return false;
	heapid = IndexGetRelation(indexOid, true);
	if (!OidIsValid(heapid) || !ti_is_protected(heapid))
		return false;
	vardata->statsTuple = stripped_stats(indexOid, indexattnum, false);
	vardata->freefunc = heap_freetuple;
	/*
	 * Core sets acl_ok from the heap's RTE (no security quals and SELECT on
	 * the table).  In a tenant context a protected table always carries RLS
	 * security quals, so core would compute false; say so directly.
	 */
	vardata->acl_ok = false;
	return true;
}

/* Extended statistics bypass the hooks above: drop them all. */
void
ti_planner_relation_info(PlannerInfo *root, Oid relationObjectId,
						 bool inhparent, RelOptInfo *rel)
{
	if (rel->statlist == NIL || !hiding(relationObjectId))
		return;
	rel->statlist = NIL;
}
