/*
 * test/fuzz/fuzz_token.c
 *	  libFuzzer target for token verification (src/token.c, plain C):
 *	  arbitrary text must be refused or verified without crashing, and a
 *	  token never verifies under a different key, key id or audience.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

static const uint8_t base[32] = {9};

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ti_token	tok;
	uint32_t	kid;
	uint8_t		key[32],
				other_kid[32],
				other_aud_key[32];
	uint8_t		aud[TI_TOKEN_AUD_LEN],
				other_aud[TI_TOKEN_AUD_LEN];

	if (ti_token_peek_kid((const char *) data, size, &kid) != TI_TOKEN_OK)
	{
		/* what peek refuses, verify refuses too */
		if (ti_token_audience_id("a", 1, aud) != 0 ||
			ti_token_mac_key(base, 1, "a", 1, key) != 0)
			abort();
		if (ti_token_verify((const char *) data, size, key, aud, &tok) != TI_TOKEN_MALFORMED)
			abort();
		return 0;
	}
	if (ti_token_audience_id("a", 1, aud) != 0 ||
		ti_token_audience_id("b", 1, other_aud) != 0 ||
		ti_token_mac_key(base, kid, "a", 1, key) != 0 ||
		ti_token_mac_key(base, kid + 1, "a", 1, other_kid) != 0 ||
		ti_token_mac_key(base, kid, "b", 1, other_aud_key) != 0)
		abort();
	if (ti_token_verify((const char *) data, size, key, aud, &tok) == TI_TOKEN_OK)
	{
		char		again[TI_TOKEN_MAX_TEXT + 1];
		int			n = ti_token_encode(&tok, key, again, sizeof(again));

		/* an accepted token re-encodes to itself */
		if (n < 0 || (size_t) n != size || memcmp(again, data, size) != 0)
			abort();
		if (tok.kid != kid)
			abort();
		if (ti_token_verify((const char *) data, size, other_kid, aud, &tok) == TI_TOKEN_OK)
			abort();
		if (ti_token_verify((const char *) data, size, other_aud_key, other_aud, &tok) == TI_TOKEN_OK)
			abort();
		if (ti_token_verify((const char *) data, size, key, other_aud, &tok) != TI_TOKEN_WRONG_AUDIENCE)
			abort();
	}
	return 0;
}
