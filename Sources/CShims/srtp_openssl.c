/*
 * OpenSSL-backed cipher and auth types for libsrtp2, installed through the
 * library's public replacement hooks (srtp_replace_cipher_type,
 * srtp_replace_auth_type). Debian's libsrtp2 is built on NSS, which sets up
 * cipher contexts per packet; these keep one OpenSSL context per key.
 * libsrtp stays in charge of key derivation, ROC, replay and SRTCP, and the
 * self-tests run against the stock types' own test vectors, so the
 * replacements are byte-for-byte what the stock library produces.
 */
#define _GNU_SOURCE 1
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "CShims.h"
#include <srtp2/cipher.h>
#include <srtp2/auth.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

extern const srtp_cipher_type_t srtp_aes_icm_128;
extern const srtp_cipher_type_t srtp_aes_icm_192;
extern const srtp_cipher_type_t srtp_aes_icm_256;
extern const srtp_cipher_type_t srtp_aes_gcm_128;
extern const srtp_cipher_type_t srtp_aes_gcm_256;
extern const srtp_auth_type_t srtp_hmac;

/* ---------- AES-ICM (counter mode, RFC 3711 4.1.1) ---------- */

typedef struct {
    EVP_CIPHER_CTX *ctx;
    uint8_t salt[16];    /* 14-byte salt, last two bytes zero: the block counter */
    uint8_t counter[16];
    int key_size;
} rsfu_icm_t;

static const srtp_cipher_type_t rsfu_icm_128, rsfu_icm_192, rsfu_icm_256;

static srtp_err_status_t rsfu_icm_alloc(srtp_cipher_pointer_t *cp, int key_len, int tag_len) {
    (void)tag_len;
    const srtp_cipher_type_t *type;
    int key_size, algorithm;
    switch (key_len) {
    case SRTP_AES_ICM_128_KEY_LEN_WSALT: type = &rsfu_icm_128; key_size = 16; algorithm = SRTP_AES_ICM_128; break;
    case SRTP_AES_ICM_192_KEY_LEN_WSALT: type = &rsfu_icm_192; key_size = 24; algorithm = SRTP_AES_ICM_192; break;
    case SRTP_AES_ICM_256_KEY_LEN_WSALT: type = &rsfu_icm_256; key_size = 32; algorithm = SRTP_AES_ICM_256; break;
    default: return srtp_err_status_bad_param;
    }
    srtp_cipher_t *c = calloc(1, sizeof(srtp_cipher_t) + sizeof(rsfu_icm_t));
    if (!c) return srtp_err_status_alloc_fail;
    rsfu_icm_t *s = (rsfu_icm_t *)(c + 1);
    s->ctx = EVP_CIPHER_CTX_new();
    if (!s->ctx) { free(c); return srtp_err_status_alloc_fail; }
    s->key_size = key_size;
    c->type = type;
    c->state = s;
    c->key_len = key_len;
    c->algorithm = algorithm;
    *cp = c;
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_icm_dealloc(srtp_cipher_pointer_t c) {
    rsfu_icm_t *s = c->state;
    EVP_CIPHER_CTX_free(s->ctx);
    memset(c, 0, sizeof(srtp_cipher_t) + sizeof(rsfu_icm_t));
    free(c);
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_icm_init(void *state, const uint8_t *key) {
    rsfu_icm_t *s = state;
    const EVP_CIPHER *evp = s->key_size == 16 ? EVP_aes_128_ctr() : s->key_size == 24 ? EVP_aes_192_ctr() : EVP_aes_256_ctr();
    memset(s->salt, 0, sizeof(s->salt));
    memcpy(s->salt, key + s->key_size, SRTP_SALT_LEN);
    memcpy(s->counter, s->salt, 16);
    if (!EVP_EncryptInit_ex(s->ctx, evp, NULL, key, NULL)) return srtp_err_status_init_fail;
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_icm_set_iv(void *state, uint8_t *iv, srtp_cipher_direction_t direction) {
    (void)direction;
    rsfu_icm_t *s = state;
    for (int i = 0; i < 16; i++) s->counter[i] = s->salt[i] ^ iv[i];
    if (!EVP_EncryptInit_ex(s->ctx, NULL, NULL, NULL, s->counter)) return srtp_err_status_init_fail;
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_icm_encrypt(void *state, uint8_t *buf, unsigned int *len) {
    rsfu_icm_t *s = state;
    int out = 0;
    if (!EVP_EncryptUpdate(s->ctx, buf, &out, buf, (int)*len)) return srtp_err_status_cipher_fail;
    return srtp_err_status_ok;
}

static const srtp_cipher_type_t rsfu_icm_128 = {
    rsfu_icm_alloc, rsfu_icm_dealloc, rsfu_icm_init, NULL, rsfu_icm_encrypt, rsfu_icm_encrypt,
    rsfu_icm_set_iv, NULL, "AES-128 ICM (OpenSSL, RingSFU)", NULL, SRTP_AES_ICM_128 };
static const srtp_cipher_type_t rsfu_icm_192 = {
    rsfu_icm_alloc, rsfu_icm_dealloc, rsfu_icm_init, NULL, rsfu_icm_encrypt, rsfu_icm_encrypt,
    rsfu_icm_set_iv, NULL, "AES-192 ICM (OpenSSL, RingSFU)", NULL, SRTP_AES_ICM_192 };
static const srtp_cipher_type_t rsfu_icm_256 = {
    rsfu_icm_alloc, rsfu_icm_dealloc, rsfu_icm_init, NULL, rsfu_icm_encrypt, rsfu_icm_encrypt,
    rsfu_icm_set_iv, NULL, "AES-256 ICM (OpenSSL, RingSFU)", NULL, SRTP_AES_ICM_256 };

/* ---------- AES-GCM (RFC 7714) ---------- */

typedef struct {
    EVP_CIPHER_CTX *ctx;
    uint8_t key[32];
    int key_size;
    int tag_len;
    int direction;
} rsfu_gcm_t;

static const srtp_cipher_type_t rsfu_gcm_128, rsfu_gcm_256;

static srtp_err_status_t rsfu_gcm_alloc(srtp_cipher_pointer_t *cp, int key_len, int tag_len) {
    const srtp_cipher_type_t *type;
    int key_size, algorithm;
    switch (key_len) {
    case SRTP_AES_GCM_128_KEY_LEN_WSALT: type = &rsfu_gcm_128; key_size = 16; algorithm = SRTP_AES_GCM_128; break;
    case SRTP_AES_GCM_256_KEY_LEN_WSALT: type = &rsfu_gcm_256; key_size = 32; algorithm = SRTP_AES_GCM_256; break;
    default: return srtp_err_status_bad_param;
    }
    if (tag_len != 16 && tag_len != 8) return srtp_err_status_bad_param;
    srtp_cipher_t *c = calloc(1, sizeof(srtp_cipher_t) + sizeof(rsfu_gcm_t));
    if (!c) return srtp_err_status_alloc_fail;
    rsfu_gcm_t *s = (rsfu_gcm_t *)(c + 1);
    s->ctx = EVP_CIPHER_CTX_new();
    if (!s->ctx) { free(c); return srtp_err_status_alloc_fail; }
    s->key_size = key_size;
    s->tag_len = tag_len;
    c->type = type;
    c->state = s;
    c->key_len = key_len;
    c->algorithm = algorithm;
    *cp = c;
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_gcm_dealloc(srtp_cipher_pointer_t c) {
    rsfu_gcm_t *s = c->state;
    EVP_CIPHER_CTX_free(s->ctx);
    memset(c, 0, sizeof(srtp_cipher_t) + sizeof(rsfu_gcm_t));
    free(c);
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_gcm_init(void *state, const uint8_t *key) {
    rsfu_gcm_t *s = state;
    memcpy(s->key, key, (size_t)s->key_size);
    s->direction = -1;
    return srtp_err_status_ok;
}

/* The key schedule is set up once per direction; later IVs only reset the nonce. */
static srtp_err_status_t rsfu_gcm_set_iv(void *state, uint8_t *iv, srtp_cipher_direction_t direction) {
    rsfu_gcm_t *s = state;
    if (direction != srtp_direction_encrypt && direction != srtp_direction_decrypt) return srtp_err_status_bad_param;
    int enc = direction == srtp_direction_encrypt ? 1 : 0;
    if (s->direction != (int)direction) {
        const EVP_CIPHER *evp = s->key_size == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
        if (!EVP_CipherInit_ex(s->ctx, evp, NULL, NULL, NULL, enc)) return srtp_err_status_init_fail;
        if (!EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL)) return srtp_err_status_init_fail;
        if (!EVP_CipherInit_ex(s->ctx, NULL, NULL, s->key, iv, enc)) return srtp_err_status_init_fail;
        s->direction = (int)direction;
    } else if (!EVP_CipherInit_ex(s->ctx, NULL, NULL, NULL, iv, enc)) {
        return srtp_err_status_init_fail;
    }
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_gcm_set_aad(void *state, const uint8_t *aad, uint32_t aad_len) {
    rsfu_gcm_t *s = state;
    int out = 0;
    if (!EVP_CipherUpdate(s->ctx, NULL, &out, aad, (int)aad_len)) return srtp_err_status_algo_fail;
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_gcm_encrypt(void *state, uint8_t *buf, unsigned int *len) {
    rsfu_gcm_t *s = state;
    int out = 0;
    if (s->direction != srtp_direction_encrypt) return srtp_err_status_bad_param;
    if (!EVP_CipherUpdate(s->ctx, buf, &out, buf, (int)*len)) return srtp_err_status_cipher_fail;
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_gcm_get_tag(void *state, uint8_t *tag, uint32_t *len) {
    rsfu_gcm_t *s = state;
    int out = 0;
    uint8_t dummy[16];
    if (!EVP_CipherFinal_ex(s->ctx, dummy, &out)) return srtp_err_status_algo_fail;
    if (!EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_GET_TAG, s->tag_len, tag)) return srtp_err_status_algo_fail;
    *len = (uint32_t)s->tag_len;
    return srtp_err_status_ok;
}

/* buf holds ciphertext followed by the tag; on success *len excludes the tag. */
static srtp_err_status_t rsfu_gcm_decrypt(void *state, uint8_t *buf, unsigned int *len) {
    rsfu_gcm_t *s = state;
    int out = 0;
    uint8_t dummy[16];
    if (s->direction != srtp_direction_decrypt) return srtp_err_status_bad_param;
    if (*len < (unsigned int)s->tag_len) return srtp_err_status_bad_param;
    unsigned int data_len = *len - (unsigned int)s->tag_len;
    if (!EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_SET_TAG, s->tag_len, buf + data_len)) return srtp_err_status_algo_fail;
    if (!EVP_CipherUpdate(s->ctx, buf, &out, buf, (int)data_len)) return srtp_err_status_cipher_fail;
    if (EVP_CipherFinal_ex(s->ctx, dummy, &out) <= 0) return srtp_err_status_auth_fail;
    *len = data_len;
    return srtp_err_status_ok;
}

static const srtp_cipher_type_t rsfu_gcm_128 = {
    rsfu_gcm_alloc, rsfu_gcm_dealloc, rsfu_gcm_init, rsfu_gcm_set_aad, rsfu_gcm_encrypt, rsfu_gcm_decrypt,
    rsfu_gcm_set_iv, rsfu_gcm_get_tag, "AES-128 GCM (OpenSSL, RingSFU)", NULL, SRTP_AES_GCM_128 };
static const srtp_cipher_type_t rsfu_gcm_256 = {
    rsfu_gcm_alloc, rsfu_gcm_dealloc, rsfu_gcm_init, rsfu_gcm_set_aad, rsfu_gcm_encrypt, rsfu_gcm_decrypt,
    rsfu_gcm_set_iv, rsfu_gcm_get_tag, "AES-256 GCM (OpenSSL, RingSFU)", NULL, SRTP_AES_GCM_256 };

/* ---------- HMAC-SHA1 (RFC 2104) with precomputed pad states ---------- */

typedef struct {
    SHA_CTX inner_start; /* state after hashing key ^ ipad */
    SHA_CTX outer_start; /* state after hashing key ^ opad */
    SHA_CTX work;
} rsfu_hmac_t;

static const srtp_auth_type_t rsfu_hmac;

static srtp_err_status_t rsfu_hmac_alloc(srtp_auth_pointer_t *ap, int key_len, int out_len) {
    if (key_len < 0 || key_len > SHA_DIGEST_LENGTH || out_len < 0 || out_len > SHA_DIGEST_LENGTH) return srtp_err_status_bad_param;
    srtp_auth_t *a = calloc(1, sizeof(srtp_auth_t) + sizeof(rsfu_hmac_t));
    if (!a) return srtp_err_status_alloc_fail;
    a->type = &rsfu_hmac;
    a->state = a + 1;
    a->out_len = out_len;
    a->key_len = key_len;
    a->prefix_len = 0;
    *ap = a;
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_hmac_dealloc(srtp_auth_pointer_t a) {
    memset(a, 0, sizeof(srtp_auth_t) + sizeof(rsfu_hmac_t));
    free(a);
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_hmac_init(void *state, const uint8_t *key, int key_len) {
    rsfu_hmac_t *h = state;
    uint8_t ipad[64], opad[64];
    if (key_len > 64) return srtp_err_status_bad_param;
    memset(ipad, 0x36, sizeof(ipad));
    memset(opad, 0x5c, sizeof(opad));
    for (int i = 0; i < key_len; i++) { ipad[i] ^= key[i]; opad[i] ^= key[i]; }
    SHA1_Init(&h->inner_start);
    SHA1_Update(&h->inner_start, ipad, sizeof(ipad));
    SHA1_Init(&h->outer_start);
    SHA1_Update(&h->outer_start, opad, sizeof(opad));
    h->work = h->inner_start;
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_hmac_start(void *state) {
    rsfu_hmac_t *h = state;
    h->work = h->inner_start;
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_hmac_update(void *state, const uint8_t *msg, int len) {
    rsfu_hmac_t *h = state;
    SHA1_Update(&h->work, msg, (size_t)len);
    return srtp_err_status_ok;
}

static srtp_err_status_t rsfu_hmac_compute(void *state, const uint8_t *msg, int len, int tag_len, uint8_t *result) {
    rsfu_hmac_t *h = state;
    uint8_t inner[SHA_DIGEST_LENGTH], outer[SHA_DIGEST_LENGTH];
    if (tag_len > SHA_DIGEST_LENGTH) return srtp_err_status_bad_param;
    SHA1_Update(&h->work, msg, (size_t)len);
    SHA1_Final(inner, &h->work);
    SHA_CTX o = h->outer_start;
    SHA1_Update(&o, inner, sizeof(inner));
    SHA1_Final(outer, &o);
    memcpy(result, outer, (size_t)tag_len);
    return srtp_err_status_ok;
}

static const srtp_auth_type_t rsfu_hmac = {
    rsfu_hmac_alloc, rsfu_hmac_dealloc, rsfu_hmac_init, rsfu_hmac_compute, rsfu_hmac_update,
    rsfu_hmac_start, "HMAC-SHA1 (OpenSSL, RingSFU)", NULL, SRTP_HMAC_SHA1 };

/* ---------- Installation ---------- */

/* Copies of the types with the stock test vectors attached (the structs
 * must live for the whole process: libsrtp keeps pointers to them). */
static srtp_cipher_type_t installed_icm_128, installed_icm_192, installed_icm_256, installed_gcm_128, installed_gcm_256;
static srtp_auth_type_t installed_hmac;
static int srtp_ready = 0;

int rsfu_srtp_init(void) {
    if (srtp_ready) return 0;
    srtp_err_status_t st = srtp_init();
    if (st != srtp_err_status_ok) return (int)st;
    installed_icm_128 = rsfu_icm_128; installed_icm_128.test_data = srtp_aes_icm_128.test_data;
    installed_icm_192 = rsfu_icm_192; installed_icm_192.test_data = srtp_aes_icm_192.test_data;
    installed_icm_256 = rsfu_icm_256; installed_icm_256.test_data = srtp_aes_icm_256.test_data;
    installed_gcm_128 = rsfu_gcm_128; installed_gcm_128.test_data = srtp_aes_gcm_128.test_data;
    installed_gcm_256 = rsfu_gcm_256; installed_gcm_256.test_data = srtp_aes_gcm_256.test_data;
    installed_hmac = rsfu_hmac; installed_hmac.test_data = srtp_hmac.test_data;
    srtp_ready = 1;
    return 0;
}

int rsfu_srtp_use_openssl(int on) {
    srtp_err_status_t st;
    if (!srtp_ready) return -1;
    /* Each replacement runs the type's self-test against the stock vectors. */
    if ((st = srtp_replace_cipher_type(on ? &installed_icm_128 : &srtp_aes_icm_128, SRTP_AES_ICM_128))) return 100 + (int)st;
    if ((st = srtp_replace_cipher_type(on ? &installed_icm_192 : &srtp_aes_icm_192, SRTP_AES_ICM_192))) return 200 + (int)st;
    if ((st = srtp_replace_cipher_type(on ? &installed_icm_256 : &srtp_aes_icm_256, SRTP_AES_ICM_256))) return 300 + (int)st;
    if ((st = srtp_replace_cipher_type(on ? &installed_gcm_128 : &srtp_aes_gcm_128, SRTP_AES_GCM_128))) return 400 + (int)st;
    if ((st = srtp_replace_cipher_type(on ? &installed_gcm_256 : &srtp_aes_gcm_256, SRTP_AES_GCM_256))) return 500 + (int)st;
    if ((st = srtp_replace_auth_type(on ? &installed_hmac : &srtp_hmac, SRTP_HMAC_SHA1))) return 600 + (int)st;
    return 0;
}
