/*
 * test/fuzz/fuzz_token.c
 *	  libFuzzer target for token verification (src/token.c, plain C):
 *	  arbitrary text must be refused or verified without crashing, and a
 *	  token never verifies under a different key, key id or audience.
 *
 *	  Built with -DTI_FUZZ_SEED (and without -fsanitize=fuzzer) it is
 *	  instead a program that prints the corpus seed
 *	  corpus/fuzz_token/valid_kid1_aud_a: a valid token, made
 *	  deterministically under the test key below (kid 1, audience "a"), so
 *	  that the accept path and its round-trip run from the first input.
 *	  The first accepted token prints ROUNDTRIP_MARK on stderr; test/fuzz/run
 *	  fails without it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

static const uint8_t base[32] = {9};

#define ROUNDTRIP_MARK "fuzz_token: a valid token verified and round-tripped"

#ifdef TI_FUZZ_SEED
int
main(void)
{
	ti_token	tok;
	uint8_t		key[32];
	char		text[TI_TOKEN_MAX_TEXT + 1];
	int			i;

	memset(&tok, 0, sizeof(tok));
	strcpy(tok.tenant, "acme");
	tok.kid = 1;
	tok.issued = INT64_C(1767225600000000);	/* 2026-01-01 00:00:00 UTC */
	tok.expires = INT64_C(4102444800);	/* 2100-01-01 00:00:00 UTC */
	for (i = 0; i < TI_TOKEN_NONCE_LEN; i++)
		tok.nonce[i] = (uint8_t) i;
	if (ti_token_audience_id("a", 1, tok.aud) != 0 ||
		ti_token_mac_key(base, tok.kid, "a", 1, key) != 0 ||
		ti_token_encode(&tok, key, text, sizeof(text)) < 0)
		return 1;
	fputs(text, stdout);
	return 0;
}
#else
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
		{
			static int	said;

			if (!said)
			{
				fputs(ROUNDTRIP_MARK "\n", stderr);
				said = 1;
			}
		}
	}
	return 0;
}
#endif
