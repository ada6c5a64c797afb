/*
 * src/digest.h
 *	  Row hashing and live bucket digests, shared by digest.c and peer.c.
 */
#ifndef TI_DIGEST_H
#define TI_DIGEST_H

#include "postgres.h"

#include "lthash.h"
#include "nodes/parsenodes.h"
#include "storage/itemptr.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/hsearch.h"

#define TI_STORED_BUCKETS 64
#define TI_DIFF_BUCKETS 512

typedef struct BucketKey
{
	char		tenant[NAMEDATALEN];
	int32		bucket;
} BucketKey;

typedef struct BucketEntry
{
	BucketKey	key;
	ti_lthash	digest;
} BucketEntry;

/* Live digests of a table (all leaves), per (tenant, bucket mod nbuckets). */
extern HTAB *ti_live_digests(Oid relid, List *tenants, int nbuckets);

extern char *ti_qualified_name(Oid relid);

/*
 * Refuse (55000, 42501) a table that is not tracked (when tracked is true)
 * or that the caller may not read.
 */
extern void ti_digest_check_access(Oid relid, bool tracked);
extern bool ti_peer_local_call;	/* set by peer.c around its local SPI */

/*
 * Tenant, 16-byte row hash (hex, 33 bytes) and diff bucket (of
 * TI_DIFF_BUCKETS) of the row at (leaf, tid).
 */
extern bool ti_row_hash_at(Oid root, Oid leaf, ItemPointer tid, char *tenant, char *hex,
						   int32 *bucket);

/* The utility hook, after ALTER TABLE: rebuild a tracked table's digests if needed. */
extern void ti_digest_after_alter(AlterTableStmt *stmt);

#endif
