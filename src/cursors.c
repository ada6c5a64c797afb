/*
 * src/cursors.c
 *	  Cursors and portals opened under one tenant context and read under
 *	  another.
 *
 * The tenant under which each executor run that touches a protected table
 * was started is remembered (executor hooks, and portal names for SQL
 * cursors, including WITH HOLD ones); fetching from it under another
 * context fails with 55000.  After each change of context (a callback
 * registered with context.c), WITH HOLD cursors opened under another
 * context are marked failed, because a materialised portal can be read
 * without the executor.
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

#include "isolation.h"

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

		if (rte->rtekind == RTE_RELATION && ti_is_protected(rte->relid))
			return true;
	}
	return false;
}

/* After the executor started a run: remember the context it runs under. */
void
ti_cursors_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && ti_extension_present() &&
		plan_touches_protected(queryDesc->plannedstmt))
	{
		forget(&open_runs, queryDesc);
		remember(&open_runs, queryDesc);
	}
}

/* Before each ExecutorRun: the run must continue under its own context. */
void
ti_cursors_executor_run(QueryDesc *queryDesc)
{
	if (open_runs != NIL)
	{
		OpenRun    *r = find_run(open_runs, queryDesc);

		if (r)
			check_same_context(r);
	}
}

void
ti_cursors_executor_end(QueryDesc *queryDesc)
{
	if (open_runs != NIL)
		forget(&open_runs, queryDesc);
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
static void
fail_foreign_portals(bool changed)
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

/* Before a utility statement: FETCH/MOVE from a cursor of another context. */
void
ti_cursors_before_utility(Node *parsetree)
{
	if (IsA(parsetree, FetchStmt) && open_portals != NIL)
	{
		FetchStmt  *fs = (FetchStmt *) parsetree;
		OpenRun    *r = fs->portalname ? find_portal(fs->portalname) : NULL;

		if (r)
			check_same_context(r);
	}
}

/* After a utility statement: remember new SQL cursors, forget closed ones. */
void
ti_cursors_after_utility(Node *parsetree, bool present)
{
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
		default:
			break;
	}
}

void
ti_cursors_init(void)
{
	RegisterXactCallback(cursor_xact_callback, NULL);
	ti_context_register_callback(fail_foreign_portals);
}
