/*
 * src/digest.c
 *	  Replication integrity: additive per-tenant digests kept by
 *	  statement-level triggers, rebuild_digests(), verify(), and the live
 *	  bucket digests that diff_peer() compares.  Row hashes come from the
 *	  canonical encoder (canonical.c).
 *
 * What a row hashes to (its canonical bytes in format 1 or 2, recorded per
 * tracked table in tenant_iso.tracked.format, its lanes and its bucket) is
 * specified and computed in canonical.c.  This file keeps the digests: an
 * ALTER TABLE that changes what rows encode to (DROP COLUMN, ADD COLUMN
 * with a default, ALTER COLUMN TYPE) rebuilds the table's digests in
 * the same transaction (ti_digest_after_alter), and verify() says so.
 *
 * Stored digests: rows of tenant_iso.digests (relname, tenant, bucket,
 * rows, lanes) are deltas, appended by the triggers in the writing
 * transaction with a plain heap insert (the table has no index), so
 * concurrent writers never wait on each other; compact_digests() sums them.
 * Digests are keyed by schema-qualified table name, not OID.
 *
 * Elevated paths (issue 10 section 1):
 *	- ti_digest_trigger runs as the writing role (often a tenant member) and
 *	  appends to tenant_iso.digests, which that role may not write, by a
 *	  direct heap insert: no SQL, no permission check, no name resolution
 *	  (the table is found by namespace and relation name lookups in the
 *	  catalogs, the tracked table by its schema-qualified name).  Column
 *	  values are encoded through functions found by type OID only.
 *	- ti_rebuild_digests (from track(), as its caller; track() is pinned by
 *	  its SET clause) and ti_verify (verify(), also called by validate()
 *	  as the extension owner, and by administrators whose search_path may
 *	  name tenant-writable schemas) run SPI on tenant_iso.digests,
 *	  tenant_iso.tracked and tenant_iso.verify_runs: each pins
 *	  search_path = pg_catalog, pg_temp (ti_pin_search_path) for its whole
 *	  body, popped on return and by (sub)transaction abort on error, and
 *	  its SQL is schema-qualified, operators and casts included.
 *	- ti_bucket_digests and ti_bucket_rows, run by a peer's session (see
 *	  peer.c, which pins that session's search_path), and the scans of
 *	  verify_one read tables by direct heap access, with no name resolution.
 *	- untrack() and compact_digests() are SQL functions with
 *	  SET search_path = pg_catalog, pg_temp, so their operators resolve in
 *	  pg_catalog only (functions and operators are never looked up in
 *	  pg_temp).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "replication/logicalworker.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/varlena.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
#include "access/transam.h"
#include "catalog/pg_type_d.h"

#include "canonical.h"
#include "digest.h"
#include "elevated.h"
#include "kdf.h"
#include "catalog.h"
#include "tenant_iso.h"

char *
ti_qualified_name(Oid relid)
{
	char	   *nsp = get_namespace_name(get_rel_namespace(relid));
	char	   *rel = get_rel_name(relid);

	if (nsp == NULL || rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(nsp, rel);
}

static HTAB *
new_bucket_hash(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(BucketKey);
	ctl.entrysize = sizeof(BucketEntry);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("tenant_iso digests", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * A direct-mapped memo in front of the bucket hash: rows of a scan come in
 * heap order, tenants interleaved, and a dynahash lookup per row (hashing a
 * 68-byte key) would cost as much as hashing the row.
 */
#define ACC_MEMO 16384

typedef struct AccMemo
{
	HTAB	   *hash;
	BucketEntry *slot[ACC_MEMO];
} AccMemo;

static void
accumulate_memo(AccMemo *memo, HTAB *hash, const char *tenant, int32 bucket,
				const uint64 lanes[TI_LANES], int sign)
{
	uint32		i = ti_tenant_bucket_index(tenant, bucket) & (ACC_MEMO - 1);
	BucketEntry *e;

	if (memo->hash != hash)
	{
		memset(memo->slot, 0, sizeof(memo->slot));
		memo->hash = hash;
	}
	e = memo->slot[i];
	if (e == NULL || e->key.bucket != bucket || strcmp(e->key.tenant, tenant) != 0)
	{
		BucketKey	key;
		bool		found;

		memset(&key, 0, sizeof(key));
		strlcpy(key.tenant, tenant, NAMEDATALEN);
		key.bucket = bucket;
		e = hash_search(hash, &key, HASH_ENTER, &found);
		if (!found)
			memset(&e->digest, 0, sizeof(e->digest));
		memo->slot[i] = e;
	}
	ti_lthash_add(&e->digest, lanes, sign);
}

static void
accumulate(HTAB *hash, const char *tenant, int32 bucket, const uint64 lanes[TI_LANES], int sign)
{
	BucketKey	key;
	BucketEntry *e;
	bool		found;

	memset(&key, 0, sizeof(key));
	strlcpy(key.tenant, tenant, NAMEDATALEN);
	key.bucket = bucket;
	e = hash_search(hash, &key, HASH_ENTER, &found);
	if (!found)
		memset(&e->digest, 0, sizeof(e->digest));
	ti_lthash_add(&e->digest, lanes, sign);
}

static Oid ext_table(const char *name);

/*
 * Does the catalog know digest formats (0.2.0), or is it still the 0.1.0
 * one, before ALTER EXTENSION UPDATE?
 */
static bool
catalog_has_formats(void)
{
	return get_attnum(ext_table("tracked"), "format") != InvalidAttrNumber;
}

/*
 * The digest format of a tracked table (tenant_iso.tracked.format), or 0
 * when root is not tracked.  Sees the current transaction's own changes.
 */
static int
tracked_entry_format(Oid root)
{
	Relation	rel = table_open(ext_table("tracked"), AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	fatt = get_attnum(RelationGetRelid(rel), "format");
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	HeapTuple	tup;
	int			format = 0;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_tracked_rel, desc, &isnull);

		if (isnull || DatumGetObjectId(d) != root)
			continue;
		format = 1;
		if (fatt != InvalidAttrNumber)
		{
			d = heap_getattr(tup, fatt, desc, &isnull);
			if (!isnull)
				format = DatumGetInt16(d);
		}
		break;
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return format;
}

/* The format to hash a table in: its own, or 2 when it is not tracked. */
static pg_noinline int
tracked_format(Oid root)
{
	int			format = tracked_entry_format(root);

	return format ? format : 2;
}

static bool
is_tracked(Oid relid)
{
	return tracked_entry_format(relid) != 0;
}

static List *
leaves_of(Oid relid)
{
	List	   *all = find_all_inheritors(relid, AccessShareLock, NULL);
	List	   *leaves = NIL;
	ListCell   *lc;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return list_make1_oid(relid);
	foreach(lc, all)
		if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_RELATION)
			leaves = lappend_oid(leaves, lfirst_oid(lc));
	return leaves;
}

/* Scan one table (all leaves) and add (sign +1) or subtract its rows. */
static bool
tenant_wanted(List *tenants, const char *tenant)
{
	ListCell   *lc;

	if (tenants == NIL)
		return true;
	foreach(lc, tenants)
		if (strcmp((const char *) lfirst(lc), tenant) == 0)
			return true;
	return false;
}

static void
scan_into(HTAB *hash, Oid relid, Oid root, List *tenants, int nbuckets, int sign,
		  Snapshot snapshot, int format)
{
	ListCell   *lc;
	List	   *leaves = leaves_of(relid);

	foreach(lc, leaves)
	{
		Relation	rel = table_open(lfirst_oid(lc), AccessShareLock);
		RowHasher  *h = ti_make_hasher(rel, root, format);
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
		TupleTableSlot *slot = table_slot_create(rel, NULL);
		MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "tenant_iso row",
													 ALLOCSET_DEFAULT_SIZES);
		char		tenant[NAMEDATALEN];
		uint64		keyhash;
		uint64		lanes[TI_LANES];
		AccMemo    *memo = palloc0(sizeof(AccMemo));

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			CHECK_FOR_INTERRUPTS();
			if (tenants != NIL)
			{
				slot_getallattrs(slot);
				ti_slot_tenant(h, slot, tenant);
				if (!tenant_wanted(tenants, tenant))
				{
					MemoryContextSwitchTo(old);
					MemoryContextReset(rowcxt);
					continue;
				}
			}
			ti_hash_slot(h, slot, tenant, &keyhash, lanes);
			MemoryContextSwitchTo(old);
			accumulate_memo(memo, hash, tenant, (int32) (keyhash % nbuckets), lanes, sign);
			MemoryContextReset(rowcxt);
		}
		pfree(memo);
		MemoryContextDelete(rowcxt);
		ExecDropSingleTupleTableSlot(slot);
		table_endscan(scan);
		table_close(rel, AccessShareLock);
	}
}

HTAB *
ti_live_digests(Oid relid, List *tenants, int nbuckets)
{
	HTAB	   *hash = new_bucket_hash();
	int			enc = ti_pin_encoding();

	PG_TRY();
	{
		scan_into(hash, relid, relid, tenants, nbuckets, 1, GetActiveSnapshot(),
				  tracked_format(relid));
	}
	PG_FINALLY();
	{
		ti_unpin_encoding(enc);
	}
	PG_END_TRY();
	return hash;
}

static Oid
ext_table(const char *name)
{
	Oid			relid = ti_ext_relid(name);

	if (!OidIsValid(relid))
		elog(ERROR, "tenant_iso.%s is missing", name);
	return relid;
}

/* Append delta rows (relname, tenant, bucket, rows, lanes) for a hash. */
static void
write_deltas(const char *relname, HTAB *hash)
{
	Relation	rel = table_open(ext_table("digests"), RowExclusiveLock);
	HASH_SEQ_STATUS seq;
	BucketEntry *e;

	hash_seq_init(&seq, hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[Natts_digests];
		bool		nulls[Natts_digests] = {false, false, false, false, false};
		bytea	   *lanes = palloc(VARHDRSZ + TI_LANES_BYTES);
		HeapTuple	tup;
		ti_lthash	zero;

		memset(&zero, 0, sizeof(zero));
		if (ti_lthash_equal(&e->digest, &zero))
			continue;
		SET_VARSIZE(lanes, VARHDRSZ + TI_LANES_BYTES);
		ti_lthash_pack(&e->digest, (uint8 *) VARDATA(lanes));
		values[Anum_digests_relname - 1] = CStringGetTextDatum(relname);
		values[Anum_digests_tenant_id - 1] = CStringGetTextDatum(e->key.tenant);
		values[Anum_digests_bucket - 1] = Int32GetDatum(e->key.bucket);
		values[Anum_digests_nrows - 1] = Int64GetDatum(e->digest.rows);
		values[Anum_digests_lanes - 1] = PointerGetDatum(lanes);
		tup = heap_form_tuple(RelationGetDescr(rel), values, nulls);
		simple_heap_insert(rel, tup);
		heap_freetuple(tup);
	}
	table_close(rel, RowExclusiveLock);
}

static void
tuplestore_into(HTAB *hash, Tuplestorestate *ts, Relation rel, RowHasher *h, int sign)
{
	TupleTableSlot *slot;
	char		tenant[NAMEDATALEN];
	uint64		keyhash;
	uint64		lanes[TI_LANES];
	MemoryContext rowcxt;

	if (ts == NULL)
		return;
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "tenant_iso row", ALLOCSET_DEFAULT_SIZES);
	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);

		ti_hash_slot(h, slot, tenant, &keyhash, lanes);
		MemoryContextSwitchTo(old);
		accumulate(hash, tenant, (int32) (keyhash % TI_STORED_BUCKETS), lanes, sign);
		MemoryContextReset(rowcxt);
	}
	MemoryContextDelete(rowcxt);
	ExecDropSingleTupleTableSlot(slot);
}

static void
slot_into(HTAB *hash, TupleTableSlot *slot, RowHasher *h, int sign)
{
	char		tenant[NAMEDATALEN];
	uint64		keyhash;
	uint64		lanes[TI_LANES];

	if (slot == NULL || TTS_EMPTY(slot))
		return;
	ti_hash_slot(h, slot, tenant, &keyhash, lanes);
	accumulate(hash, tenant, (int32) (keyhash % TI_STORED_BUCKETS), lanes, sign);
}

/*
 * Hashers used by the digest trigger are cached per relation (with the
 * tracked table they report to), in their own memory context, and dropped
 * whenever a relcache invalidation touches a relation: building one costs
 * catalog lookups that would otherwise dominate a small statement.
 */
typedef struct HasherCacheEntry
{
	Oid			relid;			/* hash key: the trigger's relation */
	Oid			root;
	RowHasher  *hasher;
} HasherCacheEntry;

static MemoryContext hasher_cxt = NULL;
static HTAB *hasher_cache = NULL;
static bool hasher_cb_registered = false;

/*
 * Only a flag: the callback may run in the middle of building or using a
 * hasher (any lock acquisition processes invalidations), so the memory is
 * released at the next cached_hasher() call, never here.
 */
static bool hasher_cache_stale = false;

static void
hasher_cache_cb(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	HasherCacheEntry *e;

	if (hasher_cache == NULL || hasher_cache_stale)
		return;
	if (!OidIsValid(relid))
	{
		hasher_cache_stale = true;
		return;
	}
	/* the trigger's relation, or a tracked root (its key, its columns) */
	hash_seq_init(&seq, hasher_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->relid == relid || e->root == relid)
		{
			hasher_cache_stale = true;
			hash_seq_term(&seq);
			return;
		}
	}
}

static RowHasher *
cached_hasher(Relation rel, const char *relname, Oid *root_out)
{
	Oid			relid = RelationGetRelid(rel);
	HasherCacheEntry *e;
	bool		found;

	if (!hasher_cb_registered)
	{
		CacheRegisterRelcacheCallback(hasher_cache_cb, (Datum) 0);
		hasher_cb_registered = true;
	}
	if (hasher_cxt == NULL)
		hasher_cxt = AllocSetContextCreate(CacheMemoryContext, "tenant_iso hashers",
										   ALLOCSET_SMALL_SIZES);
	if (hasher_cache_stale)
	{
		MemoryContextReset(hasher_cxt);
		hasher_cache = NULL;
		hasher_cache_stale = false;
	}
	if (hasher_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(HasherCacheEntry);
		ctl.hcxt = hasher_cxt;
		hasher_cache = hash_create("tenant_iso hashers", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(hasher_cache, &relid, HASH_FIND, NULL);
	if (e == NULL)
	{
		Oid			root;
		RowHasher  *h;
		MemoryContext old;
		int			format;

		root = RangeVarGetRelid(makeRangeVarFromNameList(ti_qualified_name_list(relname)),
								NoLock, true);
		if (!OidIsValid(root))
			root = relid;
		format = tracked_format(root);
		old = MemoryContextSwitchTo(hasher_cxt);
		h = ti_make_hasher(rel, root, format);
		ti_hasher_detach(h);
		MemoryContextSwitchTo(old);
		e = hash_search(hasher_cache, &relid, HASH_ENTER, &found);
		e->root = root;
		e->hasher = h;
	}
	*root_out = e->root;
	return e->hasher;
}

/*
 * Record in tenant_iso.tracked that a write went untracked (no master key).
 * Elevated path (the trigger may run as any writer): search_path pinned,
 * every name qualified.  Concurrent writers wait on the first one's row
 * lock only once; later ones find stale_since set and update nothing.
 */
static void
mark_stale(Oid root)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(root)};
	Oid			tracked = ext_table("tracked");
	Oid			save_user;
	int			save_sec;
	int			nest;

	/* as the owner of tenant_iso.tracked: the writer may not update it */
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ti_rel_owner(tracked),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	nest = ti_pin_search_path();
	SPI_connect();
	if (SPI_execute_with_args("UPDATE tenant_iso.tracked SET stale_since = pg_catalog.now() "
							  "WHERE rel::pg_catalog.oid OPERATOR(pg_catalog.=) $1 AND stale_since IS NULL",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark digests stale");
	SPI_finish();
	ti_unpin_search_path(nest);
	SetUserIdAndSecContext(save_user, save_sec);
	ereport(WARNING,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
			 errmsg("the digests of tracked table \"%s\" are stale: the master key is not available",
					get_rel_name(root)),
			 errhint("Fix tenant_iso.master_key_command, then run tenant_iso.rebuild_digests().")));
}

/*
 * The digest trigger: AFTER INSERT/UPDATE/DELETE FOR EACH STATEMENT with
 * transition tables, and BEFORE TRUNCATE.  Argument 0: the tracked table's
 * qualified name; argument 1: its OID at track() time is not used (names
 * travel between nodes, OIDs do not).
 */
/*
 * One row changed by a logical replication worker: its old image out, its
 * new one in (AFTER ROW: tg_trigslot is the old row of an UPDATE or DELETE
 * and the new row of an INSERT; tg_newslot the new row of an UPDATE).
 */
static Datum
digest_row(TriggerData *td, const char *relname)
{
	Relation	rel = td->tg_relation;
	HTAB	   *hash = new_bucket_hash();
	Oid			root;
	RowHasher  *h;
	uint8		probe[TI_KEY_LEN];
	int			enc = ti_pin_encoding();
	volatile bool stale = false;

	PG_TRY();
	{
		h = cached_hasher(rel, relname, &root);
		if (ti_hasher_format(h) >= 2 && !ti_try_derive_key("digest", probe))
		{
			mark_stale(root);
			stale = true;
		}
		else
		{
			ti_hasher_check_key(h, probe);
			if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
				slot_into(hash, td->tg_trigslot, h, 1);
			else
			{
				slot_into(hash, td->tg_trigslot, h, -1);
				if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
					slot_into(hash, td->tg_newslot, h, 1);
			}
		}
		ti_wipe(probe, sizeof(probe));
	}
	PG_FINALLY();
	{
		ti_unpin_encoding(enc);
	}
	PG_END_TRY();
	if (!stale)
		write_deltas(relname, hash);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(ti_digest_trigger);
Datum
ti_digest_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	const char *relname;
	HTAB	   *hash;
	int			enc;
	volatile bool stale = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || td->tg_trigger->tgnargs < 1 ||
		(TRIGGER_FIRED_FOR_ROW(td->tg_event) && !TRIGGER_FIRED_AFTER(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_digest_trigger() must be a trigger created by tenant_iso.track()")));
	rel = td->tg_relation;
	relname = td->tg_trigger->tgargs[0];

	/*
	 * The row trigger tenant_iso_digest_row (enabled ALWAYS on a logical
	 * subscriber) counts the changes the apply worker makes, which fires no
	 * statement trigger; every other write counts through the statement
	 * triggers, so the row trigger does nothing outside a logical
	 * replication worker.
	 */
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
	{
		if (!IsLogicalWorker())
			return PointerGetDatum(NULL);
		return digest_row(td, relname);
	}

	hash = new_bucket_hash();
	enc = ti_pin_encoding();
	PG_TRY();
	{
		if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		{
			Oid			root = RangeVarGetRelid(makeRangeVarFromNameList(ti_qualified_name_list(relname)),
												NoLock, true);

			if (!OidIsValid(root))
				root = RelationGetRelid(rel);
			/* each truncated partition's own trigger subtracts its rows */
			if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
			{
				/*
				 * TRUNCATE holds its exclusive lock now, but its snapshot may
				 * predate rows committed while it waited for that lock: take
				 * a fresh one, which sees every row about to go.
				 */
				Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());

				scan_into(hash, RelationGetRelid(rel), root, NULL, TI_STORED_BUCKETS, -1, snap,
						  tracked_format(root));
				UnregisterSnapshot(snap);
			}
		}
		else
		{
			Oid			root;
			RowHasher  *h = cached_hasher(rel, relname, &root);
			uint8		probe[TI_KEY_LEN];

			if (ti_hasher_format(h) >= 2 && !ti_try_derive_key("digest", probe))
			{
				/*
				 * Without the master key no format-2 lanes: keep the table
				 * writable, and mark its digests stale so that verify()
				 * fails visibly until rebuild_digests().
				 */
				mark_stale(root);
				stale = true;
			}
			else
			{
				/* a cached hasher keeps PRFs: drop them if the master key changed */
				ti_hasher_check_key(h, probe);
				tuplestore_into(hash, td->tg_oldtable, rel, h, -1);
				tuplestore_into(hash, td->tg_newtable, rel, h, 1);
			}
			ti_wipe(probe, sizeof(probe));
		}
	}
	PG_FINALLY();
	{
		ti_unpin_encoding(enc);
	}
	PG_END_TRY();
	if (!stale)
		write_deltas(relname, hash);
	return PointerGetDatum(NULL);
}

/*
 * Replace the stored digests of a table with ones built from its rows, in
 * the current format (2), and record when and why in tenant_iso.tracked.
 * Elevated path (called from SECURITY DEFINER SQL and from the utility
 * hook): search_path pinned, every name qualified.
 */
static int64
rebuild_digests(Oid relid, const char *reason)
{
	char	   *relname = ti_qualified_name(relid);
	HTAB	   *hash;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, OIDOID};
	Datum		values[3];
	char		nulls[3] = {' ', reason ? ' ' : 'n', ' '};
	int			nest;
	int			enc;
	/* the 0.1.0 catalog (before ALTER EXTENSION UPDATE) knows only format 1 */
	int			format = catalog_has_formats() ? 2 : 1;

	nest = ti_pin_search_path();
	SPI_connect();
	values[0] = CStringGetTextDatum(relname);
	values[1] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	values[2] = ObjectIdGetDatum(relid);
	if (SPI_execute_with_args("DELETE FROM tenant_iso.digests WHERE relname OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not clear digests");
	if (format >= 2 &&
		SPI_execute_with_args("UPDATE tenant_iso.tracked SET format = 2, rebuilt_at = pg_catalog.now(), "
							  "rebuilt_reason = $2, stale_since = NULL WHERE rel::pg_catalog.oid OPERATOR(pg_catalog.=) $3",
							  3, argtypes, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the rebuild");
	SPI_finish();
	ti_unpin_search_path(nest);
	/* cached hashers of this table (format 1) must go */
	CacheInvalidateRelcacheByRelid(relid);
	CommandCounterIncrement();
	hash = new_bucket_hash();
	enc = ti_pin_encoding();
	PG_TRY();
	{
		/* the statement's snapshot, but seeing what it did so far (a rewrite) */
		PushCopiedSnapshot(GetActiveSnapshot());
		UpdateActiveSnapshotCommandId();
		scan_into(hash, relid, relid, NULL, TI_STORED_BUCKETS, 1, GetActiveSnapshot(), format);
		PopActiveSnapshot();
	}
	PG_FINALLY();
	{
		ti_unpin_encoding(enc);
	}
	PG_END_TRY();
	write_deltas(relname, hash);
	return (int64) hash_get_num_entries(hash);
}

/* _rebuild_digests(rel regclass [, reason text]) */
PG_FUNCTION_INFO_V1(ti_rebuild_digests);
Datum
ti_rebuild_digests(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *reason = (PG_NARGS() > 1 && !PG_ARGISNULL(1)) ?
		text_to_cstring(PG_GETARG_TEXT_PP(1)) : NULL;

	PG_RETURN_INT64(rebuild_digests(relid, reason));
}

/*
 * Called by the utility hook after ALTER TABLE: when it changed what the
 * rows of a tracked table encode to, rebuild its digests in the same
 * transaction, so that the table stays writable and its digests correct.
 * Format 2 ignores NULL columns, so ADD COLUMN without any default (its
 * own or its domain's) needs nothing.
 */
void
ti_digest_after_alter(AlterTableStmt *stmt)
{
	Oid			relid;
	ListCell   *lc;
	const char *reason = NULL;

	if (stmt->objtype != OBJECT_TABLE || stmt->relation == NULL)
		return;
	if (!OidIsValid(ti_ext_relid("tracked")))
		return;
	if (!catalog_has_formats())
		return;					/* 0.1.0 catalog: ALTER EXTENSION UPDATE first */
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid) || !is_tracked(relid))
		return;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		switch (cmd->subtype)
		{
			case AT_DropColumn:
				reason = "ALTER TABLE ... DROP COLUMN";
				break;
			case AT_AlterColumnType:
				reason = "ALTER TABLE ... ALTER COLUMN TYPE";
				break;
			case AT_DropExpression:
				reason = "ALTER TABLE ... DROP EXPRESSION";
				break;
			case AT_AddColumn:
				{
					ColumnDef  *def = (ColumnDef *) cmd->def;
					AttrNumber	att = def ? get_attnum(relid, def->colname) : InvalidAttrNumber;
					HeapTuple	tup;
					bool		filled = true;

					if (att == InvalidAttrNumber)
						break;
					tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(att));
					if (HeapTupleIsValid(tup))
					{
						Form_pg_attribute a = (Form_pg_attribute) GETSTRUCT(tup);

						filled = a->atthasmissing || a->atthasdef || a->attgenerated;
						ReleaseSysCache(tup);
					}
					/* format 1 hashes every column, NULL or not */
					if (filled || tracked_format(relid) < 2)
						reason = "ALTER TABLE ... ADD COLUMN";
					break;
				}
			default:
				break;
		}
	}
	if (reason == NULL)
		return;
	CommandCounterIncrement();
	(void) rebuild_digests(relid, reason);
	ereport(NOTICE,
			(errmsg("rebuilt the digests of tracked table \"%s\" after %s",
					get_rel_name(relid), reason),
			 errdetail("verify() compares with digests rebuilt from the rows as they are now.")));
}

/* Aggregate support: lane-wise sum of packed lanes. */
PG_FUNCTION_INFO_V1(ti_lanes_sum);
Datum
ti_lanes_sum(PG_FUNCTION_ARGS)
{
	bytea	   *state;
	bytea	   *v;
	ti_lthash	d;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P(PG_GETARG_BYTEA_P(0));
	}
	v = PG_GETARG_BYTEA_PP(1);
	if (VARSIZE_ANY_EXHDR(v) != TI_LANES_BYTES)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("malformed digest lanes")));
	memset(&d, 0, sizeof(d));
	if (!PG_ARGISNULL(0))
		ti_lthash_unpack_add(&d, (uint8 *) VARDATA_ANY(PG_GETARG_BYTEA_PP(0)), 0);
	ti_lthash_unpack_add(&d, (uint8 *) VARDATA_ANY(v), 0);
	state = palloc(VARHDRSZ + TI_LANES_BYTES);
	SET_VARSIZE(state, VARHDRSZ + TI_LANES_BYTES);
	ti_lthash_pack(&d, (uint8 *) VARDATA(state));
	PG_RETURN_BYTEA_P(state);
}

/* ---------------------------------------------------------------------
 * verify()
 * --------------------------------------------------------------------- */

typedef struct TenantDigest
{
	char		tenant[NAMEDATALEN];
	ti_lthash	stored;
	ti_lthash	live;
} TenantDigest;

static HTAB *
new_tenant_hash(void)
{
	HASHCTL		ctl;

	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(TenantDigest);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("tenant_iso verify", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

static TenantDigest *
tenant_entry(HTAB *h, const char *tenant)
{
	bool		found;
	char		key[NAMEDATALEN];
	TenantDigest *e;

	memset(key, 0, sizeof(key));
	strlcpy(key, tenant, NAMEDATALEN);
	e = hash_search(h, key, HASH_ENTER, &found);
	if (!found)
	{
		memset(&e->stored, 0, sizeof(e->stored));
		memset(&e->live, 0, sizeof(e->live));
	}
	return e;
}

/*
 * Add the stored digests of one tracked table (all tenants, or one) into
 * tenants, read with a direct heap scan under the active snapshot.
 */
static void
stored_into(HTAB *tenants, const char *relname, const char *only_tenant)
{
	Relation	drel = table_open(ext_table("digests"), AccessShareLock);
	TableScanDesc scan = table_beginscan(drel, GetActiveSnapshot(), 0, NULL);
	TupleDesc	dd = RelationGetDescr(drel);
	HeapTuple	tup;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		char	   *r = TextDatumGetCString(heap_getattr(tup, Anum_digests_relname, dd, &isnull));
		char	   *tn;
		bytea	   *lanes;

		if (strcmp(r, relname) != 0)
			continue;
		tn = TextDatumGetCString(heap_getattr(tup, Anum_digests_tenant_id, dd, &isnull));
		if (only_tenant && strcmp(tn, only_tenant) != 0)
			continue;
		lanes = DatumGetByteaPP(heap_getattr(tup, Anum_digests_lanes, dd, &isnull));
		if (isnull || VARSIZE_ANY_EXHDR(lanes) != TI_LANES_BYTES)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("malformed stored digest for %s", relname)));
		ti_lthash_unpack_add(&tenant_entry(tenants, tn)->stored, (uint8 *) VARDATA_ANY(lanes),
							 DatumGetInt64(heap_getattr(tup, Anum_digests_nrows, dd, &isnull)));
	}
	table_endscan(scan);
	table_close(drel, AccessShareLock);
}

static void
verify_one(Tuplestorestate *ts, TupleDesc tupdesc, Oid relid, const char *relname,
		   const char *only_tenant, List **runs)
{
	HTAB	   *live = ti_live_digests(relid, only_tenant ? list_make1((char *) only_tenant) : NIL,
										   TI_STORED_BUCKETS);
	HTAB	   *tenants = new_tenant_hash();
	HASH_SEQ_STATUS seq;
	BucketEntry *b;
	TenantDigest *t;

	hash_seq_init(&seq, live);
	while ((b = hash_seq_search(&seq)) != NULL)
		ti_lthash_merge(&tenant_entry(tenants, b->key.tenant)->live, &b->digest, 1);
	stored_into(tenants, relname, only_tenant);

	hash_seq_init(&seq, tenants);
	while ((t = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		char		exp[33],
					act[33];
		bool		ok = ti_lthash_equal(&t->stored, &t->live);

		if (t->stored.rows == 0 && t->live.rows == 0 && ok)
			continue;			/* a tenant whose rows all went away */
		ti_lthash_fingerprint(&t->stored, exp);
		ti_lthash_fingerprint(&t->live, act);
		values[0] = ObjectIdGetDatum(relid);
		values[1] = CStringGetTextDatum(t->tenant);
		values[2] = Int64GetDatum(t->live.rows);
		values[3] = BoolGetDatum(ok);
		values[4] = CStringGetTextDatum(psprintf("%lld:%s", (long long) t->stored.rows, exp));
		values[5] = CStringGetTextDatum(psprintf("%lld:%s", (long long) t->live.rows, act));
		tuplestore_putvalues(ts, tupdesc, values, nulls);
		*runs = lappend(*runs, list_make3(makeString(pstrdup(relname)),
										  makeString(pstrdup(t->tenant)),
										  makeInteger(ok ? 1 : 0)));
	}
}

PG_FUNCTION_INFO_V1(ti_verify);
Datum
ti_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			only_rel = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	char	   *only_tenant = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	List	   *rels = NIL;
	List	   *runs = NIL;
	ListCell   *lc;
	uint64		i;
	MemoryContext outer;
	int			nestlevel;

	InitMaterializedSRF(fcinfo, 0);
	nestlevel = ti_pin_search_path();

	/* one snapshot for the tables and the stored digests */
	PushActiveSnapshot(GetTransactionSnapshot());
	outer = CurrentMemoryContext;
	SPI_connect();
	if (SPI_execute(catalog_has_formats() ?
					"SELECT t.rel::pg_catalog.oid, t.relname, t.format, t.rebuilt_at::pg_catalog.text, t.rebuilt_reason, "
					"t.rebuilt_at OPERATOR(pg_catalog.>) coalesce((SELECT pg_catalog.max(v.verified_at) FROM tenant_iso.verify_runs v "
					"WHERE v.relname OPERATOR(pg_catalog.=) t.relname), '-infinity'::pg_catalog.timestamptz), "
					"t.stale_since::pg_catalog.text "
					"FROM tenant_iso.tracked t ORDER BY t.relname" :
	/* the 0.1.0 catalog, before ALTER EXTENSION UPDATE */
					"SELECT t.rel::pg_catalog.oid, t.relname, 1::pg_catalog.int2, NULL::pg_catalog.text, NULL::pg_catalog.text, "
					"NULL::pg_catalog.bool, NULL::pg_catalog.text FROM tenant_iso.tracked t ORDER BY t.relname",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read tracked tables");
	/* SPI leaves its own context current; the list must outlive it */
	MemoryContextSwitchTo(outer);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	rd = SPI_tuptable->tupdesc;
		Oid			relid = DatumGetObjectId(SPI_getbinval(row, rd, 1, &isnull));
		char	   *name = SPI_getvalue(row, rd, 2);
		int			format = DatumGetInt16(SPI_getbinval(row, rd, 3, &isnull));
		bool		fresh_rebuild;

		if (OidIsValid(only_rel) && relid != only_rel)
			continue;
		if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for table %s", name)));
		rels = lappend(rels, list_make2(makeInteger((int) relid), makeString(name)));
		if (format < 2)
			ereport(NOTICE,
					(errmsg("tracked table %s uses digest format 1 (0.1.0, unkeyed)", name),
					 errhint("Run tenant_iso.rebuild_digests() on every copy to move it to format 2.")));
		fresh_rebuild = DatumGetBool(SPI_getbinval(row, rd, 6, &isnull));
		if (!isnull && fresh_rebuild && SPI_getvalue(row, rd, 5) != NULL)
			ereport(NOTICE,
					(errmsg("the digests of tracked table %s were rebuilt at %s after %s",
							name, SPI_getvalue(row, rd, 4), SPI_getvalue(row, rd, 5)),
					 errdetail("They match the rows as they were then; changes made to this copy before the rebuild are no longer detectable.")));
		if (SPI_getvalue(row, rd, 7) != NULL)
			ereport(WARNING,
					(errmsg("the digests of tracked table %s are stale since %s: writes went untracked while the master key was not available",
							name, SPI_getvalue(row, rd, 7)),
					 errhint("Check the copies by other means, then run tenant_iso.rebuild_digests().")));
	}
	SPI_finish();
	if (OidIsValid(only_rel) && rels == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not tracked", get_rel_name(only_rel)),
				 errhint("Call tenant_iso.track() first.")));

	foreach(lc, rels)
	{
		List	   *pair = lfirst(lc);

		verify_one(rsinfo->setResult, rsinfo->setDesc, (Oid) intVal(linitial(pair)),
				   strVal(lsecond(pair)), only_tenant, &runs);
	}
	PopActiveSnapshot();

	/* record the runs for validate(); a hot standby cannot, and need not */
	if (!RecoveryInProgress() && !XactReadOnly && runs != NIL)
	{
		Oid			argtypes[3] = {TEXTOID, TEXTOID, BOOLOID};

		SPI_connect();
		foreach(lc, runs)
		{
			List	   *r = lfirst(lc);
			Datum		values[3];

			values[0] = CStringGetTextDatum(strVal(linitial(r)));
			values[1] = CStringGetTextDatum(strVal(lsecond(r)));
			values[2] = BoolGetDatum(intVal(lthird(r)) != 0);
			SPI_execute_with_args("INSERT INTO tenant_iso.verify_runs (relname, tenant_id, ok) VALUES ($1, $2, $3)",
								  3, argtypes, values, NULL, false, 0);
		}
		SPI_finish();
	}
	ti_unpin_search_path(nestlevel);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Live bucket digests and rows, for diff_peer() (called on both sides)
 * --------------------------------------------------------------------- */

static List *
text_array_list(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	List	   *l = NIL;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		l = lappend(l, nulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]));
	return l;
}

/*
 * The relation a peer names, refused unless it is tracked and the caller
 * may SELECT from it: row hashes and fingerprints are a view of its rows.
 */
static Oid
relid_from_name(text *name)
{
	Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList(textToQualifiedNameList(name)),
										 AccessShareLock, false);

	ti_digest_check_access(relid, !ti_peer_local_call);
	return relid;
}

/* diff_peer()'s own local call of _bucket_rows(): a subscriber need not track */
bool		ti_peer_local_call = false;

void
ti_digest_check_access(Oid relid, bool tracked)
{
	if (tracked && !is_tracked(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not tracked", get_rel_name(relid)),
				 errhint("Call tenant_iso.track() first.")));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid))));
}

/*
 * Hash the row at (leaf, tid) as a peer would: its tenant and the 16-byte
 * row hash (hex) that _bucket_rows() reports.  False if there is no such row
 * visible to this command.
 */
bool
ti_row_hash_at(Oid root, Oid leaf, ItemPointer tid, char *tenant, char *hex, int32 *bucket)
{
	Relation	rel = table_open(leaf, AccessShareLock);
	RowHasher  *h = ti_make_hasher(rel, root, tracked_format(root));
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	volatile bool found = false;
	int			enc = ti_pin_encoding();

	PG_TRY();
	{
		found = table_tuple_fetch_row_version(rel, tid, snap, slot);
		if (found)
		{
			uint64		keyhash;
			uint64		lanes[TI_LANES];
			static const char hexd[] = "0123456789abcdef";
			uint8	   *b = (uint8 *) lanes;
			int			i;

			ti_hash_slot(h, slot, tenant, &keyhash, lanes);
			*bucket = (int32) (keyhash % TI_DIFF_BUCKETS);
			for (i = 0; i < 16; i++)
			{
				hex[2 * i] = hexd[b[i] >> 4];
				hex[2 * i + 1] = hexd[b[i] & 15];
			}
			hex[32] = '\0';
		}
	}
	PG_FINALLY();
	{
		ti_unpin_encoding(enc);
	}
	PG_END_TRY();
	UnregisterSnapshot(snap);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
	return found;
}

PG_FUNCTION_INFO_V1(ti_bucket_digests);
Datum
ti_bucket_digests(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid = relid_from_name(PG_GETARG_TEXT_PP(0));
	List	   *tenants = PG_ARGISNULL(1) ? NIL : text_array_list(PG_GETARG_ARRAYTYPE_P(1));
	int32		nb = PG_GETARG_INT32(2);
	HTAB	   *h;
	HASH_SEQ_STATUS seq;
	BucketEntry *b;

	if (nb < 1 || nb > 1 << 20)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("bucket count out of range")));
	InitMaterializedSRF(fcinfo, 0);
	h = ti_live_digests(relid, tenants, nb);
	hash_seq_init(&seq, h);
	while ((b = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		char		fp[33];

		ti_lthash_fingerprint(&b->digest, fp);
		values[0] = CStringGetTextDatum(b->key.tenant);
		values[1] = Int32GetDatum(b->key.bucket);
		values[2] = Int64GetDatum(b->digest.rows);
		values[3] = CStringGetTextDatum(fp);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* (tenant, bucket, leaf oid, ctid, row hash) of the rows in some buckets */
PG_FUNCTION_INFO_V1(ti_bucket_rows);
Datum
ti_bucket_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid = relid_from_name(PG_GETARG_TEXT_PP(0));
	List	   *tenants = text_array_list(PG_GETARG_ARRAYTYPE_P(1));
	int32		nb = PG_GETARG_INT32(2);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(3);
	Datum	   *elems;
	bool	   *enulls;
	int			nelems;
	HTAB	   *want;
	ListCell   *tc;
	List	   *leaves;
	ListCell   *lc;
	int			enc;
	int			i;
	int			format;

	if (nb < 1 || nb > 1 << 20)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("bucket count out of range")));
	/* (tenants[i], buckets[i]) are the wanted pairs */
	deconstruct_array(arr, INT4OID, 4, true, TYPALIGN_INT, &elems, &enulls, &nelems);
	if (nelems != list_length(tenants))
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("tenants and buckets differ in length")));
	want = new_bucket_hash();
	i = 0;
	foreach(tc, tenants)
	{
		uint64		zero[TI_LANES] = {0};

		if (!enulls[i])
			accumulate(want, (const char *) lfirst(tc), DatumGetInt32(elems[i]), zero, 1);
		i++;
	}

	InitMaterializedSRF(fcinfo, 0);
	leaves = leaves_of(relid);
	format = tracked_format(relid);
	enc = ti_pin_encoding();
	PG_TRY();
	{
		foreach(lc, leaves)
		{
			Relation	rel = table_open(lfirst_oid(lc), AccessShareLock);
			RowHasher  *h = ti_make_hasher(rel, relid, format);
			TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
			TupleTableSlot *slot = table_slot_create(rel, NULL);
			char		tenant[NAMEDATALEN];
			uint64		keyhash;
			uint64		lanes[TI_LANES];
			MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "tenant_iso row",
														 ALLOCSET_DEFAULT_SIZES);

			while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
			{
				int32		bucket;
				Datum		values[5];
				bool		nulls[5] = {false, false, false, false, false};
				bytea	   *rh;
				ItemPointerData tid;
				BucketKey	bk;
				MemoryContext old;

				CHECK_FOR_INTERRUPTS();
				/* the tuplestore copies what it keeps: per-row memory goes */
				MemoryContextReset(rowcxt);
				old = MemoryContextSwitchTo(rowcxt);
				slot_getallattrs(slot);
				ti_slot_tenant(h, slot, tenant);
				if (!tenant_wanted(tenants, tenant))
				{
					MemoryContextSwitchTo(old);
					continue;
				}
				ti_hash_slot(h, slot, tenant, &keyhash, lanes);
				bucket = (int32) (keyhash % nb);
				memset(&bk, 0, sizeof(bk));
				strlcpy(bk.tenant, tenant, NAMEDATALEN);
				bk.bucket = bucket;
				if (hash_search(want, &bk, HASH_FIND, NULL) == NULL)
				{
					MemoryContextSwitchTo(old);
					continue;
				}
				rh = palloc(VARHDRSZ + 16);
				SET_VARSIZE(rh, VARHDRSZ + 16);
				memcpy(VARDATA(rh), lanes, 16);
				ItemPointerCopy(&slot->tts_tid, &tid);
				values[0] = CStringGetTextDatum(tenant);
				values[1] = Int32GetDatum(bucket);
				values[2] = ObjectIdGetDatum(RelationGetRelid(rel));
				values[3] = PointerGetDatum(&tid);
				values[4] = PointerGetDatum(rh);
				MemoryContextSwitchTo(old);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
			MemoryContextDelete(rowcxt);
			ExecDropSingleTupleTableSlot(slot);
			table_endscan(scan);
			table_close(rel, AccessShareLock);
		}
	}
	PG_FINALLY();
	{
		ti_unpin_encoding(enc);
	}
	PG_END_TRY();
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Stored digests per tenant, and a tenant's digests rebuilt (the monitor)
 * --------------------------------------------------------------------- */

/*
 * _stored_digests(relname text, tenants text[]): "rows:fingerprint" of the
 * stored digests of each tenant of a tracked table (the "expected" column
 * of verify()), without reading its rows.  What the integrity monitor
 * compares between copies: kilobytes, never rows.
 */
PG_FUNCTION_INFO_V1(ti_stored_digests);
Datum
ti_stored_digests(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid = relid_from_name(PG_GETARG_TEXT_PP(0));
	char	   *relname = ti_qualified_name(relid);
	List	   *tenants = PG_ARGISNULL(1) ? NIL : text_array_list(PG_GETARG_ARRAYTYPE_P(1));
	HTAB	   *h = new_tenant_hash();
	HASH_SEQ_STATUS seq;
	TenantDigest *t;

	InitMaterializedSRF(fcinfo, 0);
	PushActiveSnapshot(GetTransactionSnapshot());
	stored_into(h, relname, list_length(tenants) == 1 ? linitial(tenants) : NULL);
	PopActiveSnapshot();
	hash_seq_init(&seq, h);
	while ((t = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};
		char		fp[33];

		if (tenants != NIL && !tenant_wanted(tenants, t->tenant))
			continue;
		if (t->stored.rows == 0)
		{
			ti_lthash	zero;

			memset(&zero, 0, sizeof(zero));
			if (ti_lthash_equal(&t->stored, &zero))
				continue;		/* a tenant whose rows all went away */
		}
		ti_lthash_fingerprint(&t->stored, fp);
		values[0] = CStringGetTextDatum(t->tenant);
		values[1] = CStringGetTextDatum(psprintf("%lld:%s", (long long) t->stored.rows, fp));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * _rebuild_tenant_digests(rel regclass, tenant text): replace one tenant's
 * stored digests of a tracked table with ones computed from its rows.  The
 * monitor calls it only after a repair whose rows it has checked against a
 * healthy copy's digests; superuser only.
 */
PG_FUNCTION_INFO_V1(ti_rebuild_tenant_digests);
Datum
ti_rebuild_tenant_digests(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *tenant = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *relname;
	HTAB	   *hash;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	int			nest;
	int			enc;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may rebuild a tenant's digests")));
	if (!is_tracked(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not tracked", get_rel_name(relid))));
	relname = ti_qualified_name(relid);
	nest = ti_pin_search_path();
	SPI_connect();
	values[0] = CStringGetTextDatum(relname);
	values[1] = CStringGetTextDatum(tenant);
	if (SPI_execute_with_args("DELETE FROM tenant_iso.digests WHERE relname OPERATOR(pg_catalog.=) $1 "
							  "AND tenant_id OPERATOR(pg_catalog.=) $2",
							  2, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not clear digests");
	SPI_finish();
	ti_unpin_search_path(nest);
	CommandCounterIncrement();
	hash = new_bucket_hash();
	enc = ti_pin_encoding();
	PG_TRY();
	{
		PushCopiedSnapshot(GetActiveSnapshot());
		UpdateActiveSnapshotCommandId();
		scan_into(hash, relid, relid, list_make1(tenant), TI_STORED_BUCKETS, 1, GetActiveSnapshot(),
				  tracked_format(relid));
		PopActiveSnapshot();
	}
	PG_FINALLY();
	{
		ti_unpin_encoding(enc);
	}
	PG_END_TRY();
	write_deltas(relname, hash);
	PG_RETURN_INT64((int64) hash_get_num_entries(hash));
}
