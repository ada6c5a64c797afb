/*
 * src/digest.c
 *	  Replication integrity: canonical row hashes, additive per-tenant
 *	  digests kept by statement-level triggers, verify(), compaction, and
 *	  the live bucket digests that diff_peer() compares.
 *
 * Row encoding: every non-dropped column in the tracked table's column
 * order (a partition with another layout is mapped by name), each as one flag
 * byte (0 = NULL), a 4-byte big-endian length and the value: string types
 * bytea and numeric as their raw bytes (database encoding), pass-by-value types as
 * big-endian bytes, uuid as its 16 bytes, anything else through its binary
 * send function, with client_encoding pinned to the database encoding while
 * hashing, so that nothing depends on session settings.  Its hash gives
 * the lanes (BLAKE2b-512, lthash.c); an FNV-1a hash of the primary key's
 * encoding picks the bucket.
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
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/varlena.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
#include "access/transam.h"
#include "catalog/pg_type_d.h"

#include "digest.h"
#include "elevated.h"
#include "tenant_iso.h"

/* How a column's value is encoded (the same on every node). */
#define ENC_SEND	's'			/* binary send function */
#define ENC_VARLENA 'v'			/* raw bytes: string types, bytea, numeric
								 * (whose stored form is canonical) */
#define ENC_BYVAL	'b'			/* pass-by-value: big-endian bytes */
#define ENC_UUID	'u'			/* 16 raw bytes */
#define ENC_OUTPUT	'o'			/* text output: enums, composites and arrays
								 * of user-defined types, whose binary forms
								 * carry node-local OIDs */

typedef struct RowHasher
{
	TupleDesc	desc;
	int			natts;
	int			ncols;			/* columns hashed, in the root's order */
	AttrNumber *order;			/* their attnums in desc */
	FmgrInfo   *send;
	char	   *mode;			/* ENC_* per column */
	int			nkeys;
	AttrNumber *keys;
	AttrNumber	tenant_att;		/* 0: not protected, tenant '' */
	FmgrInfo	tenant_out;
	StringInfoData buf;
	StringInfoData kbuf;
} RowHasher;

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

/*
 * Would the binary form of this type carry OIDs that differ between nodes?
 * Enums (stored as OIDs), composites and arrays of user-defined types.
 */
static bool
has_local_oids(Oid type)
{
	char		typtype = get_typtype(type);
	Oid			elem;

	if (typtype == TYPTYPE_ENUM || typtype == TYPTYPE_COMPOSITE)
		return true;
	elem = get_element_type(type);
	if (OidIsValid(elem))
	{
		elem = getBaseType(elem);
		return elem >= FirstNormalObjectId || has_local_oids(elem);
	}
	return false;
}

static AttrNumber
attnum_by_name(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0)
			return a->attnum;
	}
	return InvalidAttrNumber;
}

/*
 * Build a hasher for a relation.  Keys and the tenant column are found by
 * name through root (the tracked table), so that a partition with another
 * physical layout hashes the same.
 */
static RowHasher *
make_hasher(Relation rel, Oid root)
{
	RowHasher  *h = palloc0(sizeof(RowHasher));
	TupleDesc	desc = RelationGetDescr(rel);
	Relation	rootrel = (root == RelationGetRelid(rel)) ? rel : table_open(root, AccessShareLock);
	Oid			pk = RelationGetPrimaryKeyIndex(rootrel);
	const char *tcol = ti_protected_column(root);
	int			i;

	h->desc = desc;
	h->natts = desc->natts;
	h->send = palloc0(sizeof(FmgrInfo) * desc->natts);
	h->mode = palloc0(sizeof(char) * desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);
		Oid			base = getBaseType(a->atttypid);
		Oid			sendfn;
		bool		isvarlena;
		char		category;
		bool		preferred;

		if (a->attisdropped)
			continue;
		get_type_category_preferred(base, &category, &preferred);
		if ((category == TYPCATEGORY_STRING && a->attlen == -1) || base == BYTEAOID ||
			base == NUMERICOID)
			h->mode[i] = ENC_VARLENA;
		else if (has_local_oids(base))
		{
			Oid			outfn;

			h->mode[i] = ENC_OUTPUT;
			getTypeOutputInfo(a->atttypid, &outfn, &isvarlena);
			fmgr_info(outfn, &h->send[i]);
		}
		else if (a->attbyval && (a->attlen == 1 || a->attlen == 2 || a->attlen == 4 || a->attlen == 8))
			h->mode[i] = ENC_BYVAL;
		else if (base == UUIDOID)
			h->mode[i] = ENC_UUID;
		else
		{
			h->mode[i] = ENC_SEND;
			getTypeBinaryOutputInfo(a->atttypid, &sendfn, &isvarlena);
			fmgr_info(sendfn, &h->send[i]);
		}
	}
	/* the tracked table's column order, whatever this partition's layout */
	{
		TupleDesc	rdesc = RelationGetDescr(rootrel);

		h->order = palloc(sizeof(AttrNumber) * rdesc->natts);
		h->ncols = 0;
		for (i = 0; i < rdesc->natts; i++)
		{
			Form_pg_attribute ra = TupleDescAttr(rdesc, i);

			if (ra->attisdropped)
				continue;
			h->order[h->ncols] = attnum_by_name(desc, NameStr(ra->attname));
			if (h->order[h->ncols] == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" is missing from \"%s\"",
								NameStr(ra->attname), RelationGetRelationName(rel))));
			h->ncols++;
		}
	}
	if (!OidIsValid(pk))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key", RelationGetRelationName(rootrel)),
				 errhint("Digests locate rows by primary key; add one.")));
	{
		Relation	idx = index_open(pk, AccessShareLock);

		h->nkeys = idx->rd_index->indnkeyatts;
		h->keys = palloc(sizeof(AttrNumber) * h->nkeys);
		for (i = 0; i < h->nkeys; i++)
		{
			AttrNumber	ra = idx->rd_index->indkey.values[i];
			const char *name = NameStr(TupleDescAttr(RelationGetDescr(rootrel), ra - 1)->attname);

			h->keys[i] = attnum_by_name(desc, name);
		}
		index_close(idx, AccessShareLock);
	}
	if (tcol)
	{
		Oid			outfn;
		bool		isvarlena;

		h->tenant_att = attnum_by_name(desc, tcol);
		if (h->tenant_att == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("tenant column \"%s\" is missing", tcol)));
		getTypeOutputInfo(TupleDescAttr(desc, h->tenant_att - 1)->atttypid, &outfn, &isvarlena);
		fmgr_info(outfn, &h->tenant_out);
	}
	if (rootrel != rel)
		table_close(rootrel, AccessShareLock);
	initStringInfo(&h->buf);
	initStringInfo(&h->kbuf);
	return h;
}

static void
encode_value(RowHasher *h, StringInfo buf, int i, Datum v, bool isnull)
{
	uint32		len;
	char	   *data;
	uint8		hdr[5];
	uint8		be[8];

	if (isnull)
	{
		appendStringInfoChar(buf, 0);
		return;
	}
	if (h->mode[i] == ENC_VARLENA)
	{
		struct varlena *t = PG_DETOAST_DATUM_PACKED(v);

		data = VARDATA_ANY(t);
		len = VARSIZE_ANY_EXHDR(t);
	}
	else if (h->mode[i] == ENC_BYVAL)
	{
		int			n = TupleDescAttr(h->desc, i)->attlen;
		uint64		x = (n == 8) ? (uint64) DatumGetInt64(v) :
			(n == 4) ? (uint64) (uint32) DatumGetInt32(v) :
			(n == 2) ? (uint64) (uint16) DatumGetInt16(v) : (uint64) DatumGetUInt8(v);
		int			k;

		for (k = 0; k < n; k++)
			be[k] = (uint8) (x >> (8 * (n - 1 - k)));
		data = (char *) be;
		len = n;
	}
	else if (h->mode[i] == ENC_UUID)
	{
		data = (char *) DatumGetPointer(v);
		len = 16;
	}
	else if (h->mode[i] == ENC_OUTPUT)
	{
		data = OutputFunctionCall(&h->send[i], v);
		len = strlen(data);
	}
	else
	{
		bytea	   *b = SendFunctionCall(&h->send[i], v);

		data = VARDATA(b);
		len = VARSIZE(b) - VARHDRSZ;
	}
	hdr[0] = 1;
	hdr[1] = (uint8) (len >> 24);
	hdr[2] = (uint8) (len >> 16);
	hdr[3] = (uint8) (len >> 8);
	hdr[4] = (uint8) len;
	appendBinaryStringInfo(buf, (char *) hdr, 5);
	appendBinaryStringInfo(buf, data, len);
}

/*
 * Hash one row (slot must be fully deformed).  Fills tenant (NAMEDATALEN),
 * the fine key hash and the lanes.
 */
static void slot_tenant(RowHasher *h, TupleTableSlot *slot, char *tenant);

static void
hash_slot(RowHasher *h, TupleTableSlot *slot, char *tenant, uint64 *keyhash,
		  uint64 lanes[TI_LANES])
{
	int			i;

	slot_getallattrs(slot);
	resetStringInfo(&h->buf);
	for (i = 0; i < h->ncols; i++)
	{
		int			a = h->order[i] - 1;

		encode_value(h, &h->buf, a, slot->tts_values[a], slot->tts_isnull[a]);
	}
	resetStringInfo(&h->kbuf);
	for (i = 0; i < h->nkeys; i++)
	{
		int			a = h->keys[i] - 1;

		encode_value(h, &h->kbuf, a, slot->tts_values[a], slot->tts_isnull[a]);
	}
	*keyhash = ti_key_hash((uint8 *) h->kbuf.data, h->kbuf.len);
	if (ti_lthash_row((uint8 *) h->buf.data, h->buf.len, lanes) != 0)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("row hashing failed")));
	slot_tenant(h, slot, tenant);
}

/* The tenant of a row (without hashing it): '' when not protected. */
static void
slot_tenant(RowHasher *h, TupleTableSlot *slot, char *tenant)
{
	tenant[0] = '\0';
	if (h->tenant_att != InvalidAttrNumber && !slot->tts_isnull[h->tenant_att - 1])
	{
		Datum		tv = slot->tts_values[h->tenant_att - 1];

		if (h->mode[h->tenant_att - 1] == ENC_VARLENA)
		{
			struct varlena *t = PG_DETOAST_DATUM_PACKED(tv);
			int			n = Min(VARSIZE_ANY_EXHDR(t), NAMEDATALEN - 1);

			memcpy(tenant, VARDATA_ANY(t), n);
			tenant[n] = '\0';
		}
		else
			strlcpy(tenant, OutputFunctionCall(&h->tenant_out, tv), NAMEDATALEN);
	}
}

/* Pin client_encoding to the database encoding while hashing. */
static int
pin_encoding(void)
{
	int			saved = pg_get_client_encoding();

	if (saved != GetDatabaseEncoding())
		SetClientEncoding(GetDatabaseEncoding());
	return saved;
}

static void
unpin_encoding(int saved)
{
	if (saved != pg_get_client_encoding())
		SetClientEncoding(saved);
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
		  Snapshot snapshot)
{
	ListCell   *lc;
	List	   *leaves = leaves_of(relid);

	foreach(lc, leaves)
	{
		Relation	rel = table_open(lfirst_oid(lc), AccessShareLock);
		RowHasher  *h = make_hasher(rel, root);
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
		TupleTableSlot *slot = table_slot_create(rel, NULL);
		MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "tenant_iso row",
													 ALLOCSET_DEFAULT_SIZES);
		char		tenant[NAMEDATALEN];
		uint64		keyhash;
		uint64		lanes[TI_LANES];

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			CHECK_FOR_INTERRUPTS();
			if (tenants != NIL)
			{
				slot_getallattrs(slot);
				slot_tenant(h, slot, tenant);
				if (!tenant_wanted(tenants, tenant))
				{
					MemoryContextSwitchTo(old);
					MemoryContextReset(rowcxt);
					continue;
				}
			}
			hash_slot(h, slot, tenant, &keyhash, lanes);
			MemoryContextSwitchTo(old);
			accumulate(hash, tenant, (int32) (keyhash % nbuckets), lanes, sign);
			MemoryContextReset(rowcxt);
		}
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
	int			enc = pin_encoding();

	PG_TRY();
	{
		scan_into(hash, relid, relid, tenants, nbuckets, 1, GetActiveSnapshot());
	}
	PG_FINALLY();
	{
		unpin_encoding(enc);
	}
	PG_END_TRY();
	return hash;
}

static Oid
ext_table(const char *name)
{
	Oid			nsp = get_namespace_oid("tenant_iso", false);
	Oid			relid = get_relname_relid(name, nsp);

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
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		bytea	   *lanes = palloc(VARHDRSZ + TI_LANES_BYTES);
		HeapTuple	tup;
		ti_lthash	zero;

		memset(&zero, 0, sizeof(zero));
		if (ti_lthash_equal(&e->digest, &zero))
			continue;
		SET_VARSIZE(lanes, VARHDRSZ + TI_LANES_BYTES);
		ti_lthash_pack(&e->digest, (uint8 *) VARDATA(lanes));
		values[0] = CStringGetTextDatum(relname);
		values[1] = CStringGetTextDatum(e->key.tenant);
		values[2] = Int32GetDatum(e->key.bucket);
		values[3] = Int64GetDatum(e->digest.rows);
		values[4] = PointerGetDatum(lanes);
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

		hash_slot(h, slot, tenant, &keyhash, lanes);
		MemoryContextSwitchTo(old);
		accumulate(hash, tenant, (int32) (keyhash % TI_STORED_BUCKETS), lanes, sign);
		MemoryContextReset(rowcxt);
	}
	MemoryContextDelete(rowcxt);
	ExecDropSingleTupleTableSlot(slot);
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

		root = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(relname)),
								NoLock, true);
		if (!OidIsValid(root))
			root = relid;
		old = MemoryContextSwitchTo(hasher_cxt);
		h = make_hasher(rel, root);
		h->desc = CreateTupleDescCopy(h->desc);
		MemoryContextSwitchTo(old);
		e = hash_search(hasher_cache, &relid, HASH_ENTER, &found);
		e->root = root;
		e->hasher = h;
	}
	*root_out = e->root;
	return e->hasher;
}

/*
 * The digest trigger: AFTER INSERT/UPDATE/DELETE FOR EACH STATEMENT with
 * transition tables, and BEFORE TRUNCATE.  Argument 0: the tracked table's
 * qualified name; argument 1: its OID at track() time is not used (names
 * travel between nodes, OIDs do not).
 */
PG_FUNCTION_INFO_V1(ti_digest_trigger);
Datum
ti_digest_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	const char *relname;
	HTAB	   *hash;
	int			enc;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		td->tg_trigger->tgnargs < 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_digest_trigger() must be a statement trigger created by tenant_iso.track()")));
	rel = td->tg_relation;
	relname = td->tg_trigger->tgargs[0];

	hash = new_bucket_hash();
	enc = pin_encoding();
	PG_TRY();
	{
		if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		{
			Oid			root = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(relname)),
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

				scan_into(hash, RelationGetRelid(rel), root, NULL, TI_STORED_BUCKETS, -1, snap);
				UnregisterSnapshot(snap);
			}
		}
		else
		{
			Oid			root;
			RowHasher  *h = cached_hasher(rel, relname, &root);

			tuplestore_into(hash, td->tg_oldtable, rel, h, -1);
			tuplestore_into(hash, td->tg_newtable, rel, h, 1);
		}
	}
	PG_FINALLY();
	{
		unpin_encoding(enc);
	}
	PG_END_TRY();
	write_deltas(relname, hash);
	return PointerGetDatum(NULL);
}

/* Replace the stored digests of a table with ones built from its rows. */
PG_FUNCTION_INFO_V1(ti_rebuild_digests);
Datum
ti_rebuild_digests(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *relname = ti_qualified_name(relid);
	HTAB	   *hash;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			nestlevel = ti_pin_search_path();

	SPI_connect();
	values[0] = CStringGetTextDatum(relname);
	if (SPI_execute_with_args("DELETE FROM tenant_iso.digests WHERE relname OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not clear digests");
	SPI_finish();
	CommandCounterIncrement();
	hash = new_bucket_hash();
	{
		int			enc = pin_encoding();

		PG_TRY();
		{
			scan_into(hash, relid, relid, NULL, TI_STORED_BUCKETS, 1, GetActiveSnapshot());
		}
		PG_FINALLY();
		{
			unpin_encoding(enc);
		}
		PG_END_TRY();
	}
	write_deltas(relname, hash);
	ti_unpin_search_path(nestlevel);
	PG_RETURN_INT64((int64) hash_get_num_entries(hash));
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
	Relation	drel = table_open(ext_table("digests"), AccessShareLock);
	TableScanDesc scan = table_beginscan(drel, GetActiveSnapshot(), 0, NULL);
	HeapTuple	tup;

	hash_seq_init(&seq, live);
	while ((b = hash_seq_search(&seq)) != NULL)
		ti_lthash_merge(&tenant_entry(tenants, b->key.tenant)->live, &b->digest, 1);

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		TupleDesc	dd = RelationGetDescr(drel);
		char	   *r = TextDatumGetCString(heap_getattr(tup, 1, dd, &isnull));
		char	   *tn;
		bytea	   *lanes;

		if (strcmp(r, relname) != 0)
			continue;
		tn = TextDatumGetCString(heap_getattr(tup, 2, dd, &isnull));
		if (only_tenant && strcmp(tn, only_tenant) != 0)
			continue;
		lanes = DatumGetByteaPP(heap_getattr(tup, 5, dd, &isnull));
		if (isnull || VARSIZE_ANY_EXHDR(lanes) != TI_LANES_BYTES)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("malformed stored digest for %s", relname)));
		ti_lthash_unpack_add(&tenant_entry(tenants, tn)->stored, (uint8 *) VARDATA_ANY(lanes),
							 DatumGetInt64(heap_getattr(tup, 4, dd, &isnull)));
	}
	table_endscan(scan);
	table_close(drel, AccessShareLock);

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
	if (SPI_execute("SELECT rel::pg_catalog.oid, relname FROM tenant_iso.tracked ORDER BY relname", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read tracked tables");
	/* SPI leaves its own context current; the list must outlive it */
	MemoryContextSwitchTo(outer);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		if (!OidIsValid(only_rel) || relid == only_rel)
			rels = lappend(rels, list_make2(makeInteger((int) relid), makeString(name)));
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

static Oid
relid_from_name(text *name)
{
	return RangeVarGetRelid(makeRangeVarFromNameList(textToQualifiedNameList(name)),
							AccessShareLock, false);
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
	enc = pin_encoding();
	PG_TRY();
	{
		foreach(lc, leaves)
		{
			Relation	rel = table_open(lfirst_oid(lc), AccessShareLock);
			RowHasher  *h = make_hasher(rel, relid);
			TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
			TupleTableSlot *slot = table_slot_create(rel, NULL);
			char		tenant[NAMEDATALEN];
			uint64		keyhash;
			uint64		lanes[TI_LANES];

			while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
			{
				int32		bucket;
				Datum		values[5];
				bool		nulls[5] = {false, false, false, false, false};
				bytea	   *rh;
				ItemPointer tid;

				BucketKey	bk;

				CHECK_FOR_INTERRUPTS();
				slot_getallattrs(slot);
				slot_tenant(h, slot, tenant);
				if (!tenant_wanted(tenants, tenant))
					continue;
				hash_slot(h, slot, tenant, &keyhash, lanes);
				bucket = (int32) (keyhash % nb);
				memset(&bk, 0, sizeof(bk));
				strlcpy(bk.tenant, tenant, NAMEDATALEN);
				bk.bucket = bucket;
				if (hash_search(want, &bk, HASH_FIND, NULL) == NULL)
					continue;
				rh = palloc(VARHDRSZ + 16);
				SET_VARSIZE(rh, VARHDRSZ + 16);
				memcpy(VARDATA(rh), lanes, 16);
				tid = palloc(sizeof(ItemPointerData));
				ItemPointerCopy(&slot->tts_tid, tid);
				values[0] = CStringGetTextDatum(tenant);
				values[1] = Int32GetDatum(bucket);
				values[2] = ObjectIdGetDatum(RelationGetRelid(rel));
				values[3] = PointerGetDatum(tid);
				values[4] = PointerGetDatum(rh);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
			ExecDropSingleTupleTableSlot(slot);
			table_endscan(scan);
			table_close(rel, AccessShareLock);
		}
	}
	PG_FINALLY();
	{
		unpin_encoding(enc);
	}
	PG_END_TRY();
	return (Datum) 0;
}
