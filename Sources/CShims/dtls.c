/*
 * DTLS 1.2 for WebRTC transports (RFC 5764, RFC 8842) over OpenSSL memory
 * BIOs: the forwarder feeds received records in and sends what comes out;
 * no sockets here. One context per worker holds the ECDSA P-256 self-signed
 * certificate; one session per transport.
 */
#define _GNU_SOURCE 1
#include "CShims.h"
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <string.h>
#include <stdio.h>

struct rsfu_dtls_ctx {
    SSL_CTX *ssl_ctx;
    X509 *cert;
    EVP_PKEY *key;
};

struct rsfu_dtls {
    SSL *ssl;
    BIO *in;
    BIO *out;
    int done;
    int failed;
};

/* The peer's certificate is checked against the signalled fingerprint
 * after the handshake (it is self-signed), so any chain is accepted here. */
static int accept_any(int preverify, X509_STORE_CTX *ctx) { (void)preverify; (void)ctx; return 1; }

static X509 *make_certificate(EVP_PKEY *key) {
    X509 *x = X509_new();
    if (!x) return NULL;
    X509_set_version(x, 2);
    uint64_t serial = 0;
    RAND_bytes((unsigned char *)&serial, sizeof(serial));
    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"ringsfu", -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (!X509_sign(x, key, EVP_sha256())) { X509_free(x); return NULL; }
    return x;
}

rsfu_dtls_ctx *rsfu_dtls_ctx_new(const char *cert_pem_path, const char *key_pem_path) {
    rsfu_dtls_ctx *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    if (cert_pem_path && key_pem_path) {
        FILE *f = fopen(key_pem_path, "r");
        if (f) { c->key = PEM_read_PrivateKey(f, NULL, NULL, NULL); fclose(f); }
        f = fopen(cert_pem_path, "r");
        if (f) { c->cert = PEM_read_X509(f, NULL, NULL, NULL); fclose(f); }
    } else {
        c->key = EVP_EC_gen("P-256");
        if (c->key) c->cert = make_certificate(c->key);
    }
    if (!c->key || !c->cert) goto fail;
    c->ssl_ctx = SSL_CTX_new(DTLS_method());
    if (!c->ssl_ctx) goto fail;
    SSL_CTX_set_min_proto_version(c->ssl_ctx, DTLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(c->ssl_ctx, DTLS1_2_VERSION);
    if (SSL_CTX_use_certificate(c->ssl_ctx, c->cert) != 1) goto fail;
    if (SSL_CTX_use_PrivateKey(c->ssl_ctx, c->key) != 1) goto fail;
    if (SSL_CTX_check_private_key(c->ssl_ctx) != 1) goto fail;
    SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
    SSL_CTX_set_cipher_list(c->ssl_ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA");
    /* GCM first: servers pick by their own preference. */
    if (SSL_CTX_set_tlsext_use_srtp(c->ssl_ctx, "SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32") != 0) goto fail;
    SSL_CTX_set_read_ahead(c->ssl_ctx, 1);
    return c;
fail:
    rsfu_dtls_ctx_free(c);
    return NULL;
}

void rsfu_dtls_ctx_free(rsfu_dtls_ctx *c) {
    if (!c) return;
    if (c->ssl_ctx) SSL_CTX_free(c->ssl_ctx);
    if (c->cert) X509_free(c->cert);
    if (c->key) EVP_PKEY_free(c->key);
    free(c);
}

static const EVP_MD *digest_named(const char *alg) {
    if (!strcmp(alg, "sha-1")) return EVP_sha1();
    if (!strcmp(alg, "sha-224")) return EVP_sha224();
    if (!strcmp(alg, "sha-256")) return EVP_sha256();
    if (!strcmp(alg, "sha-384")) return EVP_sha384();
    if (!strcmp(alg, "sha-512")) return EVP_sha512();
    return NULL;
}

static int format_fingerprint(X509 *cert, const char *alg, char *out, size_t cap) {
    const EVP_MD *md = digest_named(alg);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!md || !cert || !X509_digest(cert, md, d, &n)) return -1;
    if (cap < (size_t)n * 3) return -1;
    for (unsigned int i = 0; i < n; i++) snprintf(out + i * 3, 4, i + 1 < n ? "%02X:" : "%02X", d[i]);
    return 0;
}

int rsfu_dtls_ctx_fingerprint(rsfu_dtls_ctx *c, const char *alg, char *out, size_t cap) {
    return format_fingerprint(c->cert, alg, out, cap);
}

rsfu_dtls *rsfu_dtls_new(rsfu_dtls_ctx *c, int is_client, int mtu) {
    rsfu_dtls *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->ssl = SSL_new(c->ssl_ctx);
    d->in = BIO_new(BIO_s_mem());
    d->out = BIO_new(BIO_s_mem());
    if (!d->ssl || !d->in || !d->out) { rsfu_dtls_free(d); return NULL; }
    BIO_set_mem_eof_return(d->in, -1);
    BIO_set_mem_eof_return(d->out, -1);
    SSL_set_bio(d->ssl, d->in, d->out);
    SSL_set_options(d->ssl, SSL_OP_NO_QUERY_MTU);
    DTLS_set_link_mtu(d->ssl, mtu > 0 ? mtu : 1200);
    if (is_client) SSL_set_connect_state(d->ssl); else SSL_set_accept_state(d->ssl);
    return d;
}

void rsfu_dtls_free(rsfu_dtls *d) {
    if (!d) return;
    if (d->ssl) SSL_free(d->ssl); /* frees both BIOs */
    else { if (d->in) BIO_free(d->in); if (d->out) BIO_free(d->out); }
    free(d);
}

static int step(rsfu_dtls *d) {
    if (d->failed) return -1;
    if (d->done) return 1;
    int r = SSL_do_handshake(d->ssl);
    if (r == 1) { d->done = 1; return 1; }
    int e = SSL_get_error(d->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    d->failed = 1;
    ERR_clear_error();
    return -1;
}

int rsfu_dtls_start(rsfu_dtls *d) { return step(d); }

int rsfu_dtls_feed(rsfu_dtls *d, const uint8_t *data, size_t len) {
    /* A failed or closed session takes nothing more (nothing would read it). */
    if (d->failed) return -1;
    if (len > 0 && BIO_write(d->in, data, (int)len) <= 0) return -1;
    /* After the handshake, records are application data (SCTP) or
     * alerts: the caller takes them with rsfu_dtls_read. */
    return step(d);
}

int rsfu_dtls_read(rsfu_dtls *d, uint8_t *buf, size_t cap) {
    if (!d->done || d->failed) return 0;
    /* Records OpenSSL already buffered count too (several per datagram). */
    if (BIO_ctrl_pending(d->in) == 0 && !SSL_has_pending(d->ssl)) return 0;
    int r = SSL_read(d->ssl, buf, (int)cap);
    if (r > 0) return r;
    int e = SSL_get_error(d->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ) return 0;
    /* close_notify, a fatal alert or a broken session: it is over. */
    d->failed = 1;
    (void)BIO_reset(d->in);
    return -2;
}

int rsfu_dtls_write(rsfu_dtls *d, const uint8_t *data, size_t len) {
    if (!d->done || d->failed) return -1;
    int r = SSL_write(d->ssl, data, (int)len);
    if (r <= 0) { ERR_clear_error(); return -1; }
    return 0;
}

void rsfu_dtls_close(rsfu_dtls *d) {
    if (!d->done || d->failed) return;
    SSL_shutdown(d->ssl);
    ERR_clear_error();
}

size_t rsfu_dtls_take_output(rsfu_dtls *d, uint8_t *buf, size_t cap) {
    int n = BIO_read(d->out, buf, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

long rsfu_dtls_timeout_ms(rsfu_dtls *d) {
    struct timeval tv;
    if (d->done || d->failed) return -1;
    if (DTLSv1_get_timeout(d->ssl, &tv) != 1) return -1;
    return tv.tv_sec * 1000L + tv.tv_usec / 1000L;
}

void rsfu_dtls_set_backoff(rsfu_dtls *d, unsigned int (*next)(void *ssl, unsigned int previous_us)) {
    DTLS_set_timer_cb(d->ssl, (DTLS_timer_cb)next);
}

int rsfu_dtls_handle_timeout(rsfu_dtls *d) {
    if (d->done || d->failed) return 0;
    int r = DTLSv1_handle_timeout(d->ssl);
    if (r < 0) { d->failed = 1; ERR_clear_error(); return -1; }
    return r;
}

int rsfu_dtls_peer_fingerprint(rsfu_dtls *d, const char *alg, char *out, size_t cap) {
    X509 *peer = SSL_get1_peer_certificate(d->ssl);
    if (!peer) return -1;
    int r = format_fingerprint(peer, alg, out, cap);
    X509_free(peer);
    return r;
}

/* The negotiated SRTP profile id (RFC 5764 / RFC 7714 numbers) and the
 * keys: `local` is what this side sends with, `remote` what it receives with. */
int rsfu_dtls_srtp_keys(rsfu_dtls *d, int is_client, uint8_t *local, uint8_t *remote, size_t *key_salt_len) {
    SRTP_PROTECTION_PROFILE *p = SSL_get_selected_srtp_profile(d->ssl);
    if (!p || !d->done) return -1;
    size_t key_len, salt_len;
    switch (p->id) {
    case SRTP_AES128_CM_SHA1_80: case SRTP_AES128_CM_SHA1_32: key_len = 16; salt_len = 14; break;
    case SRTP_AEAD_AES_128_GCM: key_len = 16; salt_len = 12; break;
    case SRTP_AEAD_AES_256_GCM: key_len = 32; salt_len = 12; break;
    default: return -1;
    }
    uint8_t m[2 * (32 + 14)];
    size_t total = 2 * (key_len + salt_len);
    if (SSL_export_keying_material(d->ssl, m, total, "EXTRACTOR-dtls_srtp", 19, NULL, 0, 0) != 1) return -1;
    const uint8_t *ck = m, *sk = m + key_len, *cs = m + 2 * key_len, *ss = m + 2 * key_len + salt_len;
    const uint8_t *lk = is_client ? ck : sk, *ls = is_client ? cs : ss;
    const uint8_t *rk = is_client ? sk : ck, *rs = is_client ? ss : cs;
    memcpy(local, lk, key_len); memcpy(local + key_len, ls, salt_len);
    memcpy(remote, rk, key_len); memcpy(remote + key_len, rs, salt_len);
    *key_salt_len = key_len + salt_len;
    return (int)p->id;
}
