/*
 * seal_aead.c: AES-256-GCM for envelope version 2 (proto/seal.h), behind
 * one small interface (seal_internal.h) with two interchangeable engines
 * for the same standard cipher: libsodium's crypto_aead_aes256gcm (always
 * there), or OpenSSL's libcrypto EVP when the build found it
 * (TRACK_HAVE_OPENSSL; CMake option TRACK_OPENSSL_GCM). A frame sealed by
 * one opens with the other: 12-byte IV, 16-byte tag, the same associated
 * data. libcrypto is there only for speed: with VAES and VPCLMULQDQ it
 * runs GCM about three times faster than libsodium 1.0.18, whose
 * AES-NI code does one block at a time (issue 15, B18b).
 *
 * Either way the key is set once per state: libsodium keeps the expanded
 * key in the state itself (in the caller's sodium_malloc'd memory);
 * OpenSSL keeps it in two EVP_CIPHER_CTX (one per direction), heap
 * memory that EVP_CIPHER_CTX_free cleanses. A frame then costs only the
 * IV setup. Whether version 2 is used at all is decided by AES-NI
 * (crypto_aead_aes256gcm_is_available) with either engine, so the choice
 * of engine never changes what goes on the wire.
 */
#include "seal_internal.h"

#ifdef TRACK_HAVE_OPENSSL
#include <openssl/evp.h>
#endif

const char *seal_aes_engine(void)
{
#ifdef TRACK_HAVE_OPENSSL
    return "openssl";
#else
    return "libsodium";
#endif
}

void seal_i_aead_clear(struct seal_i_aead *a)
{
#ifdef TRACK_HAVE_OPENSSL
    EVP_CIPHER_CTX_free(a->enc);
    EVP_CIPHER_CTX_free(a->dec);
#endif
    sodium_memzero(a, sizeof(*a));
}

int seal_i_aead_init(struct seal_i_aead *a, const uint8_t k[crypto_box_BEFORENMBYTES],
                     const uint8_t salt[SEAL2_SALT_BYTES])
{
    static const char ctx[8] = "trk-aes1";
    uint8_t in[sizeof(ctx) + SEAL2_SALT_BYTES], key[crypto_aead_aes256gcm_KEYBYTES];
    int rc = 0;
    seal_i_aead_clear(a);
    memcpy(in, ctx, sizeof(ctx));
    memcpy(in + sizeof(ctx), salt, SEAL2_SALT_BYTES);
    crypto_generichash(key, sizeof(key), in, sizeof(in), k, crypto_box_BEFORENMBYTES);
#ifdef TRACK_HAVE_OPENSSL
    a->enc = EVP_CIPHER_CTX_new();
    a->dec = EVP_CIPHER_CTX_new();
    if (!a->enc || !a->dec || EVP_EncryptInit_ex(a->enc, EVP_aes_256_gcm(), NULL, key, NULL) != 1 ||
        EVP_DecryptInit_ex(a->dec, EVP_aes_256_gcm(), NULL, key, NULL) != 1) {
        seal_i_aead_clear(a);
        rc = -1;
    }
#else
    crypto_aead_aes256gcm_beforenm(&a->st, key);
#endif
    sodium_memzero(key, sizeof(key));
    if (rc == 0)
        a->ready = 1;
    return rc;
}

int seal_i_aead_encrypt(struct seal_i_aead *a, uint8_t *c, uint8_t mac[SEAL_MAC_BYTES],
                        const uint8_t *m, size_t mlen, const uint8_t *ad, size_t adlen,
                        const uint8_t nonce[SEAL2_NONCE_BYTES])
{
#ifdef TRACK_HAVE_OPENSSL
    int n = 0;
    EVP_CIPHER_CTX *x = a->enc;
    if (mlen > INT_MAX || adlen > INT_MAX || EVP_EncryptInit_ex(x, NULL, NULL, NULL, nonce) != 1 ||
        (adlen && EVP_EncryptUpdate(x, NULL, &n, ad, (int)adlen) != 1) ||
        (mlen && EVP_EncryptUpdate(x, c, &n, m, (int)mlen) != 1) ||
        EVP_EncryptFinal_ex(x, c + mlen, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, SEAL_MAC_BYTES, mac) != 1)
        return -1;
    return 0;
#else
    return crypto_aead_aes256gcm_encrypt_detached_afternm(c, mac, NULL, m, mlen, ad, adlen, NULL,
                                                          nonce, &a->st);
#endif
}

int seal_i_aead_decrypt(struct seal_i_aead *a, uint8_t *m, const uint8_t *c, size_t clen,
                        const uint8_t mac[SEAL_MAC_BYTES], const uint8_t *ad, size_t adlen,
                        const uint8_t nonce[SEAL2_NONCE_BYTES])
{
#ifdef TRACK_HAVE_OPENSSL
    int n = 0, ok;
    uint8_t tag[SEAL_MAC_BYTES];
    EVP_CIPHER_CTX *x = a->dec;
    memcpy(tag, mac, sizeof(tag)); /* the ctrl takes a non-const pointer */
    ok = clen <= INT_MAX && adlen <= INT_MAX &&
         EVP_DecryptInit_ex(x, NULL, NULL, NULL, nonce) == 1 &&
         (!adlen || EVP_DecryptUpdate(x, NULL, &n, ad, (int)adlen) == 1) &&
         (!clen || EVP_DecryptUpdate(x, m, &n, c, (int)clen) == 1) &&
         EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, SEAL_MAC_BYTES, tag) == 1 &&
         EVP_DecryptFinal_ex(x, m + clen, &n) == 1;
    if (!ok && clen)
        sodium_memzero(m, clen); /* never hand back text that did not verify */
    return ok ? 0 : -1;
#else
    return crypto_aead_aes256gcm_decrypt_detached_afternm(m, NULL, c, clen, mac, ad, adlen, nonce,
                                                          &a->st);
#endif
}
