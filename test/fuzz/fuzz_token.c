/*
 * test/fuzz/fuzz_token.c
 *	  libFuzzer target for token verification (src/token.c, plain C):
 *	  arbitrary text must be refused or verified without crashing, and a
 *	  token never verifies under a different key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

static const uint8_t key[32] = {9};
static const uint8_t other[32] = {8};

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ti_token	tok;

	if (ti_token_verify((const char *) data, size, key, &tok) == TI_TOKEN_OK)
	{
		char		again[TI_TOKEN_MAX_TEXT + 1];
		int			n = ti_token_encode(&tok, key, again, sizeof(again));

		/* an accepted token re-encodes to itself */
		if (n < 0 || (size_t) n != size || memcmp(again, data, size) != 0)
			abort();
		if (ti_token_verify((const char *) data, size, other, &tok) == TI_TOKEN_OK)
			abort();
	}
	return 0;
}
