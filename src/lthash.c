/*
 * src/lthash.c
 *	  The hash primitives of the additive row digests (see lthash.h): the
 *	  format-1 row hash (BLAKE2b-512) and key hash (FNV-1a), the keyed
 *	  format-2 row PRF (SipHash-2-4-128 expanded by AES-256-CTR), and the
 *	  lane arithmetic (sums modulo 2^64, packing, fingerprints).  What the
 *	  hashed bytes are is specified in canonical.c.
 *
 * Plain C with no PostgreSQL dependency; the EVP_MD objects are fetched
 * once per process and reused, and a row PRF's OpenSSL contexts belong to
 * its caller (ti_rowprf_new / ti_rowprf_free).
 */
#include "lthash.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

static EVP_MD *blake = NULL;
static EVP_MD_CTX *mdctx = NULL;

/* BLAKE2b-512 of in; out holds 64 bytes. */
static int
blake2b(const uint8_t *in, size_t len, uint8_t *out)
{
	unsigned int outlen = 0;

	if (blake == NULL)
	{
		blake = EVP_MD_fetch(NULL, "BLAKE2B-512", NULL);
		mdctx = EVP_MD_CTX_new();
		if (blake == NULL || mdctx == NULL)
			return -1;
	}
	if (EVP_DigestInit_ex(mdctx, blake, NULL) != 1 ||
		EVP_DigestUpdate(mdctx, in, len) != 1 ||
		EVP_DigestFinal_ex(mdctx, out, &outlen) != 1 || outlen != 64)
		return -1;
	return 0;
}

static uint64_t
load_le64(const uint8_t *p)
{
	uint64_t	v = 0;
	int			i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
store_le64(uint8_t *p, uint64_t v)
{
	int			i;

	for (i = 0; i < 8; i++)
	{
		p[i] = (uint8_t) v;
		v >>= 8;
	}
}

int
ti_lthash_row(const uint8_t *enc, size_t len, uint64_t lanes[TI_LANES])
{
	uint8_t		buf[TI_LANES_BYTES];
	int			i;

	if (blake2b(enc, len, buf) != 0)
		return -1;
	for (i = 0; i < TI_LANES; i++)
		lanes[i] = load_le64(buf + 8 * i);
	return 0;
}

/*
 * Format 2 row lanes: AES-256-CTR keystream (64 bytes) under k2, with the
 * 128-bit SipHash-2-4 of the encoded row under k1 as the initial counter block.
 * SipHash is a PRF on variable-length input; CTR mode under an independent
 * key turns its tag into 512 pseudo-random bits (the structure of AES-SIV's
 * S2V-then-CTR).  Both run in a fraction of the time of a keyed BLAKE2b.
 */
struct ti_rowprf
{
	EVP_MAC_CTX *sip;
	EVP_CIPHER_CTX *ctr;
};

static EVP_MAC *siphash = NULL;
static EVP_CIPHER *aes_ecb = NULL;

ti_rowprf *
ti_rowprf_new(const uint8_t key[TI_ROWPRF_KEY_LEN])
{
	ti_rowprf  *p;
	size_t		size = 16;
	OSSL_PARAM	params[2];

	if (siphash == NULL && (siphash = EVP_MAC_fetch(NULL, "SIPHASH", NULL)) == NULL)
		return NULL;
	if (aes_ecb == NULL && (aes_ecb = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL)) == NULL)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->sip = EVP_MAC_CTX_new(siphash);
	p->ctr = EVP_CIPHER_CTX_new();
	params[0] = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size);
	params[1] = OSSL_PARAM_construct_end();
	if (p->sip == NULL || p->ctr == NULL ||
		EVP_MAC_CTX_set_params(p->sip, params) != 1 ||
		EVP_MAC_init(p->sip, key, 16, NULL) != 1 ||
		EVP_EncryptInit_ex(p->ctr, aes_ecb, NULL, key + 16, NULL) != 1 ||
		EVP_CIPHER_CTX_set_padding(p->ctr, 0) != 1)
	{
		ti_rowprf_free(p);
		return NULL;
	}
	return p;
}

void
ti_rowprf_free(ti_rowprf *p)
{
	if (p == NULL)
		return;
	EVP_MAC_CTX_free(p->sip);
	EVP_CIPHER_CTX_free(p->ctr);
	free(p);
}

int
ti_rowprf_lanes(ti_rowprf *p, const uint8_t *enc, size_t len, uint64_t lanes[TI_LANES])
{
	uint8_t		tag[16];
	uint8_t		ctr[TI_LANES_BYTES];
	uint8_t		buf[TI_LANES_BYTES];
	size_t		taglen = 0;
	int			outlen = 0;
	int			i;

	if (EVP_MAC_init(p->sip, NULL, 0, NULL) != 1 ||
		EVP_MAC_update(p->sip, enc, len) != 1 ||
		EVP_MAC_final(p->sip, tag, &taglen, sizeof(tag)) != 1 || taglen != 16)
		return -1;

	/*
	 * CTR mode by hand (the counter blocks tag, tag+1, ... with a 32-bit
	 * big-endian increment of the last word, as NIST SP 800-38A), through
	 * one ECB call: re-initialising a CTR context per row costs more than
	 * the encryption.
	 */
	for (i = 0; i < TI_LANES_BYTES / 16; i++)
	{
		uint32_t	c = ((uint32_t) tag[12] << 24) | ((uint32_t) tag[13] << 16) |
			((uint32_t) tag[14] << 8) | tag[15];

		c += (uint32_t) i;
		memcpy(ctr + 16 * i, tag, 12);
		ctr[16 * i + 12] = (uint8_t) (c >> 24);
		ctr[16 * i + 13] = (uint8_t) (c >> 16);
		ctr[16 * i + 14] = (uint8_t) (c >> 8);
		ctr[16 * i + 15] = (uint8_t) c;
	}
	if (EVP_EncryptUpdate(p->ctr, buf, &outlen, ctr, sizeof(ctr)) != 1 ||
		outlen != TI_LANES_BYTES)
		return -1;
	for (i = 0; i < TI_LANES; i++)
		lanes[i] = load_le64(buf + 8 * i);
	return 0;
}

uint64_t
ti_key_hash(const uint8_t *enc, size_t len)
{
	uint64_t	h = UINT64_C(14695981039346656037);
	size_t		i;

	for (i = 0; i < len; i++)
	{
		h ^= enc[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

void
ti_lthash_add(ti_lthash *d, const uint64_t lanes[TI_LANES], int sign)
{
	int			i;

	for (i = 0; i < TI_LANES; i++)
		d->lane[i] = sign > 0 ? d->lane[i] + lanes[i] : d->lane[i] - lanes[i];
	d->rows += sign > 0 ? 1 : -1;
}

void
ti_lthash_merge(ti_lthash *d, const ti_lthash *other, int sign)
{
	int			i;

	for (i = 0; i < TI_LANES; i++)
		d->lane[i] = sign > 0 ? d->lane[i] + other->lane[i] : d->lane[i] - other->lane[i];
	d->rows += sign > 0 ? other->rows : -other->rows;
}

void
ti_lthash_pack(const ti_lthash *d, uint8_t out[TI_LANES_BYTES])
{
	int			i;

	for (i = 0; i < TI_LANES; i++)
		store_le64(out + 8 * i, d->lane[i]);
}

void
ti_lthash_unpack_add(ti_lthash *d, const uint8_t in[TI_LANES_BYTES], int64_t rows)
{
	int			i;

	for (i = 0; i < TI_LANES; i++)
		d->lane[i] += load_le64(in + 8 * i);
	d->rows += rows;
}

void
ti_lthash_fingerprint(const ti_lthash *d, char out[33])
{
	uint8_t		buf[8 + TI_LANES_BYTES];
	uint8_t		fp[64];
	static const char hex[] = "0123456789abcdef";
	int			i;

	store_le64(buf, (uint64_t) d->rows);
	ti_lthash_pack(d, buf + 8);
	if (blake2b(buf, sizeof(buf), fp) != 0)
		memset(fp, 0, sizeof(fp));
	for (i = 0; i < 16; i++)
	{
		out[2 * i] = hex[fp[i] >> 4];
		out[2 * i + 1] = hex[fp[i] & 15];
	}
	out[32] = '\0';
}

int
ti_lthash_equal(const ti_lthash *a, const ti_lthash *b)
{
	return a->rows == b->rows && memcmp(a->lane, b->lane, sizeof(a->lane)) == 0;
}
