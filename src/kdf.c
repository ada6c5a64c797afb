/*
 * src/kdf.c
 *	  HKDF-SHA256, HMAC-SHA256 and small constant-time helpers.
 *
 * Plain C with no PostgreSQL dependency, so that it can be linked into the
 * fuzz targets and unit tests under test/.  Only the OpenSSL 3 EVP
 * interfaces are used, with CRYPTO_memcmp and OPENSSL_cleanse for the
 * constant-time comparison and the wiping.  Nothing here allocates memory that outlives a call,
 * and every temporary holding key material is wiped before return.
 */
#include "kdf.h"

#include <ctype.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

int
ti_hkdf_sha256(const uint8_t *ikm, size_t ikmlen,
			   const uint8_t *salt, size_t saltlen,
			   const uint8_t *info, size_t infolen,
			   uint8_t *out, size_t outlen)
{
	EVP_KDF    *kdf;
	EVP_KDF_CTX *kctx;
	OSSL_PARAM	params[5];
	OSSL_PARAM *p = params;
	int			rc = -1;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL)
		return -1;
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (kctx == NULL)
		return -1;

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) ikm, ikmlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, saltlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, infolen);
	*p = OSSL_PARAM_construct_end();

	if (EVP_KDF_derive(kctx, out, outlen, params) == 1)
		rc = 0;
	EVP_KDF_CTX_free(kctx);
	return rc;
}

int
ti_hmac_sha256(const uint8_t *key, size_t keylen,
			   const uint8_t *p1, size_t p1len,
			   const uint8_t *p2, size_t p2len,
			   uint8_t out[TI_MAC_LEN])
{
	static EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx;
	OSSL_PARAM	params[2];
	size_t		outlen = 0;
	int			rc = -1;

	if (mac == NULL)
	{
		mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		if (mac == NULL)
			return -1;
	}
	ctx = EVP_MAC_CTX_new(mac);
	if (ctx == NULL)
		return -1;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();

	if (EVP_MAC_init(ctx, key, keylen, params) == 1 &&
		EVP_MAC_update(ctx, p1, p1len) == 1 &&
		(p2len == 0 || EVP_MAC_update(ctx, p2, p2len) == 1) &&
		EVP_MAC_final(ctx, out, &outlen, TI_MAC_LEN) == 1 &&
		outlen == TI_MAC_LEN)
		rc = 0;
	EVP_MAC_CTX_free(ctx);
	return rc;
}

int
ti_ct_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void
ti_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
ti_parse_hex_key(const char *s, size_t len, uint8_t out[TI_KEY_LEN])
{
	size_t		start = 0,
				end = len,
				i;

	while (start < end && isspace((unsigned char) s[start]))
		start++;
	while (end > start && isspace((unsigned char) s[end - 1]))
		end--;
	if (end - start != 2 * TI_KEY_LEN)
		return -1;
	for (i = 0; i < TI_KEY_LEN; i++)
	{
		int			hi = hexval((unsigned char) s[start + 2 * i]);
		int			lo = hexval((unsigned char) s[start + 2 * i + 1]);

		if (hi < 0 || lo < 0)
		{
			ti_wipe(out, TI_KEY_LEN);
			return -1;
		}
		out[i] = (uint8_t) ((hi << 4) | lo);
	}
	return 0;
}
