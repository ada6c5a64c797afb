/*
 * src/keys.c
 *	  Per-tenant data keys and the SQL-facing crypto functions: encrypt,
 *	  decrypt, decrypt_text, blind_index, key_version, rotate_tenant_key and
 *	  rewrap_keys.  shred_tenant() is SQL over data_keys (install script);
 *	  here a destroyed key only refuses to open (55000).
 *
 * Key hierarchy: master key (outside the database) -> KEK = HKDF(master,
 * "kek") -> per-tenant random 256-bit data keys, stored only wrapped
 * (AES-256-GCM, tenant id and version bound as associated data) in
 * tenant_iso.data_keys.
 *
 * Subkeys: the data key itself is never used as a cipher key for new data.
 * Envelope format 2 uses HKDF(data key, "tenant_iso envelope v2") as its
 * AES-256-GCM key; the blind-index key is HKDF(data key, "tenant_iso blind
 * index"), unchanged, so existing blind indexes keep working.  Format 1
 * envelopes (0.1.0 data) used the data key directly; they are still opened
 * (a separate decrypt context), never written, and reencrypt() moves them
 * to format 2.
 *
 * Cache: unwrapped keys live only in this backend, each with ready
 * encrypt/decrypt cipher contexts and a blind-index subkey, loaded one
 * (tenant, version) at a time by a primary-key index lookup on data_keys
 * (never a scan of the whole table).  The cache holds MAX_CACHED_KEYS
 * entries in recency order (cache[0] is the most recently used); when full,
 * the least recently used entry is evicted.  It is wiped
 * (OPENSSL_cleanse / EVP_CIPHER_CTX_free) whenever any configuration table
 * changes (registry generation), on DISCARD ALL and at backend exit.
 * Entries live in one anonymous mapping outside PostgreSQL memory contexts
 * (so no context reset can leave key material behind), marked
 * MADV_DONTDUMP so that a core dump does not carry them.  The AES key
 * schedules inside OpenSSL's cipher contexts are allocated by OpenSSL and
 * are not covered.  _key_cache_stats() exposes the counters for tests.
 *
 * Errors: every failure to open an envelope (malformed, wrong tenant, wrong
 * context, altered, unknown version) raises the same SQLSTATE (39000) and
 * message, so errors are no oracle.  A destroyed key raises 55000.
 *
 * Elevated paths: store_new_key (first key of a tenant, rotate_tenant_key)
 * and ti_rewrap_keys (rewrap_keys) run SPI as data_keys' owner
 * (SetUserIdAndSecContext, SECURITY_RESTRICTED_OPERATION); both pin
 * search_path = pg_catalog, pg_temp (ti_pin_search_path, src/elevated.c)
 * for their duration, restored in PG_FINALLY, and their SQL is fully
 * schema-qualified, operators included.  find_key reads data_keys by
 * direct index access, with no name resolution at all.
 */
#include "postgres.h"

#include <sys/mman.h>

#include <openssl/rand.h>

#include "access/genam.h"
#include "access/stratnum.h"
#include "funcapi.h"
#include "utils/fmgroids.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "elevated.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"

#include "envelope.h"
#include "kdf.h"
#include "keys.h"
#include "catalog.h"
#include "tenant_iso.h"
#include "token.h"

#define MAX_CACHED_KEYS 256

typedef struct CachedKey
{
	char		tenant[TI_TENANT_ID_MAX + 1];
	uint32		version;
	bool		destroyed;
	bool		active;
	bool		in_use;			/* slot of the pool taken */
	EVP_CIPHER_CTX *enc;		/* format 2, the derived AES key */
	EVP_CIPHER_CTX *dec;
	EVP_CIPHER_CTX *dec_legacy; /* format 1, the data key itself */
	uint8		blind[TI_KEY_LEN];
} CachedKey;

static CachedKey *cache[MAX_CACHED_KEYS];	/* most recently used first */
static int	n_cached = 0;
static uint64 cache_gen = 0;

/* The slots, in one mapping kept out of core dumps. */
static CachedKey *pool = NULL;
static Size pool_size = 0;
static bool pool_dontdump = false;

static struct
{
	int64		hits;
	int64		misses;
	int64		evictions;
	int64		rows_read;		/* data_keys rows read on misses */
} stats;

static const char aes_label[] = "tenant_iso envelope v2";

static CachedKey *
slot_alloc(void)
{
	int			i;

	if (pool == NULL)
	{
		Size		page = (Size) sysconf(_SC_PAGESIZE);
		void	   *p;

		pool_size = TYPEALIGN(page, sizeof(CachedKey) * MAX_CACHED_KEYS);
		p = mmap(NULL, pool_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
#ifdef MADV_DONTDUMP
		pool_dontdump = (madvise(p, pool_size, MADV_DONTDUMP) == 0);
#endif
#ifdef MADV_DONTFORK
		(void) madvise(p, pool_size, MADV_DONTFORK);
#endif
		pool = p;
	}
	for (i = 0; i < MAX_CACHED_KEYS; i++)
		if (!pool[i].in_use)
		{
			memset(&pool[i], 0, sizeof(CachedKey));
			pool[i].in_use = true;
			return &pool[i];
		}
	elog(ERROR, "key cache pool exhausted");
	return NULL;				/* keep compiler quiet */
}

static void
slot_free(CachedKey *k)
{
	ti_aead_free(k->enc);
	ti_aead_free(k->dec);
	ti_aead_free(k->dec_legacy);
	OPENSSL_cleanse(k, sizeof(CachedKey));	/* also clears in_use */
}

void
ti_keys_flush(void)
{
	int			i;

	for (i = 0; i < n_cached; i++)
	{
		slot_free(cache[i]);
		cache[i] = NULL;
	}
	n_cached = 0;
}

static void
flush_at_exit(int code, Datum arg)
{
	ti_keys_flush();
}

void
ti_keys_init(void)
{
	on_proc_exit(flush_at_exit, (Datum) 0);
}

static void
check_cache_valid(void)
{
	uint64		gen = ti_registry_generation();

	if (gen != cache_gen)
	{
		ti_keys_flush();
		cache_gen = gen;
	}
}

static Oid
data_keys_relid(void)
{
	Oid			relid = ti_ext_relid("data_keys");

	if (!OidIsValid(relid))
		elog(ERROR, "tenant_iso.data_keys is missing");
	return relid;
}

static void
crypto_failed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
			 errmsg("decryption failed"),
			 errdetail("The value is not a ciphertext of this tenant and context, or it was altered.")));
}

/*
 * Put k first, moving cache[0 .. n-1] one place down.  A loop, not
 * memmove: under _FORTIFY_SOURCE valgrind mistakes that memmove for an
 * overlapping memcpy.
 */
static void
shift_in(CachedKey *k, int n)
{
	int			j;

	for (j = n; j > 0; j--)
		cache[j] = cache[j - 1];
	cache[0] = k;
}

static void
add_to_cache(const char *tenant, uint32 version, const char *state,
			 const uint8 *wrapped, size_t wrapped_len, const uint8 *kek)
{
	CachedKey  *k;
	uint8		dek[TI_KEY_LEN];
	uint8		aes[TI_KEY_LEN];

	if (n_cached >= MAX_CACHED_KEYS)
	{
		/* evict the least recently used entry */
		slot_free(cache[--n_cached]);
		cache[n_cached] = NULL;
		stats.evictions++;
	}
	k = slot_alloc();
	strlcpy(k->tenant, tenant, sizeof(k->tenant));
	k->version = version;
	k->destroyed = (strcmp(state, "destroyed") == 0 || wrapped == NULL);
	k->active = (strcmp(state, "active") == 0);
	if (!k->destroyed)
	{
		static const char salt[] = "tenant_iso blind index";

		if (ti_unwrap_key(kek, tenant, version, wrapped, wrapped_len, dek) != 0)
		{
			slot_free(k);
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
					 errmsg("data key %u of tenant \"%s\" cannot be unwrapped with the current master key",
							version, tenant),
					 errhint("If the master key was changed, set tenant_iso.previous_master_key_command and run tenant_iso.rewrap_keys().")));
		}
		if (ti_hkdf_sha256(dek, TI_KEY_LEN, (const uint8 *) aes_label, sizeof(aes_label) - 1,
						   NULL, 0, aes, TI_KEY_LEN) == 0)
		{
			k->enc = ti_aead_new(aes, 1);
			k->dec = ti_aead_new(aes, 0);
		}
		k->dec_legacy = ti_aead_new(dek, 0);
		ti_wipe(aes, sizeof(aes));
		if (k->enc == NULL || k->dec == NULL || k->dec_legacy == NULL ||
			ti_hkdf_sha256(dek, TI_KEY_LEN, (const uint8 *) salt, sizeof(salt) - 1,
						   NULL, 0, k->blind, TI_KEY_LEN) != 0)
		{
			ti_wipe(dek, sizeof(dek));
			slot_free(k);
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not set up the cipher for a data key")));
		}
		ti_wipe(dek, sizeof(dek));
	}
	shift_in(k, n_cached);
	n_cached++;
}

/* Look a key up in the cache; a hit becomes the most recently used. */
static CachedKey *
cached(const char *tenant, uint32 version, bool want_active)
{
	int			i;

	for (i = 0; i < n_cached; i++)
	{
		CachedKey  *k = cache[i];

		if (strcmp(k->tenant, tenant) == 0 &&
			(want_active ? k->active : k->version == version))
		{
			if (i > 0)
			{
				shift_in(k, i);
			}
			return k;
		}
	}
	return NULL;
}

/*
 * Find one key of a tenant (a version, or the active one), loading just
 * that row on a miss.  *has_keys tells whether the tenant has any key at
 * all, so that "none yet" and "all destroyed" can be told apart.
 */
static CachedKey *
find_key_ext(const char *tenant, uint32 version, bool want_active, bool *has_keys)
{
	CachedKey  *k;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	uint8		kek[TI_KEY_LEN];
	volatile bool have_kek = false;
	ScanKeyData skey[2];

	check_cache_valid();
	k = cached(tenant, version, want_active);
	if (k != NULL)
	{
		stats.hits++;
		if (has_keys)
			*has_keys = true;
		return k;
	}
	stats.misses++;
	if (has_keys)
		*has_keys = false;

	/*
	 * An index lookup on the primary key (tenant_id, version): the rows of
	 * this tenant only, or just the one version.  The scan keys carry the
	 * index's own collation, as a btree descent on text needs.
	 */
	rel = table_open(data_keys_relid(), AccessShareLock);
	{
		Oid			indexoid = ti_primary_key_index(rel);
		Relation	idx;
		Oid			coll;

		if (!OidIsValid(indexoid))
			elog(ERROR, "tenant_iso.data_keys has no primary key");
		idx = index_open(indexoid, AccessShareLock);
		coll = idx->rd_indcollation[0];
		index_close(idx, AccessShareLock);
		ScanKeyEntryInitialize(&skey[0], 0, Anum_data_keys_tenant_id, BTEqualStrategyNumber, TEXTOID,
							   coll, F_TEXTEQ, CStringGetTextDatum(tenant));
		ScanKeyEntryInitialize(&skey[1], 0, Anum_data_keys_version, BTEqualStrategyNumber, INT4OID,
							   InvalidOid, F_INT4EQ, Int32GetDatum((int32) version));
		scan = systable_beginscan(rel, indexoid, true, NULL, want_active ? 1 : 2, skey);
	}
	PG_TRY();
	{
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			TupleDesc	desc = RelationGetDescr(rel);
			bool		isnull;
			char	   *t = TextDatumGetCString(heap_getattr(tup, Anum_data_keys_tenant_id, desc, &isnull));
			uint32		v;
			char	   *state;
			bytea	   *wrapped = NULL;
			Datum		w;

			stats.rows_read++;
			if (strcmp(t, tenant) != 0)
				continue;
			if (has_keys)
				*has_keys = true;
			v = DatumGetInt32(heap_getattr(tup, Anum_data_keys_version, desc, &isnull));
			state = TextDatumGetCString(heap_getattr(tup, Anum_data_keys_state, desc, &isnull));
			if (want_active ? strcmp(state, "active") != 0 : v != version)
				continue;
			w = heap_getattr(tup, Anum_data_keys_wrapped, desc, &isnull);
			if (!isnull)
				wrapped = DatumGetByteaPP(w);
			if (wrapped && !have_kek)
			{
				ti_derive_key("kek", kek);
				have_kek = true;
			}
			add_to_cache(tenant, v, state,
						 wrapped ? (uint8 *) VARDATA_ANY(wrapped) : NULL,
						 wrapped ? VARSIZE_ANY_EXHDR(wrapped) : 0, kek);
			break;
		}
	}
	PG_FINALLY();
	{
		ti_wipe(kek, sizeof(kek));
	}
	PG_END_TRY();
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	k = cached(tenant, version, want_active);
	return k;
}

static CachedKey *
find_key(const char *tenant, uint32 version, bool want_active)
{
	return find_key_ext(tenant, version, want_active, NULL);
}

/*
 * Insert a new wrapped key as the extension's owner (the caller may be a
 * tenant without rights on data_keys).  With retire_current, the tenant's
 * active key is retired first.  Returns the new version.
 */
static uint32
store_new_key(const char *tenant, bool retire_current)
{
	uint8		dek[TI_KEY_LEN];
	uint8		nonce[TI_ENV_NONCE];
	uint8		kek[TI_KEY_LEN];
	bytea	   *wrapped = palloc(VARHDRSZ + TI_WRAPPED_LEN);
	Oid			save_userid;
	int			save_sec;
	Oid			owner = ti_rel_owner(data_keys_relid());
	uint32		version = 0;
	int			rc;
	int			nestlevel;
	Oid			argtypes[3] = {TEXTOID, INT4OID, BYTEAOID};
	Datum		values[3];

	if (RAND_bytes(dek, sizeof(dek)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a data key")));

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nestlevel = ti_pin_search_path();
	PG_TRY();
	{
		SPI_connect();
		values[0] = CStringGetTextDatum(tenant);
		rc = SPI_execute_with_args("SELECT pg_catalog.int4pl(coalesce(pg_catalog.max(version), 0::pg_catalog.int4), 1::pg_catalog.int4) "
								   "FROM tenant_iso.data_keys WHERE tenant_id OPERATOR(pg_catalog.=) $1::pg_catalog.text",
								   1, argtypes, values, NULL, false, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not read data keys");
		{
			bool		isnull;

			version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}

		ti_derive_key("kek", kek);
		rc = ti_wrap_key(kek, nonce, tenant, version, dek, (uint8 *) VARDATA(wrapped));
		ti_wipe(kek, sizeof(kek));
		ti_wipe(dek, sizeof(dek));
		if (rc != 0)
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not wrap a data key")));
		SET_VARSIZE(wrapped, VARHDRSZ + TI_WRAPPED_LEN);

		if (retire_current)
		{
			rc = SPI_execute_with_args("UPDATE tenant_iso.data_keys SET state = 'retired', retired_at = pg_catalog.now() "
									   "WHERE tenant_id OPERATOR(pg_catalog.=) $1::pg_catalog.text "
									   "AND state OPERATOR(pg_catalog.=) 'active'",
									   1, argtypes, values, NULL, false, 0);
			if (rc != SPI_OK_UPDATE)
				elog(ERROR, "could not retire the active data key");
		}
		values[1] = Int32GetDatum((int32) version);
		values[2] = PointerGetDatum(wrapped);
		/*
		 * A concurrent first use may have created the key already: then
		 * nothing is inserted (after waiting for it to commit), and the
		 * caller reloads and finds that one.  Rotation must insert.
		 */
		rc = SPI_execute_with_args(retire_current ?
								   "INSERT INTO tenant_iso.data_keys (tenant_id, version, state, wrapped) "
								   "VALUES ($1, $2, 'active', $3)" :
								   "INSERT INTO tenant_iso.data_keys (tenant_id, version, state, wrapped) "
								   "VALUES ($1, $2, 'active', $3) ON CONFLICT DO NOTHING",
								   3, argtypes, values, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not store a data key");
		SPI_finish();
	}
	PG_FINALLY();
	{
		ti_wipe(dek, sizeof(dek));
		ti_unpin_search_path(nestlevel);
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	return version;
}

static const char *
require_tenant(void)
{
	const char *t;

	if (!ti_extension_present())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"tenant_iso\" is not installed in this database")));
	t = ti_effective_tenant();
	if (t == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant context"),
				 errhint("Encryption uses the current tenant's key: connect as a tenant member role, or call tenant_iso.set_tenant() first.")));
	if (ti_tenant_status(t) != TI_TENANT_ACTIVE)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("tenant \"%s\" is not active", t)));
	return t;
}

static void
key_destroyed(const char *tenant)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("key destroyed"),
			 errdetail("The data keys of tenant \"%s\" were destroyed by shred_tenant(); its ciphertexts cannot be opened.", tenant)));
}

/* The tenant's active key, created on first use. */
static CachedKey *
active_key(const char *tenant)
{
	bool		has_keys;
	CachedKey  *k = find_key_ext(tenant, 0, true, &has_keys);

	if (k != NULL)
		return k;
	if (has_keys)
		key_destroyed(tenant);
	store_new_key(tenant, false);
	CommandCounterIncrement();
	ti_keys_flush();
	k = find_key(tenant, 0, true);
	if (k == NULL)
		elog(ERROR, "data key creation for tenant \"%s\" did not take effect", tenant);
	return k;
}

/*
 * Nonces come from a per-process pool of CSPRNG output (one RAND_bytes
 * call per 340 nonces instead of one per row).  The pool remembers the
 * process that filled it, so a forked child never reuses its parent's.
 */
static uint8 nonce_pool[TI_ENV_NONCE * 340];
static int	nonce_pos = sizeof(nonce_pool);
static int	nonce_pid = 0;

static void
next_nonce(uint8 *out)
{
	if (nonce_pid != MyProcPid || nonce_pos + TI_ENV_NONCE > (int) sizeof(nonce_pool))
	{
		if (RAND_bytes(nonce_pool, sizeof(nonce_pool)) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random nonce")));
		nonce_pos = 0;
		nonce_pid = MyProcPid;
	}
	memcpy(out, nonce_pool + nonce_pos, TI_ENV_NONCE);
	/* a nonce is used once: clear it from the pool */
	memset(nonce_pool + nonce_pos, 0, TI_ENV_NONCE);
	nonce_pos += TI_ENV_NONCE;
}

/*
 * Seal data for a tenant, context and (row_id != NULL) row, under the
 * tenant's active key, in envelope format 2.
 */
bytea *
ti_encrypt_for(const char *tenant, const char *context, size_t context_len,
			   const char *row_id, size_t row_id_len,
			   const uint8 *data, size_t len)
{
	CachedKey  *k = active_key(tenant);
	uint8		nonce[TI_ENV_NONCE];
	bytea	   *out;

	if (len > MaxAllocSize - VARHDRSZ - TI_ENV_OVERHEAD)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value too large to encrypt")));
	out = palloc(VARHDRSZ + len + TI_ENV_OVERHEAD);
	next_nonce(nonce);
	if (ti_env_seal(k->enc, k->version, nonce, tenant, strlen(tenant),
					context, context_len, row_id, row_id_len,
					data, len, (uint8 *) VARDATA(out)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("encryption failed")));
	SET_VARSIZE(out, VARHDRSZ + len + TI_ENV_OVERHEAD);
	return out;
}

/*
 * Open an envelope for a tenant, context and (row_id != NULL) row.  Returns
 * NULL when the value does not open (malformed, a key version the tenant
 * does not have, wrong tenant, context or row, altered): the caller decides
 * whether that is an error (decrypt) or a value to skip and report
 * (reencrypt).  A destroyed key always raises 55000.
 */
bytea *
ti_try_decrypt_for(const char *tenant, const char *context, size_t context_len,
				   const char *row_id, size_t row_id_len,
				   const uint8 *data, size_t len)
{
	ti_env		env;
	CachedKey  *k;
	bytea	   *out;

	if (ti_env_parse(data, len, &env) != 0)
		return NULL;
	k = find_key(tenant, env.key_version, false);
	if (k == NULL)
		return NULL;
	if (k->destroyed)
		key_destroyed(tenant);
	out = palloc(VARHDRSZ + env.ciphertext_len);
	if (ti_env_open(env.format == TI_ENV_VERSION ? k->dec : k->dec_legacy,
					&env, tenant, strlen(tenant), context, context_len,
					row_id, row_id_len, (uint8 *) VARDATA(out)) != 0)
	{
		pfree(out);
		return NULL;
	}
	SET_VARSIZE(out, VARHDRSZ + env.ciphertext_len);
	return out;
}

bytea *
ti_decrypt_for(const char *tenant, const char *context, size_t context_len,
			   const char *row_id, size_t row_id_len,
			   const uint8 *data, size_t len)
{
	bytea	   *out = ti_try_decrypt_for(tenant, context, context_len,
										 row_id, row_id_len, data, len);

	if (out == NULL)
		crypto_failed();
	return out;
}

/* Envelope format of a value, or -1 if it is not an envelope. */
int
ti_envelope_format(const uint8 *data, size_t len)
{
	ti_env		env;

	if (ti_env_parse(data, len, &env) != 0)
		return -1;
	return env.format;
}

/* Key version of an envelope, or -1 if it is not one. */
int64
ti_envelope_key_version(const uint8 *data, size_t len)
{
	ti_env		env;

	if (ti_env_parse(data, len, &env) != 0)
		return -1;
	return env.key_version;
}

/* Active key version of a tenant: 0 if none, -1 if all destroyed. */
int64
ti_active_version(const char *tenant)
{
	bool		has_keys;
	CachedKey  *k = find_key_ext(tenant, 0, true, &has_keys);

	if (k)
		return k->version;
	return has_keys ? -1 : 0;
}

/*
 * Whether a tenant has a key of this version, and whether it is destroyed.
 * An unknown version is not "destroyed": reencrypt() reports such values
 * instead of skipping them silently.
 */
TiKeyState
ti_key_version_state(const char *tenant, uint32 version)
{
	CachedKey  *k = find_key(tenant, version, false);

	if (k == NULL)
		return TI_KEY_UNKNOWN;
	return k->destroyed ? TI_KEY_DESTROYED : TI_KEY_USABLE;
}

static text *
context_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? cstring_to_text("") : PG_GETARG_TEXT_PP(argno);
}

/*
 * The optional third argument, row_id, binds a ciphertext to its row (it
 * goes into the associated data).  Passing it as NULL is an error rather
 * than "no binding": a NULL key column must not silently drop the binding.
 */
static text *
row_id_arg(FunctionCallInfo fcinfo)
{
	if (PG_NARGS() < 3)
		return NULL;
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("row_id must not be null"),
				 errhint("Call the two-argument form for a value that is not bound to a row.")));
	return PG_GETARG_TEXT_PP(2);
}

PG_FUNCTION_INFO_V1(ti_encrypt);
Datum
ti_encrypt(PG_FUNCTION_ARGS)
{
	bytea	   *data;
	text	   *ctx;
	text	   *row;
	const char *tenant;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	data = PG_GETARG_BYTEA_PP(0);	/* text and bytea share a layout */
	ctx = context_arg(fcinfo, 1);
	row = row_id_arg(fcinfo);
	tenant = require_tenant();
	PG_RETURN_BYTEA_P(ti_encrypt_for(tenant, VARDATA_ANY(ctx), VARSIZE_ANY_EXHDR(ctx),
									 row ? VARDATA_ANY(row) : NULL, row ? VARSIZE_ANY_EXHDR(row) : 0,
									 (uint8 *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data)));
}

PG_FUNCTION_INFO_V1(ti_decrypt);
Datum
ti_decrypt(PG_FUNCTION_ARGS)
{
	bytea	   *data;
	text	   *ctx;
	text	   *row;
	const char *tenant;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	data = PG_GETARG_BYTEA_PP(0);
	ctx = context_arg(fcinfo, 1);
	row = row_id_arg(fcinfo);
	tenant = require_tenant();
	PG_RETURN_BYTEA_P(ti_decrypt_for(tenant, VARDATA_ANY(ctx), VARSIZE_ANY_EXHDR(ctx),
									 row ? VARDATA_ANY(row) : NULL, row ? VARSIZE_ANY_EXHDR(row) : 0,
									 (uint8 *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data)));
}

PG_FUNCTION_INFO_V1(ti_decrypt_text);
Datum
ti_decrypt_text(PG_FUNCTION_ARGS)
{
	bytea	   *out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	out = DatumGetByteaPP(ti_decrypt(fcinfo));
	if (!pg_verifymbstr(VARDATA_ANY(out), VARSIZE_ANY_EXHDR(out), true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("decrypted value is not valid text in the database encoding"),
				 errhint("Use tenant_iso.decrypt() for binary values.")));
	PG_RETURN_TEXT_P((text *) out);
}

/*
 * _key_cache_stats(): this backend's key cache, for tests and diagnosis.
 * No key material: counts, and the address of the slot pool so that a
 * test can find its mapping (and its MADV_DONTDUMP flag) in smaps.
 */
PG_FUNCTION_INFO_V1(ti_key_cache_stats);
Datum
ti_key_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	check_cache_valid();
	values[0] = Int32GetDatum(n_cached);
	values[1] = Int32GetDatum(MAX_CACHED_KEYS);
	values[2] = Int64GetDatum(stats.hits);
	values[3] = Int64GetDatum(stats.misses);
	values[4] = Int64GetDatum(stats.evictions);
	values[5] = Int64GetDatum(stats.rows_read);
	if (pool != NULL)
		values[6] = CStringGetTextDatum(psprintf("%lx", (unsigned long) (uintptr_t) pool));
	else
		nulls[6] = true;
	values[7] = BoolGetDatum(pool_dontdump);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

PG_FUNCTION_INFO_V1(ti_blind_index);
Datum
ti_blind_index(PG_FUNCTION_ARGS)
{
	bytea	   *data;
	text	   *ctx;
	int32		nbytes = PG_ARGISNULL(2) ? 16 : PG_GETARG_INT32(2);
	const char *tenant;
	CachedKey  *k;
	uint8		subkey[TI_MAC_LEN];
	uint8		mac[TI_MAC_LEN];
	bytea	   *out;
	static const char label[] = "tenant_iso blind index context/v1:";

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (nbytes < 1 || nbytes > TI_MAC_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("blind index length must be between 1 and %d bytes", TI_MAC_LEN)));
	data = PG_GETARG_BYTEA_PP(0);
	ctx = context_arg(fcinfo, 1);
	tenant = require_tenant();
	k = active_key(tenant);

	if (ti_hmac_sha256(k->blind, TI_KEY_LEN, (const uint8 *) label, sizeof(label) - 1,
					   (uint8 *) VARDATA_ANY(ctx), VARSIZE_ANY_EXHDR(ctx), subkey) != 0 ||
		ti_hmac_sha256(subkey, TI_MAC_LEN, (uint8 *) VARDATA_ANY(data),
					   VARSIZE_ANY_EXHDR(data), NULL, 0, mac) != 0)
	{
		ti_wipe(subkey, sizeof(subkey));
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("blind index computation failed")));
	}
	ti_wipe(subkey, sizeof(subkey));
	out = palloc(VARHDRSZ + nbytes);
	memcpy(VARDATA(out), mac, nbytes);
	SET_VARSIZE(out, VARHDRSZ + nbytes);
	PG_RETURN_BYTEA_P(out);
}

static char *
tenant_arg(FunctionCallInfo fcinfo)
{
	char	   *t;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid tenant id")));
	t = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!ti_tenant_id_valid(t, strlen(t)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid tenant id")));
	if (ti_tenant_status(t) == TI_TENANT_UNKNOWN)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" does not exist", t)));
	return t;
}

PG_FUNCTION_INFO_V1(ti_rotate_tenant_key);
Datum
ti_rotate_tenant_key(PG_FUNCTION_ARGS)
{
	char	   *tenant = tenant_arg(fcinfo);
	uint32		version = store_new_key(tenant, true);

	CommandCounterIncrement();
	ti_keys_flush();
	PG_RETURN_INT32((int32) version);
}

/*
 * Rewrap every data key that opens under the previous master key with the
 * current one.  Keys already under the current key are left alone; a key
 * that opens under neither aborts the whole operation.
 */
PG_FUNCTION_INFO_V1(ti_rewrap_keys);
Datum
ti_rewrap_keys(PG_FUNCTION_ARGS)
{
	uint8		kek[TI_KEY_LEN];
	uint8		old_kek[TI_KEY_LEN];
	volatile bool have_old = false;
	volatile int rewrapped = 0;
	Oid			save_userid;
	int			save_sec;
	uint64		i;
	int			nestlevel;
	Oid			argtypes[3] = {BYTEAOID, TEXTOID, INT4OID};

	ti_derive_key("kek", kek);
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(ti_rel_owner(data_keys_relid()),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	nestlevel = ti_pin_search_path();
	SPI_connect();
	PG_TRY();
	{
		SPITupleTable *tt;
		uint64		n;

		if (SPI_execute("SELECT tenant_id, version, wrapped FROM tenant_iso.data_keys "
						"WHERE wrapped IS NOT NULL ORDER BY 1, 2 FOR UPDATE", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read data keys");
		tt = SPI_tuptable;
		n = SPI_processed;
		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			bool		isnull;
			char	   *tenant = TextDatumGetCString(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
			uint32		version = DatumGetInt32(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
			bytea	   *w = DatumGetByteaPP(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
			uint8		dek[TI_KEY_LEN];
			uint8		nonce[TI_ENV_NONCE];
			bytea	   *nw;
			Datum		values[3];

			if (ti_unwrap_key(kek, tenant, version, (uint8 *) VARDATA_ANY(w),
							  VARSIZE_ANY_EXHDR(w), dek) == 0)
			{
				ti_wipe(dek, sizeof(dek));
				continue;
			}
			if (!have_old)
			{
				ti_derive_previous_key("kek", old_kek);
				have_old = true;
			}
			if (ti_unwrap_key(old_kek, tenant, version, (uint8 *) VARDATA_ANY(w),
							  VARSIZE_ANY_EXHDR(w), dek) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
						 errmsg("data key %u of tenant \"%s\" opens under neither the current nor the previous master key",
								version, tenant)));
			nw = palloc(VARHDRSZ + TI_WRAPPED_LEN);
			if (RAND_bytes(nonce, sizeof(nonce)) != 1 ||
				ti_wrap_key(kek, nonce, tenant, version, dek, (uint8 *) VARDATA(nw)) != 0)
			{
				ti_wipe(dek, sizeof(dek));
				ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not wrap a data key")));
			}
			ti_wipe(dek, sizeof(dek));
			SET_VARSIZE(nw, VARHDRSZ + TI_WRAPPED_LEN);
			values[0] = PointerGetDatum(nw);
			values[1] = CStringGetTextDatum(tenant);
			values[2] = Int32GetDatum((int32) version);
			if (SPI_execute_with_args("UPDATE tenant_iso.data_keys SET wrapped = $1 "
									  "WHERE tenant_id OPERATOR(pg_catalog.=) $2::pg_catalog.text "
									  "AND version OPERATOR(pg_catalog.=) $3::pg_catalog.int4",
									  3, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not store a rewrapped data key");
			rewrapped++;
		}
	}
	PG_FINALLY();
	{
		ti_wipe(kek, sizeof(kek));
		ti_wipe(old_kek, sizeof(old_kek));
		ti_unpin_search_path(nestlevel);
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	SPI_finish();
	ti_keys_flush();
	PG_RETURN_INT32(rewrapped);
}

PG_FUNCTION_INFO_V1(ti_key_version);
Datum
ti_key_version(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	int64		v = ti_envelope_key_version((uint8 *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data));

	if (v < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(v);
}
