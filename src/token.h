/*
 * src/token.h
 *	  Signed tenant tokens (plain C, no backend headers).
 *
 * Token text:  "ti2." base64url( payload || HMAC-SHA256(mac_key, payload) )
 * Payload:     version (1 byte, = 2)
 *              kid     (4 bytes, big-endian: which token key signed it)
 *              issued  (8 bytes, big-endian signed Unix microseconds)
 *              expiry  (8 bytes, big-endian signed Unix seconds)
 *              aud     (16 bytes: ti_token_audience_id() of the audience)
 *              nonce   (16 random bytes)
 *              idlen   (1 byte, 1..63)
 *              id      (idlen bytes from [A-Za-z0-9_.:-])
 *
 * mac_key = ti_token_mac_key(base, kid, audience): HKDF-SHA256 of the base
 * token key with info "kid:<kid>|aud:<audience>", so a token verifies only
 * under the key id and the audience it was issued for.  The audience is also
 * in the payload, so that a mismatch is refused even if two derivations
 * were ever to agree.  0.1.0 tokens ("ti1.") are not accepted.
 */
#ifndef TI_TOKEN_H
#define TI_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/*
 * The tenant-id syntax: 1 to TI_TENANT_ID_MAX bytes from [A-Za-z0-9_.:-],
 * checked in C by ti_tenant_id_valid() (token.c).  The same rule is
 * written in SQL, as the regular expression '^[A-Za-z0-9_.:-]{1,63}$', in
 * tenant_iso._check_tenant_id() (which create_tenant() and the other
 * registry functions call) and in the CHECK constraint on
 * tenant_iso.tenants.tenant_id, both in tenant_iso--0.1.0.sql.  The
 * regression test test/sql/tenant_id_syntax.sql checks that C and both SQL
 * forms accept and refuse the same ids; change them together.
 */
#define TI_TENANT_ID_MAX 63
/* errdetail of "invalid tenant id", the same words as _check_tenant_id() */
#define TI_TENANT_ID_DETAIL \
	"A tenant id is 1 to 63 characters from A-Z, a-z, 0-9, \"_\", \".\", \":\" and \"-\"."
#define TI_TOKEN_NONCE_LEN 16
#define TI_TOKEN_AUD_LEN 16
#define TI_TOKEN_VERSION 2
#define TI_TOKEN_PREFIX "ti2."
#define TI_TOKEN_MAX_TEXT 224
#define TI_TOKEN_AUDIENCE_MAX 255

typedef struct ti_token
{
	char		tenant[TI_TENANT_ID_MAX + 1];
	uint32_t	kid;			/* token key id */
	int64_t		issued;			/* Unix microseconds */
	int64_t		expires;		/* Unix seconds */
	uint8_t		aud[TI_TOKEN_AUD_LEN];
	uint8_t		nonce[TI_TOKEN_NONCE_LEN];
} ti_token;

typedef enum ti_token_status
{
	TI_TOKEN_OK = 0,
	TI_TOKEN_MALFORMED = -1,	/* not a token at all */
	TI_TOKEN_BAD_MAC = -2,		/* well formed, but not ours or altered */
	TI_TOKEN_INTERNAL = -3,		/* OpenSSL failure */
	TI_TOKEN_WRONG_AUDIENCE = -4	/* authentic, but issued for elsewhere */
} ti_token_status;

/* 1 if s[0..len) is a valid tenant id. */
extern int	ti_tenant_id_valid(const char *s, size_t len);

/* The 16-byte payload identifier of an audience string; 0 or -1. */
extern int	ti_token_audience_id(const char *aud, size_t audlen,
								 uint8_t out[TI_TOKEN_AUD_LEN]);

/* The MAC key for one key id and audience, from the base token key; 0 or -1. */
extern int	ti_token_mac_key(const uint8_t base[32], uint32_t kid,
							 const char *aud, size_t audlen, uint8_t out[32]);

/* Encode; returns the text length written to out (NUL-terminated), or -1. */
extern int	ti_token_encode(const ti_token *tok, const uint8_t key[32],
							char *out, size_t outsz);

/*
 * The key id of a well-formed token, before anything is verified: it only
 * chooses the key to verify with.  TI_TOKEN_OK or TI_TOKEN_MALFORMED.
 */
extern ti_token_status ti_token_peek_kid(const char *text, size_t len,
										 uint32_t *kid);

/*
 * Decode and verify the MAC in constant time, then the audience; fills
 * *tok only on success.
 */
extern ti_token_status ti_token_verify(const char *text, size_t len,
									   const uint8_t key[32],
									   const uint8_t aud[TI_TOKEN_AUD_LEN],
									   ti_token *tok);

#endif
