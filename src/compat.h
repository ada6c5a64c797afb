/*
 * src/compat.h
 *	  Every difference between the PostgreSQL majors tenant_iso supports
 *	  (15, 17 and 18), behind PG_VERSION_NUM, in this one header.  The rest
 *	  of the code calls the ti_* names below and never tests the version.
 *
 * Each block names the version where the API changed, so that a major in
 * between (16) gets the right side of each boundary as well:
 *
 *	16	RangeTblEntry's permission fields (requiredPerms, checkAsUser,
 *		insertedCols, ...) moved to RTEPermissionInfo (Query.rteperminfos,
 *		PlannedStmt.permInfos); ExecCheckRTPerms became
 *		ExecCheckPermissions; ExecutorCheckPerms_hook changed with it
 *		(tenant_iso does not use that hook).
 *	16	AT_AddConstraintRecurse is gone (recursion is a flag of the command).
 *	16	stringToQualifiedNameList takes an escontext argument.
 *	16	GUC values and check-hook "extra" data live in a memory context
 *		and are released with guc_free (pfree), no longer free(): a
 *		malloc()ed extra crashes RESET on 16 and later.
 *	18	ExecutorRun and its hook lost the execute_once argument.
 *	18	RelationGetPrimaryKeyIndex takes deferrable_ok.
 *	18	pg_attribute_noreturn() is gone; pg_noreturn goes before the
 *		declaration.
 *
 * Checked unchanged in 15, 17 and 18: ProcessUtility_hook_type, the
 * row-security policy hooks, ExecutorStart_hook (returns void in the
 * released 18), ExecutorEnd_hook, object_access_hook, post_parse_analyze_hook,
 * needs_fmgr_hook/fmgr_hook, get_relation_stats_hook.
 */
#ifndef TI_COMPAT_H
#define TI_COMPAT_H

#include "postgres.h"

#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/wait_event.h"
#include "storage/proc.h"
#include "miscadmin.h"
#include "utils/regproc.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif

#if PG_VERSION_NUM < 150000
#error "tenant_iso needs PostgreSQL 15 or later"
#endif

/* 18: a function that does not return; written before the declaration */
#if PG_VERSION_NUM < 180000
#define pg_noreturn pg_attribute_noreturn()
#endif

/* 18: ExecutorRun's hook signature and the call that passes it on */
#if PG_VERSION_NUM >= 180000
#define TI_EXECUTOR_RUN_PARAMS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define TI_EXECUTOR_RUN_ARGS queryDesc, direction, count
#else
#define TI_EXECUTOR_RUN_PARAMS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once
#define TI_EXECUTOR_RUN_ARGS queryDesc, direction, count, execute_once
#endif

/* 18: the primary key index; deferrable keys were never returned before */
static inline Oid
ti_primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

/* 16: a qualified name list from text; errors are thrown, not soft */
static inline List *
ti_qualified_name_list(const char *string)
{
#if PG_VERSION_NUM >= 160000
	return stringToQualifiedNameList(string, NULL);
#else
	return stringToQualifiedNameList(string);
#endif
}

/* 16: memory for a GUC check hook's *extra, released by the GUC machinery */
static inline void *
ti_guc_malloc(size_t size)
{
#if PG_VERSION_NUM >= 160000
	return guc_malloc(LOG, size);
#else
	return malloc(size);
#endif
}

/* 16: AT_AddConstraintRecurse is gone; an ALTER TABLE command that adds a constraint */
static inline bool
ti_at_adds_constraint(AlterTableType subtype)
{
#if PG_VERSION_NUM >= 160000
	return subtype == AT_AddConstraint;
#else
	return subtype == AT_AddConstraint || subtype == AT_AddConstraintRecurse;
#endif
}

/*
 * 16: add permissions to the result relation of a parsed query (MERGE's
 * target needs ACL_SELECT, planner.c).
 */
static inline void
ti_add_required_perms(Query *query, RangeTblEntry *rte, AclMode perms)
{
#if PG_VERSION_NUM >= 160000
	if (rte->perminfoindex != 0)
		getRTEPermissionInfo(query->rteperminfos, rte)->requiredPerms |= perms;
#else
	rte->requiredPerms |= perms;
#endif
}

/*
 * 16: check the current user's INSERT rights on columns attnums (1-based)
 * of rel, as DoCopy does; raises on a violation.
 */
static inline void
ti_check_insert_perms(Relation rel, List *attnums)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	Bitmapset  *cols = NULL;
	ListCell   *lc;

	foreach(lc, attnums)
		cols = bms_add_member(cols, lfirst_int(lc) - FirstLowInvalidHeapAttributeNumber);
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
#if PG_VERSION_NUM >= 160000
	{
		List	   *perminfos = NIL;
		RTEPermissionInfo *perminfo = addRTEPermissionInfo(&perminfos, rte);

		perminfo->requiredPerms = ACL_INSERT;
		perminfo->insertedCols = cols;
		ExecCheckPermissions(list_make1(rte), perminfos, true);
	}
#else
	rte->requiredPerms = ACL_INSERT;
	rte->insertedCols = cols;
	ExecCheckRTPerms(list_make1(rte), true);
#endif
}

/*
 * 16: the relations of a plan whose rights are checked as another user
 * (views, rules): relids[i] is checked as users[i].  Returns the count.
 */
static inline int
ti_plan_checked_as(PlannedStmt *plan, Oid **relids, Oid **users)
{
	ListCell   *lc;
	int			n = 0;
#if PG_VERSION_NUM >= 160000
	List	   *entries = plan->permInfos;
#else
	List	   *entries = plan->rtable;
#endif

	*relids = palloc(sizeof(Oid) * (list_length(entries) + 1));
	*users = palloc(sizeof(Oid) * (list_length(entries) + 1));
	foreach(lc, entries)
	{
#if PG_VERSION_NUM >= 160000
		RTEPermissionInfo *p = lfirst_node(RTEPermissionInfo, lc);
#else
		RangeTblEntry *p = lfirst_node(RangeTblEntry, lc);

		if (p->rtekind != RTE_RELATION)
			continue;
#endif
		if (!OidIsValid(p->checkAsUser))
			continue;
		(*relids)[n] = p->relid;
		(*users)[n] = p->checkAsUser;
		n++;
	}
	return n;
}

/* 17: this backend's PGPROC number */
#if PG_VERSION_NUM >= 170000
#define TI_MY_PROCNO MyProcNumber
#else
#define TI_MY_PROCNO (MyProc->pgprocno)
#endif

/*
 * 17: extensions name their own wait events (pg_stat_activity shows
 * wait_event_type Extension with these names); before, all show as
 * "Extension".
 */
#if PG_VERSION_NUM >= 170000
static inline uint32
ti_wait_event_named(uint32 *cache, const char *name)
{
	if (*cache == 0)
		*cache = WaitEventExtensionNew(name);
	return *cache;
}
static inline uint32
ti_wait_event_admission(void)
{
	static uint32 ev = 0;

	return ti_wait_event_named(&ev, "TenantIsoAdmission");
}
static inline uint32
ti_wait_event_rate(void)
{
	static uint32 ev = 0;

	return ti_wait_event_named(&ev, "TenantIsoRateLimit");
}
#else
#define ti_wait_event_admission() PG_WAIT_EXTENSION
#define ti_wait_event_rate() PG_WAIT_EXTENSION
#endif

/* 16: a built-in setting's definition, to chain a check hook onto it */
static inline struct config_generic *
ti_find_guc(const char *name)
{
#if PG_VERSION_NUM >= 160000
	return find_option(name, false, true, ERROR);
#else
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();

	for (int i = 0; i < n; i++)
		if (strcmp(vars[i]->name, name) == 0)
			return vars[i];
	return NULL;
#endif
}

#endif							/* TI_COMPAT_H */
