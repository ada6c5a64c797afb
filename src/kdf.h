/*
 * src/kdf.h
 *	  Key derivation and MACs (plain C, OpenSSL EVP only, no backend headers).
 */
#ifndef TI_KDF_H
#define TI_KDF_H

#include <stddef.h>
#include <stdint.h>

#define TI_KEY_LEN 32
#define TI_MAC_LEN 32

/* HKDF-SHA256 (RFC 5869). Returns 0 on success, -1 on an OpenSSL failure. */
extern int	ti_hkdf_sha256(const uint8_t *ikm, size_t ikmlen,
						   const uint8_t *salt, size_t saltlen,
						   const uint8_t *info, size_t infolen,
						   uint8_t *out, size_t outlen);

/* HMAC-SHA256 over the concatenation of up to two parts. Returns 0 or -1. */
extern int	ti_hmac_sha256(const uint8_t *key, size_t keylen,
						   const uint8_t *p1, size_t p1len,
						   const uint8_t *p2, size_t p2len,
						   uint8_t out[TI_MAC_LEN]);

/* Constant-time equality of two equally long buffers: 1 if equal. */
extern int	ti_ct_equal(const uint8_t *a, const uint8_t *b, size_t len);

/* Wipe a buffer so that the compiler cannot elide it. */
extern void ti_wipe(void *p, size_t len);

/* Parse exactly 64 hex digits (surrounding whitespace ignored) into 32 bytes. */
extern int	ti_parse_hex_key(const char *s, size_t len, uint8_t out[TI_KEY_LEN]);

#endif
