/*
 * src/token.c
 *	  Encoding and verification of signed tenant tokens.
 *
 * Plain C with no PostgreSQL dependency (fuzzed from test/fuzz).  The MAC
 * is checked with CRYPTO_memcmp before any field of the payload is trusted;
 * only public facts (length, alphabet) are examined before that.
 */
#include "token.h"
#include "kdf.h"

#include <stdio.h>
#include <string.h>

/* offsets of the payload fields (see token.h) */
#define OFF_KID 1
#define OFF_ISSUED 5
#define OFF_EXPIRY 13
#define OFF_AUD 21
#define OFF_NONCE (OFF_AUD + TI_TOKEN_AUD_LEN)
#define OFF_IDLEN (OFF_NONCE + TI_TOKEN_NONCE_LEN)
#define PAYLOAD_FIXED (OFF_IDLEN + 1)
#define RAW_MAX (PAYLOAD_FIXED + TI_TENANT_ID_MAX + TI_MAC_LEN)

static const char b64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
ti_tenant_id_valid(const char *s, size_t len)
{
	size_t		i;

	if (len < 1 || len > TI_TENANT_ID_MAX)
		return 0;
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '.' ||
			  c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

static size_t
b64url_encode(const uint8_t *in, size_t len, char *out)
{
	size_t		i,
				o = 0;

	for (i = 0; i + 2 < len; i += 3)
	{
		uint32_t	v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	if (len - i == 1)
	{
		uint32_t	v = in[i] << 16;

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
	}
	else if (len - i == 2)
	{
		uint32_t	v = (in[i] << 16) | (in[i + 1] << 8);

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
	}
	return o;
}

static int
b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Returns decoded length or -1; out must hold len*3/4 bytes. */
static int
b64url_decode(const char *in, size_t len, uint8_t *out, size_t outsz)
{
	size_t		i,
				o = 0;
	uint32_t	acc = 0;
	int			bits = 0;

	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++)
	{
		int			v = b64url_val((unsigned char) in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			if (o >= outsz)
				return -1;
			out[o++] = (uint8_t) ((acc >> bits) & 0xFF);
		}
	}
	/* leftover bits must be zero, so that each token has one spelling */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (int) o;
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
}

static uint64_t
get_be(const uint8_t *p, int n)
{
	uint64_t	v = 0;
	int			i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/*
 * A fixed-key HMAC as a hash: the audience id only has to differ between
 * audiences (the secret part of the binding is in ti_token_mac_key).
 */
int
ti_token_audience_id(const char *aud, size_t audlen, uint8_t out[TI_TOKEN_AUD_LEN])
{
	static const char label[] = "tenant_iso token audience";
	uint8_t		h[TI_MAC_LEN];

	if (ti_hmac_sha256((const uint8_t *) label, sizeof(label) - 1,
					   (const uint8_t *) aud, audlen, NULL, 0, h) != 0)
		return -1;
	memcpy(out, h, TI_TOKEN_AUD_LEN);
	return 0;
}

int
ti_token_mac_key(const uint8_t base[32], uint32_t kid, const char *aud,
				 size_t audlen, uint8_t out[32])
{
	static const char salt[] = "tenant_iso token mac key";
	char		info[32 + TI_TOKEN_AUDIENCE_MAX + 1];
	int			n;
	int			rc;

	if (audlen > TI_TOKEN_AUDIENCE_MAX)
		return -1;
	/* the kid is a number and comes first, so the info string is unambiguous */
	n = snprintf(info, sizeof(info), "kid:%u|aud:", (unsigned) kid);
	if (n < 0 || (size_t) n + audlen > sizeof(info))
		return -1;
	memcpy(info + n, aud, audlen);
	rc = ti_hkdf_sha256(base, 32, (const uint8_t *) salt, sizeof(salt) - 1,
						(const uint8_t *) info,
						(size_t) n + audlen, out, 32);
	ti_wipe(info, sizeof(info));
	return rc;
}

static size_t
build_payload(const ti_token *tok, size_t idlen, uint8_t *p)
{
	p[0] = TI_TOKEN_VERSION;
	put_be(p + OFF_KID, tok->kid, 4);
	put_be(p + OFF_ISSUED, (uint64_t) tok->issued, 8);
	put_be(p + OFF_EXPIRY, (uint64_t) tok->expires, 8);
	memcpy(p + OFF_AUD, tok->aud, TI_TOKEN_AUD_LEN);
	memcpy(p + OFF_NONCE, tok->nonce, TI_TOKEN_NONCE_LEN);
	p[OFF_IDLEN] = (uint8_t) idlen;
	memcpy(p + PAYLOAD_FIXED, tok->tenant, idlen);
	return PAYLOAD_FIXED + idlen;
}

int
ti_token_encode(const ti_token *tok, const uint8_t key[32], char *out, size_t outsz)
{
	uint8_t		raw[RAW_MAX];
	size_t		idlen = strnlen(tok->tenant, TI_TENANT_ID_MAX + 1);
	size_t		plen,
				n;
	size_t		prefix = strlen(TI_TOKEN_PREFIX);

	if (!ti_tenant_id_valid(tok->tenant, idlen))
		return -1;
	plen = build_payload(tok, idlen, raw);
	if (ti_hmac_sha256(key, 32, raw, plen, NULL, 0, raw + plen) != 0)
		return -1;
	if (outsz < prefix + ((plen + TI_MAC_LEN) * 4 + 2) / 3 + 1)
		return -1;
	memcpy(out, TI_TOKEN_PREFIX, prefix);
	n = b64url_encode(raw, plen + TI_MAC_LEN, out + prefix);
	out[prefix + n] = '\0';
	return (int) (prefix + n);
}

/*
 * Decode the text and check its public structure (prefix, alphabet,
 * version, lengths).  Returns the payload length, or -1.
 */
static int
decode_checked(const char *text, size_t len, uint8_t *raw, size_t rawsz)
{
	size_t		prefix = strlen(TI_TOKEN_PREFIX);
	int			n;
	size_t		idlen,
				plen;

	if (len <= prefix || len > TI_TOKEN_MAX_TEXT ||
		memcmp(text, TI_TOKEN_PREFIX, prefix) != 0)
		return -1;
	n = b64url_decode(text + prefix, len - prefix, raw, rawsz);
	if (n < (int) (PAYLOAD_FIXED + 1 + TI_MAC_LEN))
		return -1;
	plen = (size_t) n - TI_MAC_LEN;
	idlen = raw[OFF_IDLEN];
	if (raw[0] != TI_TOKEN_VERSION || idlen < 1 || idlen > TI_TENANT_ID_MAX ||
		plen != PAYLOAD_FIXED + idlen)
		return -1;
	return (int) plen;
}

ti_token_status
ti_token_peek_kid(const char *text, size_t len, uint32_t *kid)
{
	uint8_t		raw[RAW_MAX + 3];

	if (decode_checked(text, len, raw, sizeof(raw)) < 0)
		return TI_TOKEN_MALFORMED;
	*kid = (uint32_t) get_be(raw + OFF_KID, 4);
	return TI_TOKEN_OK;
}

ti_token_status
ti_token_verify(const char *text, size_t len, const uint8_t key[32],
				const uint8_t aud[TI_TOKEN_AUD_LEN], ti_token *tok)
{
	uint8_t		raw[RAW_MAX + 3];
	uint8_t		mac[TI_MAC_LEN];
	int			n;
	size_t		idlen,
				plen;
	int			ok;

	n = decode_checked(text, len, raw, sizeof(raw));
	if (n < 0)
		return TI_TOKEN_MALFORMED;
	plen = (size_t) n;
	idlen = raw[OFF_IDLEN];

	if (ti_hmac_sha256(key, 32, raw, plen, NULL, 0, mac) != 0)
		return TI_TOKEN_INTERNAL;
	ok = ti_ct_equal(mac, raw + plen, TI_MAC_LEN);
	ti_wipe(mac, sizeof(mac));
	if (!ok)
		return TI_TOKEN_BAD_MAC;

	/* authentic: now the fields may be trusted */
	if (!ti_tenant_id_valid((const char *) raw + PAYLOAD_FIXED, idlen))
		return TI_TOKEN_MALFORMED;
	if (!ti_ct_equal(raw + OFF_AUD, aud, TI_TOKEN_AUD_LEN))
		return TI_TOKEN_WRONG_AUDIENCE;
	tok->kid = (uint32_t) get_be(raw + OFF_KID, 4);
	tok->issued = (int64_t) get_be(raw + OFF_ISSUED, 8);
	tok->expires = (int64_t) get_be(raw + OFF_EXPIRY, 8);
	memcpy(tok->aud, raw + OFF_AUD, TI_TOKEN_AUD_LEN);
	memcpy(tok->nonce, raw + OFF_NONCE, TI_TOKEN_NONCE_LEN);
	memcpy(tok->tenant, raw + PAYLOAD_FIXED, idlen);
	tok->tenant[idlen] = '\0';
	return TI_TOKEN_OK;
}
