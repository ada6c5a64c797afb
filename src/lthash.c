/*
 * src/lthash.c
 *	  Lane arithmetic for the additive row digests (see lthash.h).
 *
 * Plain C; the EVP_MD objects are fetched once per process and reused.
 */
#include "lthash.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

static EVP_MD *blake = NULL;
static EVP_MD_CTX *mdctx = NULL;

/* keyed BLAKE2b-512 (format 2): the MAC context keeps the last key */
static EVP_MAC *blake_mac = NULL;
static EVP_MAC_CTX *macctx = NULL;
static uint8_t mac_key[TI_DIGEST_KEY_LEN];
static int	mac_keyed = 0;

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

int
ti_lthash_row_keyed(const uint8_t key[TI_DIGEST_KEY_LEN], const uint8_t *enc, size_t len,
					uint64_t lanes[TI_LANES])
{
	uint8_t		buf[TI_LANES_BYTES];
	size_t		outlen = 0;
	int			i;

	if (blake_mac == NULL)
	{
		blake_mac = EVP_MAC_fetch(NULL, "BLAKE2BMAC", NULL);
		if (blake_mac == NULL)
			return -1;
		macctx = EVP_MAC_CTX_new(blake_mac);
		if (macctx == NULL)
			return -1;
	}
	if (!mac_keyed || memcmp(mac_key, key, TI_DIGEST_KEY_LEN) != 0)
	{
		size_t		size = TI_LANES_BYTES;
		OSSL_PARAM	params[2];

		params[0] = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size);
		params[1] = OSSL_PARAM_construct_end();
		mac_keyed = 0;
		if (EVP_MAC_init(macctx, key, TI_DIGEST_KEY_LEN, params) != 1)
			return -1;
		memcpy(mac_key, key, TI_DIGEST_KEY_LEN);
		mac_keyed = 1;
	}
	else if (EVP_MAC_init(macctx, NULL, 0, NULL) != 1)
		return -1;
	if (EVP_MAC_update(macctx, enc, len) != 1 ||
		EVP_MAC_final(macctx, buf, &outlen, sizeof(buf)) != 1 || outlen != TI_LANES_BYTES)
		return -1;
	for (i = 0; i < TI_LANES; i++)
		lanes[i] = load_le64(buf + 8 * i);
	return 0;
}

void
ti_lthash_forget_key(void)
{
	memset(mac_key, 0, sizeof(mac_key));
	mac_keyed = 0;
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
