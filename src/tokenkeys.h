/*
 * src/tokenkeys.h
 *	  Backend state of signed tokens: settings, key ring, revocations
 *	  (see src/tokenkeys.c).
 */
#ifndef TI_TOKENKEYS_H
#define TI_TOKENKEYS_H

#include "postgres.h"
#include "datatype/timestamp.h"

extern void ti_tokens_init(void);

/* tenant_iso.token_max_ttl in microseconds */
extern int64 ti_token_max_ttl(void);

/* The audience string of this database (static; valid until the next call). */
extern const char *ti_token_audience(void);

/* The key id new tokens are signed with; false when there is none. */
extern bool ti_token_current_kid(uint32 *kid);

/* May a token signed with kid be accepted at time now? */
extern bool ti_token_kid_usable(uint32 kid, TimestampTz now);

/* Tokens of tenant issued before this are revoked (DT_NOBEGIN: none). */
extern TimestampTz ti_token_revoked_before(const char *tenant);

#endif
