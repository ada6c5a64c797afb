/*
 * src/envelope.h
 *	  The AES-256-GCM envelope (plain C, OpenSSL EVP only, no backend headers).
 *
 *	  offset  size  field
 *	  0       1     format version (TI_ENV_VERSION = 2; 1 is still opened)
 *	  1       4     key version, big-endian, > 0
 *	  5       12    nonce (random)
 *	  17      n     ciphertext
 *	  17+n    16    GCM tag
 *
 * Associated data: the 17-byte header, then "tenant_iso/v<format>", the
 * tenant id (length-prefixed, 1 byte) and the context (length-prefixed, 4
 * bytes), so a ciphertext opens only for its own tenant, context and header.
 * Format 2 appends the row binding: one byte 0 (no row id), or 1 followed by
 * the row id (length-prefixed, 4 bytes).  So a value sealed for one row
 * opens for no other row id, and not without one; a value sealed without a
 * row id does not open with one.
 *
 * Keys: format 1 used the data key itself as the AES key (and as the HKDF
 * input of the blind-index key).  Format 2 uses a subkey derived from the
 * data key with its own label (keys.c); the caller passes the cipher context
 * that matches env->format.  Format 1 cannot carry a row id.
 */
#ifndef TI_ENVELOPE_H
#define TI_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define TI_ENV_VERSION 2
#define TI_ENV_VERSION_LEGACY 1
#define TI_ENV_HEADER 17
#define TI_ENV_NONCE 12
#define TI_ENV_TAG 16
#define TI_ENV_OVERHEAD (TI_ENV_HEADER + TI_ENV_TAG)

typedef struct ti_env
{
	uint8_t		format;
	uint32_t	key_version;
	const uint8_t *header;		/* TI_ENV_HEADER bytes */
	const uint8_t *nonce;
	const uint8_t *ciphertext;
	size_t		ciphertext_len;
	const uint8_t *tag;
} ti_env;

/* Split an envelope into its parts; 0 on success, -1 if malformed. */
extern int	ti_env_parse(const uint8_t *buf, size_t len, ti_env *env);

/*
 * A cipher context with the key schedule already set up, for one key.
 * Returns NULL on failure.  ti_aead_free wipes it.
 */
extern EVP_CIPHER_CTX *ti_aead_new(const uint8_t key[32], int encrypt);
extern void ti_aead_free(EVP_CIPHER_CTX *ctx);

/*
 * Seal plaintext into out (which must hold len + TI_ENV_OVERHEAD bytes).
 * Returns 0 or -1.
 */
extern int	ti_env_seal(EVP_CIPHER_CTX *ctx, uint32_t key_version,
						const uint8_t nonce[TI_ENV_NONCE],
						const char *tenant, size_t tenant_len,
						const char *context, size_t context_len,
						const char *row_id, size_t row_id_len,
						const uint8_t *plaintext, size_t len, uint8_t *out);

/*
 * Open a parsed envelope into out (env->ciphertext_len bytes).  Returns 0,
 * or -1 when the tag does not verify (wrong tenant, context, row id, key,
 * or any altered byte).  row_id NULL: no row binding.
 */
extern int	ti_env_open(EVP_CIPHER_CTX *ctx, const ti_env *env,
						const char *tenant, size_t tenant_len,
						const char *context, size_t context_len,
						const char *row_id, size_t row_id_len,
						uint8_t *out);

/*
 * Seal: row_id NULL means no row binding.  Always writes format
 * TI_ENV_VERSION.
 */

/* Seal/open a 32-byte data key under a KEK (nonce || ct || tag = 60 bytes). */
#define TI_WRAPPED_LEN (TI_ENV_NONCE + 32 + TI_ENV_TAG)
extern int	ti_wrap_key(const uint8_t kek[32], const uint8_t nonce[TI_ENV_NONCE],
						const char *tenant, uint32_t version,
						const uint8_t dek[32], uint8_t out[TI_WRAPPED_LEN]);
extern int	ti_unwrap_key(const uint8_t kek[32], const char *tenant, uint32_t version,
						  const uint8_t *wrapped, size_t len, uint8_t dek[32]);

#endif
