/*
 * src/registry.c
 *	  Backend-local caches of the configuration tables (tenants, members,
 *	  switchers, protected), the generation counter that tells other caches
 *	  (data_keys in keys.c, the tenant context) when any of them changed,
 *	  ti_ext_relid() that finds the extension's tables, and the check that
 *	  the installed SQL objects are as new as the library
 *	  (ti_catalog_too_old).
 *
 * Each table is loaded whole, on first use after an invalidation, into a
 * private memory context.  The tables carry a statement-level trigger
 * (ti_config_changed) that sends a relcache invalidation for the table, so
 * every backend drops its copy at its next transaction start, and the
 * writing backend at its next command.  The relcache callback only clears
 * flags: it may run at any time, even during abort.
 *
 * Reads use a catalog snapshot via systable_beginscan, never SPI, because
 * they happen inside the rewriter and executor hooks.
 *
 * Elevated paths: the loads read the configuration tables, which the
 * caller may not read, as any caller, by direct catalog scans: no SQL, no
 * permission check and no name resolution (ti_ext_relid finds the tables
 * by namespace and relation name in the catalogs, "tenant_iso" fixed, and
 * the column positions are those of catalog.h).
 * ti_config_changed, the tables' trigger, only sends an invalidation.
 * Nothing here needs search_path pinned, because nothing here consults it.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/indexing.h"
#include "utils/fmgroids.h"

#include "catalog.h"
#include "tenant_iso.h"

typedef struct OidNameEntry
{
	Oid			oid;			/* hash key */
	char		name[NAMEDATALEN];
} OidNameEntry;

typedef struct TenantEntry
{
	char		tenant_id[NAMEDATALEN]; /* hash key */
	TiTenantStatus status;
} TenantEntry;

enum
{
	REG_TENANTS,
	REG_MEMBERS,
	REG_SWITCHERS,
	REG_PROTECTED,
	REG_DATA_KEYS,				/* not cached here: keys.c watches generation */
	REG_COUNT
};

static const char *const reg_names[REG_COUNT] = {
	"tenants", "members", "switchers", "protected", "data_keys"
};

/* per table: the key column and the cached value column (catalog.h) */
static const AttrNumber key_attnum[REG_COUNT] = {
	Anum_tenants_tenant_id, Anum_members_member, Anum_switchers_grantee,
	Anum_protected_rel, Anum_data_keys_tenant_id
};
static const AttrNumber value_attnum[REG_COUNT] = {
	Anum_tenants_status, Anum_members_tenant_id, InvalidAttrNumber,
	Anum_protected_tenant_column, InvalidAttrNumber
};

static bool oids_valid = false;
static Oid	reg_oids[REG_COUNT];
static bool reg_valid[REG_COUNT];
static MemoryContext reg_cxt[REG_COUNT];
static uint64 generation = 1;

static HTAB *tenants_hash = NULL;	/* tenant id -> TenantEntry */
static HTAB *members_hash = NULL;	/* role oid -> tenant id */
static List *switcher_roles = NIL;	/* Oids */
static HTAB *protected_hash = NULL; /* rel oid -> column name */

static void
invalidate(int which)
{
	reg_valid[which] = false;
	generation++;
}

static void
registry_relcache_cb(Datum arg, Oid relid)
{
	int			i;

	if (!OidIsValid(relid))
	{
		oids_valid = false;
		for (i = 0; i < REG_COUNT; i++)
			invalidate(i);
		return;
	}
	/*
	 * Compare with the last known OIDs even when they are being looked up
	 * again: several invalidations arrive together, and each must count.
	 */
	for (i = 0; i < REG_COUNT; i++)
	{
		if (reg_oids[i] == relid)
		{
			invalidate(i);
			/* a dropped and recreated extension has new OIDs */
			oids_valid = false;
		}
	}
}

void
ti_registry_init(void)
{
	CacheRegisterRelcacheCallback(registry_relcache_cb, (Datum) 0);
}

uint64
ti_registry_generation(void)
{
	return generation;
}

/*
 * One library serves the 0.1.0 and 0.2.0 SQL objects until ALTER EXTENSION
 * UPDATE runs; what needs the newer objects says so with this error.
 */
void
ti_catalog_too_old(const char *what)
{
	HeapTuple	tup = NULL;
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	char	   *installed = NULL;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("tenant_iso"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			installed = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s needs the tenant_iso %s SQL objects, but version %s is installed in this database",
					what, TI_EXTENSION_VERSION, installed ? installed : "?"),
			 errhint("Run ALTER EXTENSION tenant_iso UPDATE.")));
}

/*
 * The OID of the extension's table relname, found in the extension's schema
 * (TI_SCHEMA, fixed: the extension is not relocatable), or InvalidOid when
 * the extension or that table is absent.  Two syscache probes, so not
 * cached here: the callers that keep the result (reg_oids below,
 * tokenkeys.c) drop it in a relcache callback, which also runs when the
 * extension is dropped and created again with new OIDs.
 */
Oid
ti_ext_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid(TI_SCHEMA, true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid(relname, nsp);
}

/*
 * Is the extension installed in this database?  Not cached when it is
 * absent: two syscache probes are cheap, and CREATE EXTENSION must be seen.
 */
bool
ti_extension_present(void)
{
	int			i;

	if (oids_valid)
		return true;
	if (!IsTransactionState())
		return false;
	for (i = 0; i < REG_COUNT; i++)
	{
		Oid			relid = ti_ext_relid(reg_names[i]);

		if (!OidIsValid(relid))
			return false;
		if (reg_oids[i] != relid)
			invalidate(i);
		reg_oids[i] = relid;
	}
	oids_valid = true;
	return true;
}

static MemoryContext
reset_cxt(int which)
{
	if (reg_cxt[which] == NULL)
	{
		reg_cxt[which] = AllocSetContextCreate(TopMemoryContext,
											   "tenant_iso registry",
											   ALLOCSET_SMALL_SIZES);
		MemoryContextSetIdentifier(reg_cxt[which], reg_names[which]);
	}
	else
		MemoryContextReset(reg_cxt[which]);
	return reg_cxt[which];
}

static HTAB *
make_hash(int which, Size keysize, Size entrysize, bool string_key)
{
	HASHCTL		ctl;

	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = reg_cxt[which];
	return hash_create(reg_names[which], 64, &ctl,
					   HASH_ELEM | HASH_CONTEXT | (string_key ? HASH_STRINGS : HASH_BLOBS));
}

/*
 * Load one table into its cache.  Returns false when the extension is not
 * installed (the caller then treats every lookup as "none").
 */
static bool
ensure_loaded(int which)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	MemoryContext cxt,
				old;

	if (!ti_extension_present())
		return false;
	if (reg_valid[which])
		return true;

	cxt = reset_cxt(which);
	switch (which)
	{
		case REG_TENANTS:
			tenants_hash = make_hash(which, NAMEDATALEN, sizeof(TenantEntry), true);
			break;
		case REG_MEMBERS:
			members_hash = make_hash(which, sizeof(Oid), sizeof(OidNameEntry), false);
			break;
		case REG_SWITCHERS:
			switcher_roles = NIL;
			break;
		case REG_PROTECTED:
			protected_hash = make_hash(which, sizeof(Oid), sizeof(OidNameEntry), false);
			break;
	}

	rel = table_open(reg_oids[which], AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull1,
					isnull2;
		Datum		d1 = heap_getattr(tup, key_attnum[which], desc, &isnull1);
		Datum		d2 = (which == REG_SWITCHERS) ? (Datum) 0 :
			heap_getattr(tup, value_attnum[which], desc, &isnull2);
		bool		found;

		if (isnull1)
			continue;
		old = MemoryContextSwitchTo(cxt);
		switch (which)
		{
			case REG_TENANTS:
				{
					char	   *id = TextDatumGetCString(d1);
					char	   *st = TextDatumGetCString(d2);
					TenantEntry *e;

					if (strlen(id) < NAMEDATALEN)
					{
						e = hash_search(tenants_hash, id, HASH_ENTER, &found);
						e->status = strcmp(st, "active") == 0 ?
							TI_TENANT_ACTIVE : TI_TENANT_SUSPENDED;
					}
					break;
				}
			case REG_MEMBERS:
				{
					Oid			role = DatumGetObjectId(d1);
					OidNameEntry *e = hash_search(members_hash, &role, HASH_ENTER, &found);

					strlcpy(e->name, TextDatumGetCString(d2), NAMEDATALEN);
					break;
				}
			case REG_SWITCHERS:
				switcher_roles = lappend_oid(switcher_roles, DatumGetObjectId(d1));
				break;
			case REG_PROTECTED:
				{
					Oid			relid = DatumGetObjectId(d1);
					OidNameEntry *e = hash_search(protected_hash, &relid, HASH_ENTER, &found);

					strlcpy(e->name, NameStr(*DatumGetName(d2)), NAMEDATALEN);
					break;
				}
		}
		MemoryContextSwitchTo(old);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	reg_valid[which] = true;
	return true;
}

const char *
ti_member_tenant(Oid roleid)
{
	OidNameEntry *e;

	if (!ensure_loaded(REG_MEMBERS))
		return NULL;
	e = hash_search(members_hash, &roleid, HASH_FIND, NULL);
	return e ? e->name : NULL;
}

TiTenantStatus
ti_tenant_status(const char *tenant_id)
{
	TenantEntry *e;

	if (strlen(tenant_id) >= NAMEDATALEN || !ensure_loaded(REG_TENANTS))
		return TI_TENANT_UNKNOWN;
	e = hash_search(tenants_hash, tenant_id, HASH_FIND, NULL);
	return e ? e->status : TI_TENANT_UNKNOWN;
}

bool
ti_is_switcher(Oid roleid)
{
	ListCell   *lc;

	if (!ensure_loaded(REG_SWITCHERS))
		return false;
	foreach(lc, switcher_roles)
	{
		if (has_privs_of_role(roleid, lfirst_oid(lc)))
			return true;
	}
	return false;
}

const char *
ti_protected_column(Oid relid)
{
	OidNameEntry *e;

	if (!ensure_loaded(REG_PROTECTED))
		return NULL;
	e = hash_search(protected_hash, &relid, HASH_FIND, NULL);
	return e ? e->name : NULL;
}

bool
ti_any_protected(void)
{
	if (!ensure_loaded(REG_PROTECTED))
		return false;
	return hash_get_num_entries(protected_hash) > 0;
}

/*
 * Statement-level trigger on the configuration tables: tell every backend
 * (at commit) and this one (at the next command) to drop its cache.
 */
PG_FUNCTION_INFO_V1(ti_config_changed);
Datum
ti_config_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_config_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/* The owner of a relation. */
Oid
ti_rel_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}
