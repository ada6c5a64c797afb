/*
 * src/keys.h
 *	  Data keys and envelope operations for an explicit tenant (used by the
 *	  SQL functions in keys.c and by the re-encryption worker).
 */
#ifndef TI_KEYS_H
#define TI_KEYS_H

#include "postgres.h"

extern void ti_keys_flush(void);
/* row_id NULL: the value is not bound to a row */
extern bytea *ti_encrypt_for(const char *tenant, const char *context, size_t context_len,
							 const char *row_id, size_t row_id_len,
							 const uint8 *data, size_t len);
extern bytea *ti_decrypt_for(const char *tenant, const char *context, size_t context_len,
							 const char *row_id, size_t row_id_len,
							 const uint8 *data, size_t len);
extern bytea *ti_try_decrypt_for(const char *tenant, const char *context, size_t context_len,
								 const char *row_id, size_t row_id_len,
								 const uint8 *data, size_t len);
extern int	ti_envelope_format(const uint8 *data, size_t len);
extern int64 ti_envelope_key_version(const uint8 *data, size_t len);
extern int64 ti_active_version(const char *tenant);
typedef enum TiKeyState
{
	TI_KEY_UNKNOWN,				/* the tenant has no key of that version */
	TI_KEY_USABLE,
	TI_KEY_DESTROYED			/* shredded: its ciphertexts cannot open */
} TiKeyState;

extern TiKeyState ti_key_version_state(const char *tenant, uint32 version);

#endif
