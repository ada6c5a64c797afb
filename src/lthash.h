/*
 * src/lthash.h
 *	  An additive, order-independent multiset hash in the style of LtHash
 *	  (plain C, OpenSSL EVP only, no backend headers).
 *
 * A row's encoding is hashed with BLAKE2b-512 into TI_LANES 64-bit lanes;
 * a digest is the lane-wise sum modulo 2^64 of its rows' lanes plus a row
 * count.  Adding and removing rows is addition and subtraction, so a
 * digest can be maintained from deltas in any order and combined across
 * buckets.  8 lanes = 512 bits.
 */
#ifndef TI_LTHASH_H
#define TI_LTHASH_H

#include <stddef.h>
#include <stdint.h>

#define TI_LANES 8
#define TI_LANES_BYTES (TI_LANES * 8)

typedef struct ti_lthash
{
	int64_t		rows;
	uint64_t	lane[TI_LANES];
} ti_lthash;

/* Lanes of one encoded row; 0 or -1. */
extern int	ti_lthash_row(const uint8_t *enc, size_t len, uint64_t lanes[TI_LANES]);

/*
 * Format 2: a keyed pseudo-random function from an encoded row to its lanes
 * (SipHash-2-4-128 under the first 16 key bytes, expanded by AES-256-CTR
 * under the other 32), so that only holders of the key compute lanes.
 * ti_rowprf_new() returns NULL on an OpenSSL failure.
 */
#define TI_ROWPRF_KEY_LEN 48
typedef struct ti_rowprf ti_rowprf;
extern ti_rowprf *ti_rowprf_new(const uint8_t key[TI_ROWPRF_KEY_LEN]);
extern void ti_rowprf_free(ti_rowprf *p);
extern int	ti_rowprf_lanes(ti_rowprf *p, const uint8_t *enc, size_t len,
							uint64_t lanes[TI_LANES]);

/* A 64-bit FNV-1a hash of an encoded key (bucket selection only). */
extern uint64_t ti_key_hash(const uint8_t *enc, size_t len);

extern void ti_lthash_add(ti_lthash *d, const uint64_t lanes[TI_LANES], int sign);
extern void ti_lthash_merge(ti_lthash *d, const ti_lthash *other, int sign);

/* Lanes to and from 128 little-endian bytes. */
extern void ti_lthash_pack(const ti_lthash *d, uint8_t out[TI_LANES_BYTES]);
extern void ti_lthash_unpack_add(ti_lthash *d, const uint8_t in[TI_LANES_BYTES], int64_t rows);

/* Short printable fingerprint of a digest: 32 hex chars + NUL. */
extern void ti_lthash_fingerprint(const ti_lthash *d, char out[33]);

extern int	ti_lthash_equal(const ti_lthash *a, const ti_lthash *b);

#endif
