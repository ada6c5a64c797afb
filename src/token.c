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

#include <string.h>

#define PAYLOAD_FIXED (1 + 8 + TI_TOKEN_NONCE_LEN + 1)
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

static size_t
build_payload(const ti_token *tok, size_t idlen, uint8_t *p)
{
	uint64_t	e = (uint64_t) tok->expires;
	int			i;

	p[0] = 1;
	for (i = 0; i < 8; i++)
		p[1 + i] = (uint8_t) (e >> (56 - 8 * i));
	memcpy(p + 9, tok->nonce, TI_TOKEN_NONCE_LEN);
	p[9 + TI_TOKEN_NONCE_LEN] = (uint8_t) idlen;
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

ti_token_status
ti_token_verify(const char *text, size_t len, const uint8_t key[32], ti_token *tok)
{
	uint8_t		raw[RAW_MAX + 3];
	uint8_t		mac[TI_MAC_LEN];
	size_t		prefix = strlen(TI_TOKEN_PREFIX);
	int			n;
	size_t		idlen,
				plen;
	uint64_t	e = 0;
	int			i;
	int			ok;

	if (len <= prefix || len > TI_TOKEN_MAX_TEXT ||
		memcmp(text, TI_TOKEN_PREFIX, prefix) != 0)
		return TI_TOKEN_MALFORMED;
	n = b64url_decode(text + prefix, len - prefix, raw, sizeof(raw));
	if (n < (int) (PAYLOAD_FIXED + 1 + TI_MAC_LEN))
		return TI_TOKEN_MALFORMED;
	plen = (size_t) n - TI_MAC_LEN;
	idlen = raw[9 + TI_TOKEN_NONCE_LEN];
	if (raw[0] != 1 || idlen < 1 || idlen > TI_TENANT_ID_MAX ||
		plen != PAYLOAD_FIXED + idlen)
		return TI_TOKEN_MALFORMED;

	if (ti_hmac_sha256(key, 32, raw, plen, NULL, 0, mac) != 0)
		return TI_TOKEN_INTERNAL;
	ok = ti_ct_equal(mac, raw + plen, TI_MAC_LEN);
	ti_wipe(mac, sizeof(mac));
	if (!ok)
		return TI_TOKEN_BAD_MAC;

	/* authentic: now the fields may be trusted */
	if (!ti_tenant_id_valid((const char *) raw + PAYLOAD_FIXED, idlen))
		return TI_TOKEN_MALFORMED;
	for (i = 0; i < 8; i++)
		e = (e << 8) | raw[1 + i];
	tok->expires = (int64_t) e;
	memcpy(tok->nonce, raw + 9, TI_TOKEN_NONCE_LEN);
	memcpy(tok->tenant, raw + PAYLOAD_FIXED, idlen);
	tok->tenant[idlen] = '\0';
	return TI_TOKEN_OK;
}
