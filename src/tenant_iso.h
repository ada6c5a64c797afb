/*
 * src/tenant_iso.h
 *	  Declarations shared between the backend-facing C files of tenant_iso.
 */
#ifndef TENANT_ISO_H
#define TENANT_ISO_H

#include "postgres.h"
#include "nodes/parsenodes.h"
#include "utils/rel.h"

#include "compat.h"

/* Name of the hidden setting that carries a switcher's context. */
#define TI_CONTEXT_GUC "tenant_iso.tenant"

/* subsystem initialisation, called from _PG_init */
extern void ti_masterkey_init(void);
extern void ti_registry_init(void);
extern void ti_context_init(void);
extern void ti_isolation_init(void);
extern void ti_keys_init(void);
extern void ti_history_init(void);
extern void ti_monitor_init(void);

/* monitor.c: one background worker per database of a list setting */
#include "postmaster/bgworker.h"
extern void ti_register_db_workers(const char *list_setting, const char *setting_name,
								   const char *function, const char *type,
								   BgWorkerStartTime start);

/* peer.c: bytes sent to and received from peers by this backend */
extern int64 ti_peer_bytes_total;

/* masterkey.c */
extern void ti_derive_key(const char *purpose, uint8 *out);
extern bool ti_try_derive_key(const char *purpose, uint8 *out);
extern void ti_derive_previous_key(const char *purpose, uint8 *out);
extern bool ti_master_key_available(void);

/* registry.c: cached views of the configuration tables */
typedef enum TiTenantStatus
{
	TI_TENANT_UNKNOWN,
	TI_TENANT_ACTIVE,
	TI_TENANT_SUSPENDED
} TiTenantStatus;

extern bool ti_extension_present(void);

/*
 * registry.c: the library is newer than the extension's SQL objects (0.1.0
 * installed, ALTER EXTENSION UPDATE not run yet) and "what" needs them.
 */
pg_noreturn extern void ti_catalog_too_old(const char *what);
extern const char *ti_member_tenant(Oid roleid);
extern TiTenantStatus ti_tenant_status(const char *tenant_id);
extern bool ti_is_switcher(Oid roleid);
extern const char *ti_protected_column(Oid relid);
extern bool ti_any_protected(void);
extern uint64 ti_registry_generation(void);
extern Oid	ti_rel_owner(Oid relid);

/* policy.c */
extern bool ti_maintenance_worker;

/* context.c */
extern const char *ti_effective_tenant(void);
extern const char *ti_enforced_tenant_or_error(void);
extern bool ti_in_tenant_context(void);
extern bool ti_context_conflict(const char **a, const char **b);
extern void ti_clear_switcher_context(void);
extern bool ti_context_changed_in_xact(void);
extern void ti_context_xact_end(void);
extern bool ti_context_local_changed_in_xact(void);
extern void ti_context_guard_utility(Node *stmt);
extern void ti_context_post_parse(Query *query);

/*
 * context.c: a subsystem that must react to a change of context registers a
 * callback (from _PG_init), so that context.c needs none of their headers.
 * The callbacks run in registration order after every set_tenant(),
 * set_tenant_token() and reset_tenant(), with changed = false when the
 * context is the same as before.  They may raise an error.
 */
typedef void (*TiContextCallback) (bool changed);
extern void ti_context_register_callback(TiContextCallback fn);

#endif
