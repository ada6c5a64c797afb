/*
 * src/token.h
 *	  Signed tenant tokens (plain C, no backend headers).
 *
 * Token text:  "ti1." base64url( payload || HMAC-SHA256(key, payload) )
 * Payload:     version (1 byte, = 1)
 *              expiry  (8 bytes, big-endian signed Unix seconds)
 *              nonce   (16 random bytes)
 *              idlen   (1 byte, 1..63)
 *              id      (idlen bytes from [A-Za-z0-9_.:-])
 */
#ifndef TI_TOKEN_H
#define TI_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TI_TENANT_ID_MAX 63
#define TI_TOKEN_NONCE_LEN 16
#define TI_TOKEN_PREFIX "ti1."
#define TI_TOKEN_MAX_TEXT 160

typedef struct ti_token
{
	char		tenant[TI_TENANT_ID_MAX + 1];
	int64_t		expires;		/* Unix seconds */
	uint8_t		nonce[TI_TOKEN_NONCE_LEN];
} ti_token;

typedef enum ti_token_status
{
	TI_TOKEN_OK = 0,
	TI_TOKEN_MALFORMED = -1,	/* not a token at all */
	TI_TOKEN_BAD_MAC = -2,		/* well formed, but not ours or altered */
	TI_TOKEN_INTERNAL = -3		/* OpenSSL failure */
} ti_token_status;

/* 1 if s[0..len) is a valid tenant id. */
extern int	ti_tenant_id_valid(const char *s, size_t len);

/* Encode; returns the text length written to out (NUL-terminated), or -1. */
extern int	ti_token_encode(const ti_token *tok, const uint8_t key[32],
							char *out, size_t outsz);

/* Decode and verify the MAC in constant time; fills *tok only on success. */
extern ti_token_status ti_token_verify(const char *text, size_t len,
									   const uint8_t key[32], ti_token *tok);

#endif
