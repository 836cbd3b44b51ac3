#include "common/cred.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"

/* libsodium promises these sizes; the file format depends on them. */
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == AB_CRED_KEY_BYTES, "key size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == AB_CRED_NONCE_LEN, "nonce size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == AB_CRED_TAG_LEN, "tag size");
_Static_assert(AB_CRED_FILE_SIZE == 565, "the version-1 file size is part of the format");

#define NONCE_OFF  AB_CRED_HEADER_LEN
#define CIPHER_OFF (AB_CRED_HEADER_LEN + AB_CRED_NONCE_LEN)
#define KEY_OFF    0                       /* in the plaintext */
#define SECRET_OFF (2 + AB_CRED_FIELD_MAX) /* in the plaintext */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status = -1;

static void sodium_setup(void)
{
    sodium_status = sodium_init() < 0 ? -1 : 0;
}

static int need_sodium(const char **why)
{
    pthread_once(&sodium_once, sodium_setup);
    if (sodium_status != 0) {
        *why = "libsodium failed to initialise";
        return AB_ECRYPTO;
    }
    return 0;
}

/* Lets every function write *why without checking the caller passed one. */
static const char **why_or_dummy(const char **why, const char **dummy)
{
    return why ? why : dummy;
}

void ab_cred_key_init(struct ab_cred_key *key)
{
    sodium_memzero(key, sizeof(*key));
    /* mlock keeps the key out of swap; without the privilege we go on unlocked. */
    if (need_sodium(&(const char *){NULL}) == 0)
        key->locked = sodium_mlock(key, sizeof(*key)) == 0;
}

void ab_cred_key_wipe(struct ab_cred_key *key)
{
    if (key)
        sodium_memzero(key->bytes, sizeof(key->bytes));
}

void ab_cred_key_deinit(struct ab_cred_key *key)
{
    if (!key)
        return;
    if (key->locked)
        sodium_munlock(key, sizeof(*key)); /* also zeroes */
    sodium_memzero(key, sizeof(*key));
}

int ab_cred_key_generate(struct ab_cred_key *key)
{
    const char *dummy;
    int rc = need_sodium(&dummy);
    if (rc)
        return rc;
    crypto_aead_xchacha20poly1305_ietf_keygen(key->bytes);
    return 0;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static bool is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

int ab_cred_key_parse(const char *text, struct ab_cred_key *key, const char **why)
{
    const char *dummy;
    why = why_or_dummy(why, &dummy);
    ab_cred_key_wipe(key);
    int rc = need_sodium(why);
    if (rc)
        return rc;
    if (!text) {
        *why = "key is missing";
        return AB_EINVAL;
    }
    /* Bounded scan: a key text longer than this is wrong anyway, so reject it
     * rather than judge only its first 4096 bytes. */
    size_t len = strnlen(text, 4096);
    if (len == 4096) {
        *why = "key text is too long (expected 64 hex digits)";
        return AB_EINVAL;
    }
    size_t start = 0;
    while (start < len && is_space(text[start]))
        start++;
    while (len > start && is_space(text[len - 1]))
        len--;
    len -= start;
    if (len == 0) {
        *why = "key is empty (expected 64 hex digits)";
        return AB_EINVAL;
    }
    if (len != AB_CRED_KEY_HEX_LEN) {
        *why = "key has the wrong length (expected 64 hex digits, as printed by keygen)";
        return AB_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_hex(text[start + i])) {
            *why = "key contains a character that is not a hex digit (expected 64 hex digits)";
            return AB_EINVAL;
        }
    }
    size_t bin_len = 0;
    if (sodium_hex2bin(key->bytes, sizeof(key->bytes), text + start, len, NULL, &bin_len, NULL) !=
            0 ||
        bin_len != AB_CRED_KEY_BYTES) {
        ab_cred_key_wipe(key);
        *why = "key is not valid hex";
        return AB_EINVAL;
    }
    return 0;
}

int ab_cred_key_from_env(struct ab_cred_key *key, const char **why)
{
    const char *dummy;
    why = why_or_dummy(why, &dummy);
    const char *text = getenv(AB_CRED_KEY_ENV);
    if (!text || !*text) {
        ab_cred_key_wipe(key);
        *why = AB_CRED_KEY_ENV " is not set (it holds the key printed by `abidance-cred keygen`)";
        return AB_EMISSING;
    }
    int rc = ab_cred_key_parse(text, key, why);
    if (rc == AB_EINVAL)
        *why = AB_CRED_KEY_ENV " is malformed: expected 64 hex digits, as printed by "
                               "`abidance-cred keygen`";
    return rc;
}

void ab_cred_key_format(const struct ab_cred_key *key, char out[AB_CRED_KEY_HEX_LEN + 1])
{
    sodium_bin2hex(out, AB_CRED_KEY_HEX_LEN + 1, key->bytes, sizeof(key->bytes));
}

void ab_cred_init(struct ab_cred *c)
{
    sodium_memzero(c, sizeof(*c));
    if (need_sodium(&(const char *){NULL}) == 0)
        c->locked = sodium_mlock(c, sizeof(*c)) == 0;
}

void ab_cred_wipe(struct ab_cred *c)
{
    if (!c)
        return;
    sodium_memzero(c->api_key, sizeof(c->api_key));
    sodium_memzero(c->api_secret, sizeof(c->api_secret));
    c->api_key_len = 0;
    c->api_secret_len = 0;
}

void ab_cred_deinit(struct ab_cred *c)
{
    if (!c)
        return;
    if (c->locked)
        sodium_munlock(c, sizeof(*c));
    sodium_memzero(c, sizeof(*c));
}

/*
 * Checks len bytes of credential text; the messages name the field, never
 * its contents.
 */
static int check_field(const char *s, size_t len, bool secret, const char **why)
{
    if (len == 0) {
        *why = secret ? "API secret is empty" : "API key is empty";
        return AB_EINVAL;
    }
    if (len > AB_CRED_FIELD_MAX) {
        *why = secret ? "API secret is longer than 256 bytes" : "API key is longer than 256 bytes";
        return AB_ERANGE;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x21 || ch > 0x7e) {
            *why = secret ? "API secret contains a space, control or non-ASCII character"
                          : "API key contains a space, control or non-ASCII character";
            return AB_EINVAL;
        }
    }
    return 0;
}

int ab_cred_set(struct ab_cred *c, const char *api_key, const char *api_secret, const char **why)
{
    const char *dummy;
    why = why_or_dummy(why, &dummy);
    if (!api_key || !api_secret) {
        ab_cred_wipe(c);
        *why = !api_key ? "API key is missing" : "API secret is missing";
        return AB_EINVAL;
    }
    size_t klen = strnlen(api_key, AB_CRED_FIELD_MAX + 1);
    size_t slen = strnlen(api_secret, AB_CRED_FIELD_MAX + 1);
    int rc = check_field(api_key, klen, false, why);
    if (rc == 0)
        rc = check_field(api_secret, slen, true, why);
    if (rc) {
        ab_cred_wipe(c);
        return rc;
    }
    /* memmove: the inputs may be c's own buffers. */
    memmove(c->api_key, api_key, klen);
    memmove(c->api_secret, api_secret, slen);
    sodium_memzero(c->api_key + klen, sizeof(c->api_key) - klen);
    sodium_memzero(c->api_secret + slen, sizeof(c->api_secret) - slen);
    c->api_key_len = klen;
    c->api_secret_len = slen;
    return 0;
}

static void put_be16(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)(v & 0xff);
}

static size_t get_be16(const unsigned char *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

int ab_cred_seal(const struct ab_cred *c, const struct ab_cred_key *key,
                 unsigned char out[AB_CRED_FILE_SIZE], const char **why)
{
    const char *dummy;
    why = why_or_dummy(why, &dummy);
    int rc = need_sodium(why);
    if (rc)
        return rc;
    if (c->api_key_len > AB_CRED_FIELD_MAX || c->api_secret_len > AB_CRED_FIELD_MAX ||
        strnlen(c->api_key, sizeof(c->api_key)) != c->api_key_len ||
        strnlen(c->api_secret, sizeof(c->api_secret)) != c->api_secret_len) {
        *why = "credential struct is inconsistent (lengths do not match the text)";
        return AB_EINVAL;
    }
    rc = check_field(c->api_key, c->api_key_len, false, why);
    if (rc == 0)
        rc = check_field(c->api_secret, c->api_secret_len, true, why);
    if (rc)
        return rc;

    /* sodium_malloc: guarded, locked pages, wiped by sodium_free. */
    unsigned char *plain = sodium_malloc(AB_CRED_PLAIN_LEN);
    if (!plain) {
        *why = "out of memory for the plaintext buffer";
        return AB_ENOMEM;
    }
    memset(plain, 0, AB_CRED_PLAIN_LEN);
    put_be16(plain + KEY_OFF, c->api_key_len);
    memcpy(plain + KEY_OFF + 2, c->api_key, c->api_key_len);
    put_be16(plain + SECRET_OFF, c->api_secret_len);
    memcpy(plain + SECRET_OFF + 2, c->api_secret, c->api_secret_len);

    memcpy(out, AB_CRED_MAGIC, AB_CRED_MAGIC_LEN);
    out[AB_CRED_MAGIC_LEN] = AB_CRED_VERSION;
    randombytes_buf(out + NONCE_OFF, AB_CRED_NONCE_LEN);
    unsigned long long clen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + CIPHER_OFF, &clen, plain,
                                                   AB_CRED_PLAIN_LEN, out, AB_CRED_HEADER_LEN, NULL,
                                                   out + NONCE_OFF, key->bytes) != 0 ||
        clen != AB_CRED_PLAIN_LEN + AB_CRED_TAG_LEN) {
        *why = "encryption failed";
        rc = AB_ECRYPTO;
    }
    sodium_free(plain);
    return rc;
}

int ab_cred_open(const unsigned char *buf, size_t len, const struct ab_cred_key *key,
                 struct ab_cred *c, const char **why)
{
    const char *dummy;
    why = why_or_dummy(why, &dummy);
    ab_cred_wipe(c);
    int rc = need_sodium(why);
    if (rc)
        return rc;
    if (len == 0) {
        *why = "credential file is empty";
        return AB_ETRUNC;
    }
    /* A short prefix of the magic is a truncated file; anything else is not ours. */
    size_t mlen = len < AB_CRED_MAGIC_LEN ? len : AB_CRED_MAGIC_LEN;
    if (memcmp(buf, AB_CRED_MAGIC, mlen) != 0) {
        *why = "not an abidance credential file (bad magic)";
        return AB_EINVAL;
    }
    if (len < AB_CRED_HEADER_LEN) {
        *why = "credential file is truncated (incomplete header)";
        return AB_ETRUNC;
    }
    if (buf[AB_CRED_MAGIC_LEN] != AB_CRED_VERSION) {
        *why = "unsupported credential file version (this build reads version 1)";
        return AB_ERANGE;
    }
    if (len < AB_CRED_FILE_SIZE) {
        *why = "credential file is truncated";
        return AB_ETRUNC;
    }
    if (len > AB_CRED_FILE_SIZE) {
        *why = "credential file has extra bytes after the version-1 contents";
        return AB_EINVAL;
    }

    unsigned char *plain = sodium_malloc(AB_CRED_PLAIN_LEN);
    if (!plain) {
        *why = "out of memory for the plaintext buffer";
        return AB_ENOMEM;
    }
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, &plen, NULL, buf + CIPHER_OFF, AB_CRED_PLAIN_LEN + AB_CRED_TAG_LEN, buf,
            AB_CRED_HEADER_LEN, buf + NONCE_OFF, key->bytes) != 0 ||
        plen != AB_CRED_PLAIN_LEN) {
        *why = "decryption failed: wrong key, or the file was modified";
        rc = AB_ECRYPTO;
        goto out;
    }
    /* Authentic, but only our own seal guarantees the layout: check it anyway. */
    size_t klen = get_be16(plain + KEY_OFF);
    size_t slen = get_be16(plain + SECRET_OFF);
    if (klen > AB_CRED_FIELD_MAX || slen > AB_CRED_FIELD_MAX ||
        check_field((const char *)plain + KEY_OFF + 2, klen, false, why) != 0 ||
        check_field((const char *)plain + SECRET_OFF + 2, slen, true, why) != 0) {
        *why = "credential file decrypted but its contents are malformed";
        rc = AB_EINVAL;
        goto out;
    }
    memcpy(c->api_key, plain + KEY_OFF + 2, klen);
    memcpy(c->api_secret, plain + SECRET_OFF + 2, slen);
    c->api_key[klen] = '\0';
    c->api_secret[slen] = '\0';
    c->api_key_len = klen;
    c->api_secret_len = slen;
out:
    sodium_free(plain); /* wipes */
    return rc;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Best effort: makes the rename durable; failure does not undo the write. */
static void sync_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        dir[0] = '.';
        dir[1] = '\0';
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0)
            n = 1; /* "/file" */
        if (n >= sizeof(dir))
            return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int ab_cred_write_file(const char *path, const struct ab_cred *c, const struct ab_cred_key *key,
                       bool overwrite, const char **why)
{
    const char *dummy;
    why = why_or_dummy(why, &dummy);
    unsigned char buf[AB_CRED_FILE_SIZE];
    char tmp[PATH_MAX];
    int fd = -1, saved = 0;
    bool have_tmp = false;

    int rc = ab_cred_seal(c, key, buf, why);
    if (rc)
        return rc;
    if (!path || !*path) {
        *why = "no output path given";
        return AB_EINVAL;
    }
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        *why = "output path is too long";
        return AB_ERANGE;
    }
    /* mkostemp creates the file 0600 and exclusively, whatever the umask. */
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        saved = errno;
        *why = "cannot create a temporary file next to the output path";
        rc = AB_EIO;
        goto out;
    }
    have_tmp = true;
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
        saved = errno;
        *why = "cannot set mode 0600 on the new file";
        rc = AB_EIO;
        goto out;
    }
    if (write_all(fd, buf, sizeof(buf)) != 0 || fsync(fd) != 0) {
        saved = errno;
        *why = "cannot write the credential file";
        rc = AB_EIO;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        saved = errno;
        *why = "cannot write the credential file (close failed)";
        rc = AB_EIO;
        goto out;
    }
    fd = -1;
    if (overwrite) {
        if (rename(tmp, path) != 0) {
            saved = errno;
            *why = "cannot move the new file into place";
            rc = AB_EIO;
            goto out;
        }
    } else {
        /* link() never replaces an existing path: atomic create-if-absent. */
        if (link(tmp, path) != 0) {
            saved = errno;
            if (saved == EEXIST) {
                *why = "output file already exists; refusing to overwrite it";
                rc = AB_EPERM;
            } else {
                *why = "cannot move the new file into place";
                rc = AB_EIO;
            }
            goto out;
        }
        (void)unlink(tmp);
    }
    have_tmp = false;
    sync_parent_dir(path);
out:
    if (fd >= 0)
        close(fd);
    if (have_tmp)
        (void)unlink(tmp);
    if (rc)
        errno = saved;
    return rc;
}

int ab_cred_read_file(const char *path, const struct ab_cred_key *key, struct ab_cred *c,
                      const char **why)
{
    const char *dummy;
    why = why_or_dummy(why, &dummy);
    /* One byte more than a valid file, to tell "too long" from "exact". */
    unsigned char buf[AB_CRED_FILE_SIZE + 1];
    size_t len = 0;
    int rc = 0, saved = 0;
    struct stat st;

    ab_cred_wipe(c);
    if (!path || !*path) {
        *why = "no credential file path given";
        return AB_EINVAL;
    }
    /* O_NONBLOCK: opening a FIFO by mistake must not hang; fstat rejects it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        saved = errno;
        *why = saved == ENOENT ? "credential file does not exist" : "cannot open credential file";
        rc = saved == ENOENT ? AB_ENOTFOUND : AB_EIO;
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        saved = errno;
        *why = "cannot stat credential file";
        rc = AB_EIO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "credential path is not a regular file";
        rc = AB_EINVAL;
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        *why = "credential file is accessible by group or others; run `chmod 600` on it";
        rc = AB_EPERM;
        goto out;
    }
    while (len < sizeof(buf)) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            saved = errno;
            *why = "cannot read credential file";
            rc = AB_EIO;
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    rc = ab_cred_open(buf, len, key, c, why);
out:
    if (fd >= 0)
        close(fd);
    if (rc && saved)
        errno = saved;
    return rc;
}
