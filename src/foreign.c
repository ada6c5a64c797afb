/*
 * src/foreign.c
 *	  Foreign code: functions, views, operators and triggers owned by a
 *	  member of one tenant, run from another tenant's context.
 *
 * Called from hooks.c; holds no hook state of its own.
 */
#include "postgres.h"

#include "isolation.h"
#include "tenant_iso.h"

void
ti_foreign_init(void)
{
}

void
ti_foreign_check_plan(PlannedStmt *plan)
{
}

bool
ti_foreign_needs_fmgr(Oid fn_oid)
{
	return false;
}

void
ti_foreign_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg)
{
}
