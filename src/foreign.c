/*
 * src/foreign.c
 *	  Foreign code: functions, views, rules, operators and triggers owned by
 *	  a member of one tenant, run from another tenant's context.
 *
 * A function owned by a member of tenant A, called by a pool session in
 * tenant B's context, sees B's rows (the policy follows the session's
 * context) and may copy them into A's tables; a view or rule owned by A's
 * member reads and writes with A's rights on B's behalf.  Three checks close
 * this, each failing closed with 42501 and naming no tenant:
 *
 *	 - context.c: the effective tenant accounts for the current user
 *	   (GetUserId(), which SECURITY DEFINER changes): a member of X running
 *	   in context Y != X is a conflict, and a conflict has no usable context.
 *	 - needs_fmgr/fmgr hooks: every function owned by a tenant member goes
 *	   through the fmgr hook, which refuses to start it while the context is
 *	   another tenant's (or a conflict).  Builtin functions never reach the
 *	   hook, and such functions are no longer inlined.
 *	 - ExecutorStart: a range-table entry checked as another user (views and
 *	   rules use their owner's rights) whose owner is a member of another
 *	   tenant than the current context.
 *
 * From no context at all, a tenant's code may run: it then acts for its own
 * tenant or, lacking one, sees no protected row.
 *
 * Called from hooks.c; holds no hook variable of its own.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "isolation.h"
#include "tenant_iso.h"

/* Owner of a function, or InvalidOid. */
static Oid
function_owner(Oid fn_oid)
{
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (HeapTupleIsValid(tup))
	{
		owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
		ReleaseSysCache(tup);
	}
	return owner;
}

/*
 * True if code owned by a member of owner_tenant must not act now: the
 * session is in another tenant's context, or in a conflict.
 */
static bool
foreign_to_context(const char *owner_tenant)
{
	const char *ctx;

	if (!ti_in_tenant_context())
		return false;
	ctx = ti_effective_tenant();
	return ctx == NULL || strcmp(ctx, owner_tenant) != 0;
}


void
ti_foreign_init(void)
{
}

/*
 * Is a function owned by a tenant member?  Asked by the planner and by
 * fmgr_info() for every function that is not built in, on every execution
 * of a cached plan, so the answers are cached per function and forgotten
 * when pg_proc or the registry changes.
 */
typedef struct OwnerEntry
{
	Oid			fn_oid;
	bool		member_owned;
} OwnerEntry;

static HTAB *owner_cache = NULL;
static uint64 owner_cache_gen = 0;

static void
owner_cache_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	if (owner_cache != NULL)
	{
		hash_destroy(owner_cache);
		owner_cache = NULL;
	}
}

bool
ti_foreign_needs_fmgr(Oid fn_oid)
{
	Oid			owner;
	OwnerEntry *e;
	bool		found;
	uint64		gen;
	static bool registered = false;

#ifdef TENANT_ISO_MUTANT_NO_FOREIGN
	return false;
#endif
	if (!IsTransactionState() || IsParallelWorker() || !ti_extension_present())
		return false;
	gen = ti_registry_generation();
	if (owner_cache != NULL && owner_cache_gen != gen)
	{
		hash_destroy(owner_cache);
		owner_cache = NULL;
	}
	if (owner_cache == NULL)
	{
		HASHCTL		ctl;

		if (!registered)
		{
			CacheRegisterSyscacheCallback(PROCOID, owner_cache_inval, (Datum) 0);
			registered = true;
		}
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(OwnerEntry);
		ctl.hcxt = CacheMemoryContext;
		owner_cache = hash_create("tenant_iso function owners", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		owner_cache_gen = gen;
	}
	e = hash_search(owner_cache, &fn_oid, HASH_FIND, NULL);
	if (e != NULL)
		return e->member_owned;
	owner = function_owner(fn_oid);
	found = OidIsValid(owner) && ti_member_tenant(owner) != NULL;
	/* the lookups above may have reset the cache */
	if (owner_cache != NULL && owner_cache_gen == ti_registry_generation())
	{
		e = hash_search(owner_cache, &fn_oid, HASH_ENTER, NULL);
		e->member_owned = found;
	}
	return found;
}

void
ti_foreign_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg)
{
	Oid			owner;
	const char *owner_tenant;

	if (event != FHET_START || IsParallelWorker())
		return;
	/* *arg lives as long as the function's cache: keep the owner there */
	if (*arg == (Datum) 0)
		*arg = ObjectIdGetDatum(function_owner(flinfo->fn_oid));
	owner = DatumGetObjectId(*arg);
	if (!OidIsValid(owner))
		return;
	owner_tenant = ti_member_tenant(owner);
	if (owner_tenant != NULL && foreign_to_context(owner_tenant))
	{
		char	   *name = get_func_name(flinfo->fn_oid);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("function \"%s\" is owned by a member of another tenant and cannot run in this tenant context",
						name ? name : "?"),
				 errdetail("Code owned by a member of one tenant never runs on another tenant's behalf.")));
	}
}

void
ti_foreign_check_plan(PlannedStmt *plan)
{
	Oid		   *relids;
	Oid		   *users;
	int			n;
	int			i;

#ifdef TENANT_ISO_MUTANT_NO_FOREIGN
	return;
#endif
	if (IsParallelWorker() || !ti_in_tenant_context())
		return;
	n = ti_plan_checked_as(plan, &relids, &users);
	for (i = 0; i < n; i++)
	{
		const char *owner_tenant = ti_member_tenant(users[i]);

		if (owner_tenant != NULL && foreign_to_context(owner_tenant))
		{
			char	   *name = get_rel_name(relids[i]);

			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("a view or rule owned by a member of another tenant cannot run in this tenant context"),
					 errdetail("It would use relation \"%s\" with its owner's rights.",
							   name ? name : "?")));
		}
	}
}
