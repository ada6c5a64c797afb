/*
 * src/canonical.c
 *	  The canonical row encoder of replication-integrity digests: the bytes a
 *	  row of a tracked table encodes to, and the lanes and bucket key hash
 *	  computed from them.  Every node must produce the same bytes for the
 *	  same row, whatever its OIDs, physical layout or session settings, so
 *	  this file is a specification: changing what it emits changes every
 *	  stored digest, and needs a new format number (tenant_iso.tracked.format)
 *	  and rebuild_digests().  The triggers, verify() and the bucket functions
 *	  that use it are in digest.c.
 *
 * Notation: be16/be32 are big-endian unsigned integers; a "field" is
 *		0x00					 (NULL)
 *	 or 0x01 be32(n) <n bytes>	 (a value of n bytes)
 *
 * Format 2 (0.2.0; keyed, canonical)
 *	 Row: for each column of the tracked (root) table in attnum order,
 *	 skipping dropped columns, with i its ordinal among the non-dropped
 *	 columns (0-based), and only if the value is not NULL:
 *		be16(i) field(value)
 *	 NULL columns add nothing, so ADD COLUMN without a default leaves every
 *	 row's bytes unchanged.  A partition is mapped to the root's columns by
 *	 name.  Values, by base type (domains encode as their base type):
 *	 - arrays: be8 ndim, then per dimension be32(length) be32(lower bound),
 *	   then each element in storage order as a field (NULL elements 0x00);
 *	 - composites: each non-dropped attribute in attnum order as a field;
 *	 - enums: the label's bytes (output function; no OID);
 *	 - string-category varlena types, bytea, numeric: the stored bytes,
 *	   detoasted (database encoding; numeric's stored form is canonical);
 *	 - pass-by-value types of 1, 2, 4 or 8 bytes: the value big-endian;
 *	 - uuid: its 16 bytes;
 *	 - anything else: the bytes of its binary send function.
 *	 Lanes: ti_rowprf_lanes() (lthash.c: SipHash-2-4-128 of the row bytes,
 *	 expanded to 512 bits by AES-256-CTR) under a per-tenant key:
 *	 HKDF-SHA256(ikm = the master key's "digest" subkey,
 *				 salt = "tenant_iso row digest v2", info = tenant id).
 *	 Without the master key nobody can compute a row's lanes, search offline
 *	 for rows that cancel, or forge a stored digest.
 *	 Bucket key: the primary key columns (root's key, in key order), each
 *	 as field(value) with the encoding above, hashed with
 *	 hash_bytes_extended(seed 0); the bucket is that hash modulo the number
 *	 of buckets (TI_STORED_BUCKETS, TI_DIFF_BUCKETS).
 *
 * Format 1 (0.1.0; kept until rebuild_digests() moves a table on)
 *	 Row: every non-dropped column of the tracked table in attnum order,
 *	 each as field(value), NULLs included (0x00).  Values:
 *	 - string-category varlena types, bytea, numeric: the stored bytes;
 *	 - enums, composites and arrays whose element is a user-defined type or
 *	   one of those (binary forms carrying node-local OIDs): the output
 *	   function's text;
 *	 - pass-by-value types of 1, 2, 4 or 8 bytes: big-endian;
 *	 - uuid: its 16 bytes;
 *	 - anything else: the binary send function.
 *	 Lanes: BLAKE2b-512 of the row bytes (ti_lthash_row, lthash.c).
 *	 Bucket key: the primary key columns as fields, hashed by FNV-1a
 *	 (ti_key_hash).
 *
 * Both formats: the tenant of a row is its tenant column's text (output
 * function; '' when the table is not protected), at most NAMEDATALEN - 1
 * bytes.  Output and send functions are found by type OID only, and the
 * callers pin client_encoding to the database encoding while hashing
 * (ti_pin_encoding), so that nothing depends on session settings.
 *
 * Memory: a hasher lives in the memory context it was made in; its
 * per-tenant PRFs (OpenSSL contexts, outside palloc) are freed by a reset
 * callback of that context.  Per-tenant keys are cached per backend in
 * TopMemoryContext and wiped when the "digest" subkey changes.
 *
 * Elevated paths: none; no SQL and no name resolution.
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

/* Format 2: how a value of one (base) type is encoded, recursively. */
#define ENC2_VARLENA 'v'
#define ENC2_BYVAL	'b'
#define ENC2_UUID	'u'
#define ENC2_ENUM	'e'			/* its label */
#define ENC2_ARRAY	'a'			/* dimensions, then each element */
#define ENC2_RECORD 'r'			/* each field */
#define ENC2_SEND	's'			/* binary send function */

typedef struct TypeEnc
{
	char		mode;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	FmgrInfo	fn;				/* send (ENC2_SEND) or output (ENC2_ENUM) */
	struct TypeEnc *elem;		/* ENC2_ARRAY */
	Oid			elemtype;
	TupleDesc	tupdesc;		/* ENC2_RECORD */
	struct TypeEnc **fields;
} TypeEnc;

struct RowHasher
{
	int			format;			/* 1 (0.1.0) or 2 */
	TypeEnc   **enc2;			/* format 2: per attribute of desc */
	struct KeyMemoTable *keymemo;	/* format 2: per-tenant row PRFs */
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
};

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

/* Format 2: the encoder of a type (domains encode as their base type). */
static TypeEnc *
type_encoder(Oid typid, int depth)
{
	TypeEnc    *e = palloc0(sizeof(TypeEnc));
	Oid			base = getBaseType(typid);
	char		category;
	bool		preferred;
	char		typtype = get_typtype(base);
	Oid			elem;

	if (depth > 32)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("type nesting too deep to hash")));
	get_typlenbyvalalign(base, &e->typlen, &e->typbyval, &e->typalign);
	get_type_category_preferred(base, &category, &preferred);
	elem = get_element_type(base);
	if (OidIsValid(elem) && e->typlen == -1)
	{
		e->mode = ENC2_ARRAY;
		e->elemtype = elem;
		e->elem = type_encoder(elem, depth + 1);
	}
	else if (typtype == TYPTYPE_COMPOSITE)
	{
		TupleDesc	td = lookup_rowtype_tupdesc(base, -1);
		int			k;

		e->mode = ENC2_RECORD;
		e->tupdesc = CreateTupleDescCopy(td);
		ReleaseTupleDesc(td);
		e->fields = palloc0(sizeof(TypeEnc *) * e->tupdesc->natts);
		for (k = 0; k < e->tupdesc->natts; k++)
		{
			Form_pg_attribute fa = TupleDescAttr(e->tupdesc, k);

			if (!fa->attisdropped)
				e->fields[k] = type_encoder(fa->atttypid, depth + 1);
		}
	}
	else if (typtype == TYPTYPE_ENUM)
	{
		Oid			outfn;
		bool		isvarlena;

		e->mode = ENC2_ENUM;
		getTypeOutputInfo(base, &outfn, &isvarlena);
		fmgr_info(outfn, &e->fn);
	}
	else if ((category == TYPCATEGORY_STRING && e->typlen == -1) || base == BYTEAOID ||
			 base == NUMERICOID)
		e->mode = ENC2_VARLENA;
	else if (e->typbyval && (e->typlen == 1 || e->typlen == 2 || e->typlen == 4 || e->typlen == 8))
		e->mode = ENC2_BYVAL;
	else if (base == UUIDOID)
		e->mode = ENC2_UUID;
	else
	{
		Oid			sendfn;
		bool		isvarlena;

		e->mode = ENC2_SEND;
		getTypeBinaryOutputInfo(base, &sendfn, &isvarlena);
		fmgr_info(sendfn, &e->fn);
	}
	return e;
}

/* A pass-by-value datum of n (1, 2, 4, 8) bytes, big-endian; returns n. */
static uint32
byval_be(Datum v, int n, uint8 *be)
{
	uint64		x = (n == 8) ? (uint64) DatumGetInt64(v) :
		(n == 4) ? (uint64) (uint32) DatumGetInt32(v) :
		(n == 2) ? (uint64) (uint16) DatumGetInt16(v) : (uint64) DatumGetUInt8(v);
	int			k;

	for (k = 0; k < n; k++)
		be[k] = (uint8) (x >> (8 * (n - 1 - k)));
	return (uint32) n;
}

static void
append_be(StringInfo buf, uint64 x, int n)
{
	uint8		be[8];
	int			k;

	for (k = 0; k < n; k++)
		be[k] = (uint8) (x >> (8 * (n - 1 - k)));
	appendBinaryStringInfo(buf, (char *) be, n);
}

static void encode2_field(TypeEnc *e, StringInfo buf, Datum v, bool isnull);

/*
 * Format 2: append the bytes of one non-NULL value whose length is not known
 * up front (enums, arrays, records, send functions); encode2_field() writes
 * the fixed and plain varlena kinds itself.
 */
static void
encode2_value(TypeEnc *e, StringInfo buf, Datum v)
{
	switch (e->mode)
	{
		case ENC2_ENUM:
			appendStringInfoString(buf, OutputFunctionCall(&e->fn, v));
			break;
		case ENC2_ARRAY:
			{
				ArrayType  *arr = DatumGetArrayTypeP(v);
				int			ndim = ARR_NDIM(arr);
				int		   *dims = ARR_DIMS(arr);
				int		   *lbs = ARR_LBOUND(arr);
				Datum	   *elems;
				bool	   *nulls;
				int			n,
							k;

				append_be(buf, (uint64) ndim, 1);
				for (k = 0; k < ndim; k++)
				{
					append_be(buf, (uint64) (uint32) dims[k], 4);
					append_be(buf, (uint64) (uint32) lbs[k], 4);
				}
				deconstruct_array(arr, ARR_ELEMTYPE(arr), e->elem->typlen,
								  e->elem->typbyval, e->elem->typalign,
								  &elems, &nulls, &n);
				for (k = 0; k < n; k++)
					encode2_field(e->elem, buf, elems[k], nulls[k]);
				break;
			}
		case ENC2_RECORD:
			{
				HeapTupleHeader td = DatumGetHeapTupleHeader(v);
				HeapTupleData tmp;
				int			natts = e->tupdesc->natts;
				Datum	   *values = palloc(sizeof(Datum) * natts);
				bool	   *nulls = palloc(sizeof(bool) * natts);
				int			k;

				tmp.t_len = HeapTupleHeaderGetDatumLength(td);
				ItemPointerSetInvalid(&tmp.t_self);
				tmp.t_tableOid = InvalidOid;
				tmp.t_data = td;
				heap_deform_tuple(&tmp, e->tupdesc, values, nulls);
				for (k = 0; k < natts; k++)
					if (e->fields[k] != NULL)
						encode2_field(e->fields[k], buf, values[k], nulls[k]);
				break;
			}
		default:
			{
				bytea	   *b = SendFunctionCall(&e->fn, v);

				appendBinaryStringInfo(buf, VARDATA(b), VARSIZE(b) - VARHDRSZ);
				break;
			}
	}
}

/* Format 2, nested values: a flag byte (0 = NULL), a length, the bytes. */
static void
encode2_field(TypeEnc *e, StringInfo buf, Datum v, bool isnull)
{
	int			at;
	uint32		len;

	if (isnull)
	{
		appendStringInfoChar(buf, 0);
		return;
	}
	if (e->mode == ENC2_VARLENA || e->mode == ENC2_BYVAL || e->mode == ENC2_UUID)
	{
		/* the common cases: length known up front, one copy */
		struct varlena *t = NULL;
		const char *data;
		uint8		be[8];
		char	   *p;

		if (e->mode == ENC2_VARLENA)
		{
			t = PG_DETOAST_DATUM_PACKED(v);
			data = VARDATA_ANY(t);
			len = VARSIZE_ANY_EXHDR(t);
		}
		else if (e->mode == ENC2_UUID)
		{
			data = DatumGetPointer(v);
			len = 16;
		}
		else
		{
			len = byval_be(v, e->typlen, be);
			data = (const char *) be;
		}
		enlargeStringInfo(buf, len + 5);
		p = buf->data + buf->len;
		p[0] = 1;
		p[1] = (char) (len >> 24);
		p[2] = (char) (len >> 16);
		p[3] = (char) (len >> 8);
		p[4] = (char) len;
		memcpy(p + 5, data, len);
		buf->len += len + 5;
		buf->data[buf->len] = '\0';
		return;
	}
	appendStringInfoChar(buf, 1);
	at = buf->len;
	appendBinaryStringInfo(buf, "\0\0\0\0", 4);
	encode2_value(e, buf, v);
	len = (uint32) (buf->len - at - 4);
	buf->data[at] = (char) (len >> 24);
	buf->data[at + 1] = (char) (len >> 16);
	buf->data[at + 2] = (char) (len >> 8);
	buf->data[at + 3] = (char) len;
}

/*
 * Format 2, the key of one tenant's row hashes: HKDF of the master key's
 * "digest" subkey, per tenant.  Keys are cached per backend (for as long as
 * the subkey stays the same); the last tenant's key is kept in the hasher.
 */

typedef struct DigestKeyEntry
{
	char		tenant[NAMEDATALEN];
	uint8		key[TI_ROWPRF_KEY_LEN];
} DigestKeyEntry;

static HTAB *digest_keys = NULL;
static uint8 digest_keys_base[TI_KEY_LEN];

static void
forget_digest_keys(void)
{
	HASH_SEQ_STATUS seq;
	DigestKeyEntry *e;

	if (digest_keys == NULL)
		return;
	hash_seq_init(&seq, digest_keys);
	while ((e = hash_seq_search(&seq)) != NULL)
		ti_wipe(e->key, sizeof(e->key));
	hash_destroy(digest_keys);
	digest_keys = NULL;
	ti_wipe(digest_keys_base, sizeof(digest_keys_base));
}

/* open addressing, linear probing; cleared when three quarters full */
#define KEY_MEMO 1024

typedef struct KeyMemo
{
	uint32		hash;
	char		tenant[NAMEDATALEN];
	ti_rowprf  *prf;			/* NULL: slot unused */
} KeyMemo;

typedef struct KeyMemoTable
{
	int			used;
	uint8		base[TI_KEY_LEN];	/* the "digest" subkey the PRFs come from */
	KeyMemo		slot[KEY_MEMO];
} KeyMemoTable;

/* The OpenSSL contexts of a hasher's memo live outside palloc. */
static void
clear_key_memo(KeyMemoTable *memo)
{
	int			i;

	for (i = 0; i < KEY_MEMO; i++)
	{
		ti_rowprf_free(memo->slot[i].prf);
		memo->slot[i].prf = NULL;
	}
	memo->used = 0;
	ti_wipe(memo->base, sizeof(memo->base));
}

static void
free_key_memo(void *arg)
{
	clear_key_memo((KeyMemoTable *) arg);
}

static ti_rowprf *
tenant_row_prf(RowHasher *h, const char *tenant)
{
	static const char salt[] = "tenant_iso row digest v2";
	uint8		base[TI_KEY_LEN];
	char		name[NAMEDATALEN];
	DigestKeyEntry *e;
	bool		found;
	uint32		hash = ti_tenant_bucket_index(tenant, 0);
	uint32		i;
	KeyMemo    *m;

	if (h->keymemo == NULL)
	{
		MemoryContext cxt = GetMemoryChunkContext(h);
		MemoryContextCallback *cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));

		h->keymemo = MemoryContextAllocZero(cxt, sizeof(KeyMemoTable));
		cb->func = free_key_memo;
		cb->arg = h->keymemo;
		MemoryContextRegisterResetCallback(cxt, cb);
	}
	for (i = hash & (KEY_MEMO - 1);; i = (i + 1) & (KEY_MEMO - 1))
	{
		m = &h->keymemo->slot[i];
		if (m->prf == NULL)
			break;
		if (m->hash == hash && strcmp(m->tenant, tenant) == 0)
			return m->prf;
	}
	if (h->keymemo->used >= KEY_MEMO * 3 / 4)
	{
		clear_key_memo(h->keymemo);
		m = &h->keymemo->slot[hash & (KEY_MEMO - 1)];
	}

	ti_derive_key("digest", base);
	if (digest_keys != NULL && memcmp(base, digest_keys_base, TI_KEY_LEN) != 0)
		forget_digest_keys();	/* the master key changed */
	if (digest_keys == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(DigestKeyEntry);
		ctl.hcxt = TopMemoryContext;
		digest_keys = hash_create("tenant_iso digest keys", 64, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		memcpy(digest_keys_base, base, TI_KEY_LEN);
	}
	memset(name, 0, sizeof(name));
	strlcpy(name, tenant, NAMEDATALEN);
	e = hash_search(digest_keys, name, HASH_ENTER, &found);
	if (!found)
	{
		if (ti_hkdf_sha256(base, sizeof(base), (const uint8 *) salt, sizeof(salt) - 1,
						   (const uint8 *) name, strlen(name),
						   e->key, TI_ROWPRF_KEY_LEN) != 0)
		{
			hash_search(digest_keys, name, HASH_REMOVE, NULL);
			ti_wipe(base, sizeof(base));
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("digest key derivation failed")));
		}
	}
	if (h->keymemo->used == 0)
		memcpy(h->keymemo->base, base, TI_KEY_LEN);
	ti_wipe(base, sizeof(base));
	m->prf = ti_rowprf_new(e->key);
	if (m->prf == NULL)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not set up row hashing")));
	m->hash = hash;
	strlcpy(m->tenant, tenant, NAMEDATALEN);
	h->keymemo->used++;
	return m->prf;
}

/*
 * Build a hasher for a relation.  Keys and the tenant column are found by
 * name through root (the tracked table), so that a partition with another
 * physical layout hashes the same.
 */
RowHasher *
ti_make_hasher(Relation rel, Oid root, int format)
{
	RowHasher  *h = palloc0(sizeof(RowHasher));
	TupleDesc	desc = RelationGetDescr(rel);
	Relation	rootrel = (root == RelationGetRelid(rel)) ? rel : table_open(root, AccessShareLock);
	Oid			pk = ti_primary_key_index(rootrel);
	const char *tcol = ti_protected_column(root);
	int			i;

	h->format = format;
	h->desc = desc;
	h->natts = desc->natts;
	h->enc2 = palloc0(sizeof(TypeEnc *) * desc->natts);
	h->send = palloc0(sizeof(FmgrInfo) * desc->natts);
	h->mode = palloc0(sizeof(char) * desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);
		Oid			base;
		Oid			sendfn;
		bool		isvarlena;
		char		category;
		bool		preferred;

		/* a dropped column's type is gone (0): never look it up */
		if (a->attisdropped)
			continue;
		base = getBaseType(a->atttypid);
		if (h->format >= 2)
		{
			h->enc2[i] = type_encoder(a->atttypid, 0);
			/* slot_tenant() reads a varlena tenant id directly */
			h->mode[i] = (h->enc2[i]->mode == ENC2_VARLENA) ? ENC_VARLENA : ENC_SEND;
			continue;
		}
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
		len = byval_be(v, TupleDescAttr(h->desc, i)->attlen, be);
		data = (char *) be;
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
void
ti_hash_slot(RowHasher *h, TupleTableSlot *slot, char *tenant, uint64 *keyhash,
		  uint64 lanes[TI_LANES])
{
	int			i;

	slot_getallattrs(slot);
	ti_slot_tenant(h, slot, tenant);
	resetStringInfo(&h->buf);
	resetStringInfo(&h->kbuf);
	if (h->format >= 2)
	{
		ti_rowprf  *prf;
		int			rc;

		for (i = 0; i < h->ncols; i++)
		{
			int			a = h->order[i] - 1;

			if (slot->tts_isnull[a])
				continue;
			append_be(&h->buf, (uint64) i, 2);
			encode2_field(h->enc2[a], &h->buf, slot->tts_values[a], false);
		}
		for (i = 0; i < h->nkeys; i++)
		{
			int			a = h->keys[i] - 1;

			encode2_field(h->enc2[a], &h->kbuf, slot->tts_values[a], slot->tts_isnull[a]);
		}
		prf = tenant_row_prf(h, tenant);
		rc = ti_rowprf_lanes(prf, (uint8 *) h->buf.data, h->buf.len, lanes);
		if (rc != 0)
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("row hashing failed")));
		*keyhash = hash_bytes_extended((const unsigned char *) h->kbuf.data, h->kbuf.len, 0);
		return;
	}
	for (i = 0; i < h->ncols; i++)
	{
		int			a = h->order[i] - 1;

		encode_value(h, &h->buf, a, slot->tts_values[a], slot->tts_isnull[a]);
	}
	for (i = 0; i < h->nkeys; i++)
	{
		int			a = h->keys[i] - 1;

		encode_value(h, &h->kbuf, a, slot->tts_values[a], slot->tts_isnull[a]);
	}
	*keyhash = ti_key_hash((uint8 *) h->kbuf.data, h->kbuf.len);
	if (ti_lthash_row((uint8 *) h->buf.data, h->buf.len, lanes) != 0)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("row hashing failed")));
}

/* The tenant of a row (without hashing it): '' when not protected. */
void
ti_slot_tenant(RowHasher *h, TupleTableSlot *slot, char *tenant)
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
int
ti_pin_encoding(void)
{
	int			saved = pg_get_client_encoding();

	if (saved != GetDatabaseEncoding())
		SetClientEncoding(GetDatabaseEncoding());
	return saved;
}

void
ti_unpin_encoding(int saved)
{
	if (saved != pg_get_client_encoding())
		SetClientEncoding(saved);
}


int
ti_hasher_format(const RowHasher *h)
{
	return h->format;
}

/* Keep the hasher past its relation: copy the descriptor it reads slots with. */
void
ti_hasher_detach(RowHasher *h)
{
	h->desc = CreateTupleDescCopy(h->desc);
}

/*
 * A cached hasher keeps per-tenant PRFs: drop them if the "digest" subkey
 * (digest_subkey, just derived) is not the one they came from.
 */
void
ti_hasher_check_key(RowHasher *h, const uint8 *digest_subkey)
{
	if (h->format >= 2 && h->keymemo != NULL && h->keymemo->used > 0 &&
		memcmp(h->keymemo->base, digest_subkey, TI_KEY_LEN) != 0)
		clear_key_memo(h->keymemo);
}
