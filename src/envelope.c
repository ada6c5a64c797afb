/*
 * src/envelope.c
 *	  AES-256-GCM envelopes and data-key wrapping.
 *
 * Plain C with no PostgreSQL dependency: the parser and the open path are
 * fuzzed from test/fuzz.  Contexts passed in are reused across messages:
 * only the nonce is set per message, so the key schedule is computed once
 * per key, not once per row.
 */
#include "envelope.h"
#include "kdf.h"

#include <string.h>

static const char domain_v1[] = "tenant_iso/v1";
static const char domain_v2[] = "tenant_iso/v2";

/* The key-wrapping domain: fixed at format 1's value, wrapped keys exist. */
#define TI_KEYWRAP_FORMAT (0x80 | TI_ENV_VERSION_LEGACY)

int
ti_env_parse(const uint8_t *buf, size_t len, ti_env *env)
{
	if (buf == NULL || len < TI_ENV_OVERHEAD ||
		(buf[0] != TI_ENV_VERSION && buf[0] != TI_ENV_VERSION_LEGACY))
		return -1;
	env->format = buf[0];
	env->key_version = ((uint32_t) buf[1] << 24) | ((uint32_t) buf[2] << 16) |
		((uint32_t) buf[3] << 8) | (uint32_t) buf[4];
	if (env->key_version == 0)
		return -1;				/* key versions start at 1 */
	env->header = buf;
	env->nonce = buf + 5;
	env->ciphertext = buf + TI_ENV_HEADER;
	env->ciphertext_len = len - TI_ENV_OVERHEAD;
	env->tag = buf + len - TI_ENV_TAG;
	return 0;
}

EVP_CIPHER_CTX *
ti_aead_new(const uint8_t key[32], int encrypt)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx == NULL)
		return NULL;
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TI_ENV_NONCE, NULL) != 1 ||
		EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, encrypt) != 1)
	{
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void
ti_aead_free(EVP_CIPHER_CTX *ctx)
{
	if (ctx)
		EVP_CIPHER_CTX_free(ctx);	/* resets and cleanses the key schedule */
}

static int
add_len4(EVP_CIPHER_CTX *ctx, size_t len)
{
	uint8_t		len4[4];
	int			outl;

	len4[0] = (uint8_t) (len >> 24);
	len4[1] = (uint8_t) (len >> 16);
	len4[2] = (uint8_t) (len >> 8);
	len4[3] = (uint8_t) len;
	return EVP_CipherUpdate(ctx, NULL, &outl, len4, 4) == 1 ? 0 : -1;
}

/*
 * The associated data of an envelope; its format is header[0].  The key
 * wrapping uses format 1's layout (no row binding).
 */
static int
add_aad(EVP_CIPHER_CTX *ctx, const uint8_t *header,
		const char *tenant, size_t tenant_len,
		const char *context, size_t context_len,
		const char *row_id, size_t row_id_len)
{
	uint8_t		len1;
	uint8_t		bound = (row_id != NULL);
	int			v2 = (header[0] == TI_ENV_VERSION);
	const char *domain = v2 ? domain_v2 : domain_v1;
	int			outl;

	if (tenant_len > 255 || context_len > 0x7FFFFFFF || row_id_len > 0x7FFFFFFF)
		return -1;
	if (!v2 && row_id != NULL)
		return -1;				/* format 1 has no row binding */
	len1 = (uint8_t) tenant_len;
	if (EVP_CipherUpdate(ctx, NULL, &outl, header, TI_ENV_HEADER) != 1 ||
		EVP_CipherUpdate(ctx, NULL, &outl, (const uint8_t *) domain, sizeof(domain_v1) - 1) != 1 ||
		EVP_CipherUpdate(ctx, NULL, &outl, &len1, 1) != 1 ||
		(tenant_len > 0 &&
		 EVP_CipherUpdate(ctx, NULL, &outl, (const uint8_t *) tenant, (int) tenant_len) != 1) ||
		add_len4(ctx, context_len) != 0 ||
		(context_len > 0 &&
		 EVP_CipherUpdate(ctx, NULL, &outl, (const uint8_t *) context, (int) context_len) != 1))
		return -1;
	if (!v2)
		return 0;
	if (EVP_CipherUpdate(ctx, NULL, &outl, &bound, 1) != 1)
		return -1;
	if (bound &&
		(add_len4(ctx, row_id_len) != 0 ||
		 (row_id_len > 0 &&
		  EVP_CipherUpdate(ctx, NULL, &outl, (const uint8_t *) row_id, (int) row_id_len) != 1)))
		return -1;
	return 0;
}

int
ti_env_seal(EVP_CIPHER_CTX *ctx, uint32_t key_version,
			const uint8_t nonce[TI_ENV_NONCE],
			const char *tenant, size_t tenant_len,
			const char *context, size_t context_len,
			const char *row_id, size_t row_id_len,
			const uint8_t *plaintext, size_t len, uint8_t *out)
{
	int			outl = 0,
				finl = 0;

	if (len > 0x7FFFFFFF - TI_ENV_OVERHEAD)
		return -1;
	out[0] = TI_ENV_VERSION;
	out[1] = (uint8_t) (key_version >> 24);
	out[2] = (uint8_t) (key_version >> 16);
	out[3] = (uint8_t) (key_version >> 8);
	out[4] = (uint8_t) key_version;
	memcpy(out + 5, nonce, TI_ENV_NONCE);

	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 1) != 1 ||
		add_aad(ctx, out, tenant, tenant_len, context, context_len, row_id, row_id_len) != 0)
		return -1;
	if (len > 0 &&
		EVP_CipherUpdate(ctx, out + TI_ENV_HEADER, &outl, plaintext, (int) len) != 1)
		return -1;
	if (EVP_CipherFinal_ex(ctx, out + TI_ENV_HEADER + outl, &finl) != 1 ||
		(size_t) (outl + finl) != len)
		return -1;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TI_ENV_TAG,
							out + TI_ENV_HEADER + len) != 1)
		return -1;
	return 0;
}

int
ti_env_open(EVP_CIPHER_CTX *ctx, const ti_env *env,
			const char *tenant, size_t tenant_len,
			const char *context, size_t context_len,
			const char *row_id, size_t row_id_len,
			uint8_t *out)
{
	int			outl = 0,
				finl = 0;
	uint8_t		tag[TI_ENV_TAG];

	if (env->ciphertext_len > 0x7FFFFFFF)
		return -1;
	memcpy(tag, env->tag, TI_ENV_TAG);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, env->nonce, 0) != 1 ||
		add_aad(ctx, env->header, tenant, tenant_len, context, context_len, row_id, row_id_len) != 0)
		return -1;
	if (env->ciphertext_len > 0 &&
		EVP_CipherUpdate(ctx, out, &outl, env->ciphertext, (int) env->ciphertext_len) != 1)
		return -1;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TI_ENV_TAG, tag) != 1)
		return -1;
	if (EVP_CipherFinal_ex(ctx, out + outl, &finl) != 1)
	{
		ti_wipe(out, env->ciphertext_len);
		return -1;
	}
	return 0;
}

static void
key_aad_header(uint8_t header[TI_ENV_HEADER], uint32_t version, const uint8_t nonce[TI_ENV_NONCE])
{
	header[0] = TI_KEYWRAP_FORMAT;	/* distinct from data envelopes */
	header[1] = (uint8_t) (version >> 24);
	header[2] = (uint8_t) (version >> 16);
	header[3] = (uint8_t) (version >> 8);
	header[4] = (uint8_t) version;
	memcpy(header + 5, nonce, TI_ENV_NONCE);
}

int
ti_wrap_key(const uint8_t kek[32], const uint8_t nonce[TI_ENV_NONCE],
			const char *tenant, uint32_t version,
			const uint8_t dek[32], uint8_t out[TI_WRAPPED_LEN])
{
	EVP_CIPHER_CTX *ctx = ti_aead_new(kek, 1);
	uint8_t		header[TI_ENV_HEADER];
	int			outl = 0,
				finl = 0,
				rc = -1;

	if (ctx == NULL)
		return -1;
	key_aad_header(header, version, nonce);
	memcpy(out, nonce, TI_ENV_NONCE);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 1) == 1 &&
		add_aad(ctx, header, tenant, strlen(tenant), "data key", 8, NULL, 0) == 0 &&
		EVP_CipherUpdate(ctx, out + TI_ENV_NONCE, &outl, dek, 32) == 1 &&
		EVP_CipherFinal_ex(ctx, out + TI_ENV_NONCE + outl, &finl) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TI_ENV_TAG, out + TI_ENV_NONCE + 32) == 1)
		rc = 0;
	ti_aead_free(ctx);
	return rc;
}

int
ti_unwrap_key(const uint8_t kek[32], const char *tenant, uint32_t version,
			  const uint8_t *wrapped, size_t len, uint8_t dek[32])
{
	EVP_CIPHER_CTX *ctx;
	uint8_t		header[TI_ENV_HEADER];
	uint8_t		tag[TI_ENV_TAG];
	int			outl = 0,
				finl = 0,
				rc = -1;

	if (len != TI_WRAPPED_LEN)
		return -1;
	ctx = ti_aead_new(kek, 0);
	if (ctx == NULL)
		return -1;
	key_aad_header(header, version, wrapped);
	memcpy(tag, wrapped + TI_ENV_NONCE + 32, TI_ENV_TAG);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, wrapped, 0) == 1 &&
		add_aad(ctx, header, tenant, strlen(tenant), "data key", 8, NULL, 0) == 0 &&
		EVP_CipherUpdate(ctx, dek, &outl, wrapped + TI_ENV_NONCE, 32) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TI_ENV_TAG, tag) == 1 &&
		EVP_CipherFinal_ex(ctx, dek + outl, &finl) == 1)
		rc = 0;
	if (rc != 0)
		ti_wipe(dek, 32);
	ti_aead_free(ctx);
	return rc;
}
