/*
 * test/fuzz/fuzz_envelope.c
 *	  libFuzzer target for the envelope parser and the open path
 *	  (src/envelope.c, plain C).  Input: 1 byte tenant length, the tenant,
 *	  then the envelope.  A fixed key; a valid envelope is also sealed and
 *	  must open, so the fuzzer reaches both the reject and accept paths.
 *	  Both formats are opened (format 1, the 0.1.0 layout, and format 2),
 *	  with and without a row id; a sealed value must open only for its own
 *	  row id and never as format 1.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static EVP_CIPHER_CTX *enc,
			   *dec;
	ti_env		env;
	size_t		tlen;
	const char *tenant;
	uint8_t    *out;

	if (enc == NULL)
	{
		enc = ti_aead_new(key, 1);
		dec = ti_aead_new(key, 0);
	}
	if (size < 1)
		return 0;
	tlen = data[0] % 64;
	if (size < 1 + tlen)
		return 0;
	tenant = (const char *) data + 1;
	data += 1 + tlen;
	size -= 1 + tlen;

	/* arbitrary bytes as an envelope: must be rejected, never crash */
	if (ti_env_parse(data, size, &env) == 0)
	{
		out = malloc(env.ciphertext_len + 1);
		(void) ti_env_open(dec, &env, tenant, tlen, "ctx", 3, NULL, 0, out);
		(void) ti_env_open(dec, &env, tenant, tlen, "ctx", 3, "row", 3, out);
		free(out);
	}

	/* the same bytes as a plaintext: seal, then open, must round-trip */
	{
		uint8_t		nonce[TI_ENV_NONCE] = {0};
		uint8_t    *sealed = malloc(size + TI_ENV_OVERHEAD);
		uint8_t    *back = malloc(size + 1);

		if (ti_env_seal(enc, 7, nonce, tenant, tlen, "ctx", 3, NULL, 0, data, size, sealed) != 0 ||
			ti_env_parse(sealed, size + TI_ENV_OVERHEAD, &env) != 0 ||
			env.key_version != 7 || env.format != TI_ENV_VERSION ||
			ti_env_open(dec, &env, tenant, tlen, "ctx", 3, NULL, 0, back) != 0 ||
			memcmp(back, data, size) != 0)
			abort();
		/* and must not open under another context, or with a row id */
		if (ti_env_open(dec, &env, tenant, tlen, "ctX", 3, NULL, 0, back) == 0 ||
			ti_env_open(dec, &env, tenant, tlen, "ctx", 3, "", 0, back) == 0)
			abort();
		/* bound to a row: opens for that row id only */
		if (ti_env_seal(enc, 7, nonce, tenant, tlen, "ctx", 3, "r1", 2, data, size, sealed) != 0 ||
			ti_env_parse(sealed, size + TI_ENV_OVERHEAD, &env) != 0 ||
			ti_env_open(dec, &env, tenant, tlen, "ctx", 3, "r1", 2, back) != 0 ||
			memcmp(back, data, size) != 0 ||
			ti_env_open(dec, &env, tenant, tlen, "ctx", 3, "r2", 2, back) == 0 ||
			ti_env_open(dec, &env, tenant, tlen, "ctx", 3, NULL, 0, back) == 0)
			abort();
		/* relabelled as format 1: must not open */
		sealed[0] = TI_ENV_VERSION_LEGACY;
		if (ti_env_parse(sealed, size + TI_ENV_OVERHEAD, &env) != 0 ||
			ti_env_open(dec, &env, tenant, tlen, "ctx", 3, NULL, 0, back) == 0)
			abort();
		free(sealed);
		free(back);
	}
	return 0;
}
