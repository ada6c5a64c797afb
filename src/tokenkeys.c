/*
 * src/tokenkeys.c
 *	  Backend state of signed tenant tokens: the settings
 *	  tenant_iso.token_audience and tenant_iso.token_max_ttl (defined in
 *	  guc.c; their check and assign hooks are here), the key ring
 *	  (tenant_iso.token_keys) and the revocations
 *	  (tenant_iso.token_revocations).
 *
 * Both tables are cached whole in each backend, the same way as the
 * registry caches (src/registry.c): a statement trigger (_config_changed)
 * sends a relcache invalidation for the table, the callback below only
 * clears a flag (it may run at any time, even during abort), and the next
 * lookup reloads through a catalog snapshot.  A revocation is therefore a
 * hash lookup on every set_tenant_token(), and it reaches every backend at
 * its next transaction start.
 *
 * Key ring: a token key id (kid) is usable while its row has no retired_at
 * (the current key: the highest such kid signs new tokens), or until its
 * accept_until.  An empty table means the implicit first key, kid 1, so an
 * install needs no row (and pg_dump has none to collide with).  Deleting
 * a row refuses that key's tokens at once.
 *
 * Without the 0.2.0 tables (an old install script with this library) the
 * implicit key and no revocations apply; the tables are looked up again on
 * every call until they exist, so ALTER EXTENSION UPDATE is seen.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "compat.h"
#include "guc.h"
#include "token.h"
#include "tokenkeys.h"


/* the longest a token may live, whatever token_max_ttl says (0.1.0's cap) */
#define TTL_CEILING ((int64) 3660 * USECS_PER_DAY)

static int64 token_max_ttl_usecs = USECS_PER_DAY;

typedef struct KeyEntry
{
	uint32		kid;
	bool		current;
	TimestampTz accept_until;	/* when not current */
} KeyEntry;

typedef struct RevocationEntry
{
	char		tenant_id[NAMEDATALEN]; /* hash key */
	TimestampTz revoked_before;
} RevocationEntry;

static Oid	keys_oid = InvalidOid;
static Oid	revs_oid = InvalidOid;
static bool keys_valid = false;
static bool revs_valid = false;
static MemoryContext keys_cxt = NULL;
static MemoryContext revs_cxt = NULL;
static KeyEntry *keys = NULL;
static int	n_keys = 0;
static HTAB *revocations = NULL;

/* tenant_iso.token_max_ttl: an interval, parsed without throwing */
bool
ti_check_max_ttl(char **newval, void **extra, GucSource source)
{
	char		workbuf[256];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_itm_in itm;
	Interval	span;
	int64		usecs;
	int64	   *result;

	if (ParseDateTime(*newval, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0 ||
		DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE, &dtype, &itm) != 0 ||
		dtype != DTK_DELTA || itmin2interval(&itm, &span) != 0)
	{
		GUC_check_errdetail("\"%s\" is not an interval.", *newval);
		return false;
	}
	if (span.month > 120 || span.month < 0 || span.day > 3660 || span.day < -3660)
		usecs = -1;
	else
		usecs = span.time + (int64) span.day * USECS_PER_DAY +
			(int64) span.month * DAYS_PER_MONTH * USECS_PER_DAY;
	if (usecs < USECS_PER_SEC || usecs > TTL_CEILING)
	{
		GUC_check_errdetail("The maximum token lifetime must be between 1 second and 3660 days.");
		return false;
	}
	/* extra is released by the GUC machinery */
	result = (int64 *) ti_guc_malloc(sizeof(int64));
	if (result == NULL)
		return false;
	*result = usecs;
	*extra = result;
	return true;
}

void
ti_assign_max_ttl(const char *newval, void *extra)
{
	token_max_ttl_usecs = *(int64 *) extra;
}

bool
ti_check_audience(char **newval, void **extra, GucSource source)
{
	/* "name:" is prepended, see ti_token_audience() */
	if (strlen(*newval) > TI_TOKEN_AUDIENCE_MAX - 5)
	{
		GUC_check_errdetail("The token audience must be at most %d bytes.",
							TI_TOKEN_AUDIENCE_MAX - 5);
		return false;
	}
	return true;
}

static void
tokens_relcache_cb(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == keys_oid)
	{
		keys_valid = false;
		keys_oid = InvalidOid;
	}
	if (!OidIsValid(relid) || relid == revs_oid)
	{
		revs_valid = false;
		revs_oid = InvalidOid;
	}
}

void
ti_tokens_init(void)
{
	CacheRegisterRelcacheCallback(tokens_relcache_cb, (Datum) 0);
}

int64
ti_token_max_ttl(void)
{
	return token_max_ttl_usecs;
}

/*
 * The audience: a configured name, or this cluster's system identifier and
 * this database's name.  The two forms have different prefixes, so that a
 * configured name never equals another cluster's default audience.
 */
const char *
ti_token_audience(void)
{
	/*
	 * The default audience cannot change during a backend's life (the
	 * current database cannot be renamed), so it is computed once; a
	 * configured one is rebuilt when the setting changes.
	 */
	static char default_aud[TI_TOKEN_AUDIENCE_MAX + 1] = "";
	static char named_aud[TI_TOKEN_AUDIENCE_MAX + 1] = "";
	char	   *db;

	if (ti_token_audience_setting != NULL && ti_token_audience_setting[0] != '\0')
	{
		if (strncmp(named_aud, "name:", 5) != 0 || strcmp(named_aud + 5, ti_token_audience_setting) != 0)
			snprintf(named_aud, sizeof(named_aud), "name:%s", ti_token_audience_setting);
		return named_aud;
	}
	if (default_aud[0] == '\0')
	{
		db = get_database_name(MyDatabaseId);
		if (db == NULL)
			elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
		snprintf(default_aud, sizeof(default_aud), "cluster:" UINT64_FORMAT "/db:%s",
				 GetSystemIdentifier(), db);
		pfree(db);
	}
	return default_aud;
}

static MemoryContext
fresh_cxt(MemoryContext *cxt, const char *ident)
{
	if (*cxt == NULL)
	{
		*cxt = AllocSetContextCreate(TopMemoryContext, "tenant_iso tokens",
									 ALLOCSET_SMALL_SIZES);
		MemoryContextSetIdentifier(*cxt, ident);
	}
	else
		MemoryContextReset(*cxt);
	return *cxt;
}

/* Load the key ring; false when the table does not exist (implicit kid 1). */
static bool
load_keys(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	int			cap = 8;

	if (keys_valid)
		return true;
	keys_oid = ti_ext_relid("token_keys");
	if (!OidIsValid(keys_oid))
		return false;
	fresh_cxt(&keys_cxt, "token_keys");
	keys = MemoryContextAlloc(keys_cxt, cap * sizeof(KeyEntry));
	n_keys = 0;

	rel = table_open(keys_oid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		null_kid,
					null_retired,
					null_until;
		Datum		kid = heap_getattr(tup, Anum_token_keys_kid, desc, &null_kid);
		Datum		until = heap_getattr(tup, Anum_token_keys_accept_until, desc, &null_until);

		(void) heap_getattr(tup, Anum_token_keys_retired_at, desc, &null_retired);
		if (null_kid || DatumGetInt32(kid) <= 0)
			continue;
		if (n_keys == cap)
		{
			cap *= 2;
			keys = repalloc(keys, cap * sizeof(KeyEntry));
		}
		keys[n_keys].kid = (uint32) DatumGetInt32(kid);
		keys[n_keys].current = null_retired;
		/* a retired key without an end of acceptance is not accepted */
		keys[n_keys].accept_until = null_retired ? DT_NOEND :
			(null_until ? DT_NOBEGIN : DatumGetTimestampTz(until));
		n_keys++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	/* the relcache callback may have run during the scan: keep its verdict */
	keys_valid = OidIsValid(keys_oid);
	return true;
}

bool
ti_token_current_kid(uint32 *kid)
{
	int			i;
	bool		found = false;

	if (!load_keys() || n_keys == 0)
	{
		*kid = 1;
		return true;
	}
	for (i = 0; i < n_keys; i++)
	{
		if (keys[i].current && (!found || keys[i].kid > *kid))
		{
			*kid = keys[i].kid;
			found = true;
		}
	}
	return found;
}

bool
ti_token_kid_usable(uint32 kid, TimestampTz now)
{
	int			i;

	if (!load_keys() || n_keys == 0)
		return kid == 1;
	for (i = 0; i < n_keys; i++)
	{
		if (keys[i].kid == kid)
			return keys[i].current || now < keys[i].accept_until;
	}
	return false;
}

static bool
load_revocations(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	HASHCTL		ctl;

	if (revs_valid)
		return true;
	revs_oid = ti_ext_relid("token_revocations");
	if (!OidIsValid(revs_oid))
		return false;
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(RevocationEntry);
	ctl.hcxt = fresh_cxt(&revs_cxt, "token_revocations");
	revocations = hash_create("tenant_iso token revocations", 64, &ctl,
							  HASH_ELEM | HASH_CONTEXT | HASH_STRINGS);

	rel = table_open(revs_oid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		null_id,
					null_before;
		Datum		id = heap_getattr(tup, Anum_token_revocations_tenant_id, desc, &null_id);
		Datum		before = heap_getattr(tup, Anum_token_revocations_revoked_before, desc, &null_before);
		char	   *s;
		RevocationEntry *e;
		bool		found;

		if (null_id || null_before)
			continue;
		s = TextDatumGetCString(id);
		if (strlen(s) < NAMEDATALEN)
		{
			e = hash_search(revocations, s, HASH_ENTER, &found);
			e->revoked_before = DatumGetTimestampTz(before);
		}
		pfree(s);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	revs_valid = OidIsValid(revs_oid);
	return true;
}

TimestampTz
ti_token_revoked_before(const char *tenant)
{
	RevocationEntry *e;

	if (strlen(tenant) >= NAMEDATALEN || !load_revocations())
		return DT_NOBEGIN;
	e = hash_search(revocations, tenant, HASH_FIND, NULL);
	return e ? e->revoked_before : DT_NOBEGIN;
}
