/*
 * src/canonical.h
 *	  The canonical row encoder of digests (canonical.c, which specifies the
 *	  byte format), used by digest.c.
 */
#ifndef TI_CANONICAL_H
#define TI_CANONICAL_H

#include "postgres.h"

#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "utils/rel.h"

#include "lthash.h"

/* How one relation's rows are encoded and hashed (format 1 or 2). */
typedef struct RowHasher RowHasher;

/*
 * A hasher for rel, whose rows are encoded in the column order of root (the
 * tracked table), in the memory context current at the call.
 */
extern RowHasher *ti_make_hasher(Relation rel, Oid root, int format);
extern int	ti_hasher_format(const RowHasher *h);
extern void ti_hasher_detach(RowHasher *h);
extern void ti_hasher_check_key(RowHasher *h, const uint8 *digest_subkey);

/*
 * Hash one row: its tenant (NAMEDATALEN bytes), the hash of its primary
 * key (the bucket is that modulo the number of buckets) and its lanes.
 */
extern void ti_hash_slot(RowHasher *h, TupleTableSlot *slot, char *tenant,
						 uint64 *keyhash, uint64 lanes[TI_LANES]);
/* Only the tenant of a (fully deformed) row. */
extern void ti_slot_tenant(RowHasher *h, TupleTableSlot *slot, char *tenant);

/* Pin client_encoding to the database encoding while hashing; returns the old one. */
extern int	ti_pin_encoding(void);
extern void ti_unpin_encoding(int saved);

/* A slot index for per-(tenant, bucket) memos; not part of the format. */
static inline uint32
ti_tenant_bucket_index(const char *tenant, int32 bucket)
{
	return hash_combine(hash_bytes((const unsigned char *) tenant, strlen(tenant)),
						(uint32) bucket);
}

#endif
