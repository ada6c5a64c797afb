/*
 * src/tenant_iso.c
 *	  Module entry point.  _PG_init returns at once under pg_upgrade
 *	  (IsBinaryUpgrade), checks that the library is being preloaded, defines
 *	  every setting (guc.c), initialises each subsystem in turn and closes
 *	  the "tenant_iso" setting prefix.
 *
 * Elevated paths: none.  _PG_init runs in the postmaster, before any
 * session, and resolves no SQL names.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "guc.h"
#include "neighbours.h"
#include "tenant_iso.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* pg_upgrade restores the catalog only; no hooks, no checks */
	if (IsBinaryUpgrade)
		return;

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_iso must be loaded via shared_preload_libraries"),
				 errhint("Add tenant_iso to the shared_preload_libraries setting in postgresql.conf and restart the server.")));

	ti_guc_init();
	ti_masterkey_init();
	ti_registry_init();
	ti_context_init();
	ti_isolation_init();
	ti_keys_init();
	ti_history_init();
	ti_monitor_init();
	ti_stats_init();
	ti_limits_init();

	MarkGUCPrefixReserved("tenant_iso");
}
