/*
 * cred: encrypted exchange API credentials (an API key and its secret).
 *
 * The credentials live in a small file sealed with libsodium's
 * XChaCha20-Poly1305 AEAD under a 32-byte random key. The key never lives on
 * disk next to the file: services read it from the CREDENTIAL_KEY environment
 * variable (ab_cred_key_from_env), the `abidance-cred` tool creates both.
 *
 * Key text: exactly 64 hexadecimal digits (the 32 key bytes, upper or lower
 * case; keygen prints lower case). ASCII whitespace around it is ignored, so
 * `CREDENTIAL_KEY=$(abidance-cred keygen)` and env files with a trailing
 * newline both work.
 *
 * File format, version 1 (always AB_CRED_FILE_SIZE = 565 bytes):
 *
 *     offset  size  field
 *          0     8  magic "ABIDCRED"
 *          8     1  version, 0x01
 *          9    24  nonce, random per file
 *         33   532  ciphertext: XChaCha20-Poly1305(plaintext), 516 bytes + 16 tag
 *
 * The 9 header bytes (magic + version) are the AEAD's associated data, so
 * changing any byte anywhere in the file fails authentication. The plaintext
 * has a fixed size, so the file does not reveal how long the key or secret is:
 *
 *     2 bytes api-key length (big-endian), 256 bytes api key (zero padded),
 *     2 bytes secret length (big-endian), 256 bytes secret (zero padded)
 *
 * Credential text: 1..AB_CRED_FIELD_MAX bytes of printable ASCII without
 * spaces (0x21..0x7e), which covers Binance HMAC keys and secrets.
 *
 * Errors: every fallible function returns 0 or a negative code from
 * common/err.h and, when `why` is not NULL, points *why at a static English
 * reason (never containing key material), suitable for a log line or a
 * command-line message:
 *
 *     AB_EINVAL    malformed key text, bad magic, bad credential text
 *     AB_ERANGE    key/secret too long, unsupported file version
 *     AB_ETRUNC    empty or truncated file
 *     AB_ECRYPTO   wrong key, or the file was modified (indistinguishable)
 *     AB_EPERM     file readable by group/others, or refusing to overwrite
 *     AB_EMISSING  CREDENTIAL_KEY is not set
 *     AB_ENOTFOUND the credential file does not exist
 *     AB_EIO       another OS call failed (errno is kept)
 *
 * Secrets: struct ab_cred and struct ab_cred_key hold their bytes in fixed
 * buffers inside the struct. _init() zeroes the struct and tries to mlock it
 * (so it is never swapped out nor written to a core dump; failure to lock is
 * tolerated, and since locks do not nest per page, a _deinit can unlock a
 * neighbour sharing its page: best effort only); _deinit() wipes
 * and unlocks it; _wipe() only zeroes the contents. Internal temporaries are
 * wiped before every return. This module never logs; callers must never log
 * a key or secret (common/log.h).
 *
 * Any thread may call any function on its own objects; libsodium is
 * initialised once, on first use, thread-safely.
 */
#ifndef AB_CRED_H
#define AB_CRED_H

#include <stdbool.h>
#include <stddef.h>

#define AB_CRED_KEY_BYTES   32  /* raw key size */
#define AB_CRED_KEY_HEX_LEN 64  /* hex digits in the key text, without NUL */
#define AB_CRED_FIELD_MAX   256 /* max bytes of an API key or secret */
#define AB_CRED_MAGIC       "ABIDCRED"
#define AB_CRED_MAGIC_LEN   8
#define AB_CRED_VERSION     1
#define AB_CRED_HEADER_LEN  (AB_CRED_MAGIC_LEN + 1)
#define AB_CRED_NONCE_LEN   24
#define AB_CRED_TAG_LEN     16
#define AB_CRED_PLAIN_LEN   (2 + AB_CRED_FIELD_MAX + 2 + AB_CRED_FIELD_MAX)
#define AB_CRED_FILE_SIZE \
    (AB_CRED_HEADER_LEN + AB_CRED_NONCE_LEN + AB_CRED_PLAIN_LEN + AB_CRED_TAG_LEN)

/* The environment variable that holds the key text. */
#define AB_CRED_KEY_ENV "CREDENTIAL_KEY"

struct ab_cred_key {
    unsigned char bytes[AB_CRED_KEY_BYTES];
    bool locked; /* set by ab_cred_key_init when mlock succeeded */
};

/* A decrypted API key/secret pair; both strings are NUL-terminated. */
struct ab_cred {
    char api_key[AB_CRED_FIELD_MAX + 1];
    char api_secret[AB_CRED_FIELD_MAX + 1];
    size_t api_key_len, api_secret_len;
    bool locked; /* set by ab_cred_init when mlock succeeded */
};

/*
 * Zeroes *key and tries to mlock it. Pair with ab_cred_key_deinit. A key
 * zeroed with `= {0}` instead of _init is valid too (just not locked).
 */
void ab_cred_key_init(struct ab_cred_key *key);

/* Zeroes the key bytes (the lock stays). Accepts NULL. */
void ab_cred_key_wipe(struct ab_cred_key *key);

/* Wipes and unlocks *key. Accepts NULL. */
void ab_cred_key_deinit(struct ab_cred_key *key);

/* Fills *key with 32 random bytes. Returns 0 or AB_ECRYPTO (libsodium failed). */
int ab_cred_key_generate(struct ab_cred_key *key);

/*
 * Parses key text (64 hex digits, surrounding whitespace ignored) into *key.
 * On failure *key is zeroed. Returns 0 or AB_EINVAL with *why.
 */
int ab_cred_key_parse(const char *text, struct ab_cred_key *key, const char **why);

/*
 * Reads and parses CREDENTIAL_KEY. Returns 0, AB_EMISSING (unset or empty)
 * or AB_EINVAL (malformed), with *why naming the variable.
 */
int ab_cred_key_from_env(struct ab_cred_key *key, const char **why);

/* Writes the key as 64 lower-case hex digits plus NUL into out. */
void ab_cred_key_format(const struct ab_cred_key *key, char out[AB_CRED_KEY_HEX_LEN + 1]);

/* Zeroes *c and tries to mlock it. Pair with ab_cred_deinit. */
void ab_cred_init(struct ab_cred *c);

/* Zeroes the key, secret and lengths (the lock stays). Accepts NULL. */
void ab_cred_wipe(struct ab_cred *c);

/* Wipes and unlocks *c. Accepts NULL. */
void ab_cred_deinit(struct ab_cred *c);

/*
 * Copies api_key and api_secret (NUL-terminated, borrowed) into *c after
 * checking them (see "Credential text"). On failure *c is wiped.
 * Returns 0, AB_EINVAL (empty, bad character) or AB_ERANGE (too long).
 */
int ab_cred_set(struct ab_cred *c, const char *api_key, const char *api_secret, const char **why);

/*
 * Encrypts *c under *key into out (exactly AB_CRED_FILE_SIZE bytes) with a
 * fresh random nonce. Returns 0, AB_EINVAL (c holds invalid text) or
 * AB_ECRYPTO.
 */
int ab_cred_seal(const struct ab_cred *c, const struct ab_cred_key *key,
                 unsigned char out[AB_CRED_FILE_SIZE], const char **why);

/*
 * Decrypts len bytes of file contents (borrowed) into *c. Checks, in order:
 * empty (AB_ETRUNC), magic (AB_EINVAL), version (AB_ERANGE), size (AB_ETRUNC
 * when short, AB_EINVAL when longer), authentication (AB_ECRYPTO), contents
 * (AB_EINVAL). On failure *c is wiped.
 */
int ab_cred_open(const unsigned char *buf, size_t len, const struct ab_cred_key *key,
                 struct ab_cred *c, const char **why);

/*
 * Seals *c into a new file at path, created with mode 0600: the bytes go to
 * a temporary file in the same directory, are fsync'ed, then moved into
 * place atomically. An existing path is replaced only when overwrite is true,
 * else AB_EPERM. Returns 0, AB_EIO (errno kept), AB_EPERM or a seal error.
 */
int ab_cred_write_file(const char *path, const struct ab_cred *c, const struct ab_cred_key *key,
                       bool overwrite, const char **why);

/*
 * Reads and decrypts the file at path into *c. Refuses (AB_EPERM) a file
 * that group or others may access in any way: the fix is `chmod 600 path`.
 * Also AB_EINVAL for a non-regular file, AB_ENOTFOUND, AB_EIO (errno kept),
 * and every ab_cred_open error. On failure *c is wiped.
 */
int ab_cred_read_file(const char *path, const struct ab_cred_key *key, struct ab_cred *c,
                      const char **why);

#endif
