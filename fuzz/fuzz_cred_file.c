/*
 * Fuzz target for common/cred.h: the credential file reader and the key text
 * parser. The expected outcome of ab_cred_open is computed independently
 * from the documented file format (the target decrypts with libsodium
 * itself), so the check covers the error order, authentication and the
 * plaintext layout. Key text is checked against its documented grammar.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/cred.h"
#include "common/err.h"
#include "fuzz/targets.h"

#define CRED_NONCE_OFF  AB_CRED_HEADER_LEN
#define CRED_CIPHER_OFF (AB_CRED_HEADER_LEN + AB_CRED_NONCE_LEN)
#define CRED_SECRET_OFF (2 + AB_CRED_FIELD_MAX)

/* The fixed key every file of this target is sealed with. */
static void cred_fixed_key(struct ab_cred_key *key)
{
    memset(key, 0, sizeof(*key));
    for (size_t i = 0; i < AB_CRED_KEY_BYTES; i++)
        key->bytes[i] = (unsigned char)(0x11 * (i + 1));
}

static bool cred_field_ok(const unsigned char *p, size_t len)
{
    if (len == 0 || len > AB_CRED_FIELD_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    return true;
}

/*
 * What ab_cred_open must return for buf, from the format in cred.h alone.
 * On 0 fills plain (the decrypted plaintext).
 */
static int cred_expect(const unsigned char *buf, size_t len, const struct ab_cred_key *key,
                       unsigned char plain[AB_CRED_PLAIN_LEN])
{
    if (len == 0)
        return AB_ETRUNC;
    size_t m = len < AB_CRED_MAGIC_LEN ? len : AB_CRED_MAGIC_LEN;
    if (memcmp(buf, AB_CRED_MAGIC, m) != 0)
        return AB_EINVAL;
    if (len < AB_CRED_HEADER_LEN)
        return AB_ETRUNC;
    if (buf[AB_CRED_MAGIC_LEN] != AB_CRED_VERSION)
        return AB_ERANGE;
    if (len < AB_CRED_FILE_SIZE)
        return AB_ETRUNC;
    if (len > AB_CRED_FILE_SIZE)
        return AB_EINVAL;
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, &plen, NULL, buf + CRED_CIPHER_OFF, AB_CRED_PLAIN_LEN + AB_CRED_TAG_LEN, buf,
            AB_CRED_HEADER_LEN, buf + CRED_NONCE_OFF, key->bytes) != 0)
        return AB_ECRYPTO;
    AB_FUZZ_CHECK(plen == AB_CRED_PLAIN_LEN);
    size_t klen = ((size_t)plain[0] << 8) | plain[1];
    size_t slen = ((size_t)plain[CRED_SECRET_OFF] << 8) | plain[CRED_SECRET_OFF + 1];
    if (!cred_field_ok(plain + 2, klen) || !cred_field_ok(plain + CRED_SECRET_OFF + 2, slen))
        return AB_EINVAL;
    return 0;
}

static bool cred_wiped(const struct ab_cred *c)
{
    return c->api_key_len == 0 && c->api_secret_len == 0 && c->api_key[0] == '\0' &&
           c->api_secret[0] == '\0';
}

/* Opens buf and compares with the independent expectation. */
static void cred_open_checked(const unsigned char *buf, size_t len)
{
    struct ab_cred_key key;
    cred_fixed_key(&key);
    unsigned char plain[AB_CRED_PLAIN_LEN];
    int want = cred_expect(buf, len, &key, plain);

    struct ab_cred c;
    memset(&c, 0, sizeof(c));
    memset(c.api_key, 'k', sizeof(c.api_key) - 1); /* leftovers must be wiped on failure */
    c.api_key_len = 5;
    const char *why = NULL;
    int rc = ab_cred_open(buf, len, &key, &c, &why);
    AB_FUZZ_CHECK(rc == want);
    if (rc != 0) {
        AB_FUZZ_CHECK(why != NULL && why[0] != '\0');
        AB_FUZZ_CHECK(cred_wiped(&c));
        return;
    }
    size_t klen = ((size_t)plain[0] << 8) | plain[1];
    size_t slen = ((size_t)plain[CRED_SECRET_OFF] << 8) | plain[CRED_SECRET_OFF + 1];
    AB_FUZZ_CHECK(c.api_key_len == klen && c.api_secret_len == slen);
    AB_FUZZ_CHECK(memcmp(c.api_key, plain + 2, klen) == 0 && c.api_key[klen] == '\0');
    AB_FUZZ_CHECK(memcmp(c.api_secret, plain + CRED_SECRET_OFF + 2, slen) == 0 &&
                  c.api_secret[slen] == '\0');

    /* What opens must seal again and open to the same values. */
    unsigned char again[AB_CRED_FILE_SIZE];
    struct ab_cred c2;
    memset(&c2, 0, sizeof(c2));
    AB_FUZZ_CHECK(ab_cred_seal(&c, &key, again, NULL) == 0);
    AB_FUZZ_CHECK(ab_cred_open(again, sizeof(again), &key, &c2, NULL) == 0);
    AB_FUZZ_CHECK(strcmp(c.api_key, c2.api_key) == 0 && strcmp(c.api_secret, c2.api_secret) == 0);
    ab_cred_wipe(&c);
    ab_cred_wipe(&c2);
}

/* Seals an arbitrary plaintext (zero-padded) with the fixed key and a fixed nonce. */
static void cred_mode_plaintext(const uint8_t *data, size_t size)
{
    struct ab_cred_key key;
    cred_fixed_key(&key);
    unsigned char plain[AB_CRED_PLAIN_LEN] = {0};
    memcpy(plain, data, size < sizeof(plain) ? size : sizeof(plain));
    unsigned char file[AB_CRED_FILE_SIZE];
    memcpy(file, AB_CRED_MAGIC, AB_CRED_MAGIC_LEN);
    file[AB_CRED_MAGIC_LEN] = AB_CRED_VERSION;
    memset(file + CRED_NONCE_OFF, 0x42, AB_CRED_NONCE_LEN);
    unsigned long long clen = 0;
    AB_FUZZ_CHECK(crypto_aead_xchacha20poly1305_ietf_encrypt(
                      file + CRED_CIPHER_OFF, &clen, plain, sizeof(plain), file, AB_CRED_HEADER_LEN,
                      NULL, file + CRED_NONCE_OFF, key.bytes) == 0);
    cred_open_checked(file, sizeof(file));
}

/* XORs data over a valid sealed file (extra bytes are appended): any change must fail. */
static void cred_mode_tamper(const uint8_t *data, size_t size)
{
    struct ab_cred_key key;
    cred_fixed_key(&key);
    struct ab_cred c;
    memset(&c, 0, sizeof(c));
    AB_FUZZ_CHECK(ab_cred_set(&c, "FUZZKEY0123", "fuzz-secret/456+", NULL) == 0);
    size_t len = size > AB_CRED_FILE_SIZE ? size : AB_CRED_FILE_SIZE;
    unsigned char *file = malloc(len);
    AB_FUZZ_CHECK(file != NULL);
    AB_FUZZ_CHECK(ab_cred_seal(&c, &key, file, NULL) == 0);
    bool changed = size > AB_CRED_FILE_SIZE;
    for (size_t i = 0; i < size; i++) {
        if (i < AB_CRED_FILE_SIZE) {
            file[i] ^= data[i];
            changed |= data[i] != 0;
        } else {
            file[i] = data[i];
        }
    }
    struct ab_cred out;
    memset(&out, 0, sizeof(out));
    int rc = ab_cred_open(file, len, &key, &out, NULL);
    AB_FUZZ_CHECK((rc == 0) == !changed);
    if (rc == 0)
        AB_FUZZ_CHECK(strcmp(out.api_key, c.api_key) == 0 &&
                      strcmp(out.api_secret, c.api_secret) == 0);
    cred_open_checked(file, len);
    free(file);
    ab_cred_wipe(&c);
    ab_cred_wipe(&out);
}

static bool cred_is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Key text: 64 hex digits with optional ASCII whitespace around them, under 4096 bytes. */
static void cred_mode_key_text(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    AB_FUZZ_CHECK(text != NULL);
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text), start = 0;
    while (start < len && cred_is_space(text[start]))
        start++;
    while (len > start && cred_is_space(text[len - 1]))
        len--;
    /* cred.c scans at most 4096 bytes: longer text is rejected whatever it holds. */
    bool valid = len - start == AB_CRED_KEY_HEX_LEN && strlen(text) < 4096;
    for (size_t i = start; valid && i < len; i++) {
        char ch = text[i];
        valid = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
    }

    struct ab_cred_key key;
    memset(&key, 0x77, sizeof(key));
    const char *why = NULL;
    int rc = ab_cred_key_parse(text, &key, &why);
    AB_FUZZ_CHECK(rc == (valid ? 0 : AB_EINVAL));
    if (rc == 0) {
        char hex[AB_CRED_KEY_HEX_LEN + 1];
        ab_cred_key_format(&key, hex);
        for (size_t i = 0; i < AB_CRED_KEY_HEX_LEN; i++) {
            char ch = text[start + i];
            if (ch >= 'A' && ch <= 'F')
                ch = (char)(ch - 'A' + 'a');
            AB_FUZZ_CHECK(hex[i] == ch);
        }
    } else {
        AB_FUZZ_CHECK(why != NULL && why[0] != '\0');
        for (size_t i = 0; i < AB_CRED_KEY_BYTES; i++)
            AB_FUZZ_CHECK(key.bytes[i] == 0); /* zeroed on failure */
    }
    free(text);
}

int ab_fuzz_cred_file(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    AB_FUZZ_CHECK(sodium_init() >= 0);
    switch (data[0] % 4) {
    case 0:
        cred_open_checked(data + 1, size - 1);
        break;
    case 1:
        cred_mode_key_text(data + 1, size - 1);
        break;
    case 2:
        cred_mode_plaintext(data + 1, size - 1);
        break;
    default:
        cred_mode_tamper(data + 1, size - 1);
        break;
    }
    return 0;
}
