#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/cred.h"
#include "common/err.h"

static const char api_key[] = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
static const char api_secret[] = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ab_test_cred.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(cred, .init = make_tmpdir, .fini = remove_tmpdir);

static void path_in_tmp(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void new_key(struct ab_cred_key *k)
{
    ab_cred_key_init(k);
    cr_assert_eq(ab_cred_key_generate(k), 0);
}

static void sample_cred(struct ab_cred *c)
{
    const char *why = NULL;
    ab_cred_init(c);
    cr_assert_eq(ab_cred_set(c, api_key, api_secret, &why), 0, "set: %s", why);
}

static void assert_wiped(const struct ab_cred *c)
{
    for (size_t i = 0; i < sizeof(c->api_key); i++)
        cr_assert_eq(c->api_key[i], 0, "api_key[%zu] not wiped", i);
    for (size_t i = 0; i < sizeof(c->api_secret); i++)
        cr_assert_eq(c->api_secret[i], 0, "api_secret[%zu] not wiped", i);
    cr_assert_eq(c->api_key_len, 0);
    cr_assert_eq(c->api_secret_len, 0);
}

static void write_raw(const char *path, const void *buf, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, buf, len), (ssize_t)len);
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

Test(cred, seal_open_round_trip)
{
    struct ab_cred_key k;
    struct ab_cred c, d;
    unsigned char buf[AB_CRED_FILE_SIZE];
    const char *why = NULL;

    new_key(&k);
    sample_cred(&c);
    ab_cred_init(&d);
    cr_assert_eq(ab_cred_seal(&c, &k, buf, &why), 0, "%s", why);
    cr_assert_eq(memcmp(buf, "ABIDCRED", 8), 0);
    cr_assert_eq(buf[8], 1);
    /* No plaintext in the sealed bytes. */
    cr_assert_null(memmem(buf, sizeof(buf), api_key, 16));
    cr_assert_null(memmem(buf, sizeof(buf), api_secret, 16));
    cr_assert_eq(ab_cred_open(buf, sizeof(buf), &k, &d, &why), 0, "%s", why);
    cr_assert_str_eq(d.api_key, api_key);
    cr_assert_str_eq(d.api_secret, api_secret);
    cr_assert_eq(d.api_key_len, strlen(api_key));
    cr_assert_eq(d.api_secret_len, strlen(api_secret));
    ab_cred_deinit(&c);
    ab_cred_deinit(&d);
    ab_cred_key_deinit(&k);
}

Test(cred, extreme_lengths_round_trip)
{
    struct ab_cred_key k;
    struct ab_cred c, d;
    unsigned char buf[AB_CRED_FILE_SIZE];
    char longest[AB_CRED_FIELD_MAX + 1];
    const char *why = NULL;

    memset(longest, '~', AB_CRED_FIELD_MAX);
    longest[AB_CRED_FIELD_MAX] = '\0';
    new_key(&k);
    ab_cred_init(&c);
    ab_cred_init(&d);
    cr_assert_eq(ab_cred_set(&c, "k", longest, &why), 0, "%s", why);
    cr_assert_eq(ab_cred_seal(&c, &k, buf, &why), 0, "%s", why);
    cr_assert_eq(ab_cred_open(buf, sizeof(buf), &k, &d, &why), 0, "%s", why);
    cr_assert_str_eq(d.api_key, "k");
    cr_assert_str_eq(d.api_secret, longest);
    cr_assert_eq(d.api_secret_len, AB_CRED_FIELD_MAX);
}

Test(cred, nonce_is_fresh_per_seal)
{
    struct ab_cred_key k;
    struct ab_cred c;
    unsigned char a[AB_CRED_FILE_SIZE], b[AB_CRED_FILE_SIZE];

    new_key(&k);
    sample_cred(&c);
    cr_assert_eq(ab_cred_seal(&c, &k, a, NULL), 0);
    cr_assert_eq(ab_cred_seal(&c, &k, b, NULL), 0);
    cr_assert_neq(memcmp(a + AB_CRED_HEADER_LEN, b + AB_CRED_HEADER_LEN, AB_CRED_NONCE_LEN), 0);
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
}

Test(cred, file_round_trip_mode_0600_even_with_open_umask)
{
    struct ab_cred_key k;
    struct ab_cred c, d;
    char path[512];
    const char *why = NULL;

    path_in_tmp(path, sizeof(path), "cred.bin");
    new_key(&k);
    sample_cred(&c);
    ab_cred_init(&d);
    mode_t old = umask(0);
    int rc = ab_cred_write_file(path, &c, &k, false, &why);
    umask(old);
    cr_assert_eq(rc, 0, "write: %s", why);
    cr_assert_eq(mode_of(path), 0600, "mode %o", (unsigned)mode_of(path));
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, AB_CRED_FILE_SIZE);
    cr_assert_eq(ab_cred_read_file(path, &k, &d, &why), 0, "read: %s", why);
    cr_assert_str_eq(d.api_key, api_key);
    cr_assert_str_eq(d.api_secret, api_secret);
    /* Only the file itself remains: no temporary file left behind. */
    DIR *dir = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        n += e->d_name[0] != '.';
    closedir(dir);
    cr_assert_eq(n, 1);
}

Test(cred, write_refuses_to_overwrite_unless_asked)
{
    struct ab_cred_key k;
    struct ab_cred c, d;
    char path[512];
    const char *why = NULL;
    static const char other[] = "not a credential file";

    path_in_tmp(path, sizeof(path), "exists.bin");
    write_raw(path, other, sizeof(other), 0644);
    new_key(&k);
    sample_cred(&c);
    ab_cred_init(&d);
    cr_assert_eq(ab_cred_write_file(path, &c, &k, false, &why), AB_EPERM);
    cr_assert_not_null(strstr(why, "exists"), "%s", why);
    /* Untouched. */
    char back[64] = {0};
    int fd = open(path, O_RDONLY);
    cr_assert_eq(read(fd, back, sizeof(back)), (ssize_t)sizeof(other));
    close(fd);
    cr_assert_str_eq(back, other);
    cr_assert_eq(mode_of(path), 0644);

    cr_assert_eq(ab_cred_write_file(path, &c, &k, true, &why), 0, "%s", why);
    cr_assert_eq(mode_of(path), 0600);
    cr_assert_eq(ab_cred_read_file(path, &k, &d, &why), 0, "%s", why);
    cr_assert_str_eq(d.api_secret, api_secret);
}

Test(cred, write_into_missing_directory_is_eio)
{
    struct ab_cred_key k;
    struct ab_cred c;
    char path[512];
    const char *why = NULL;

    path_in_tmp(path, sizeof(path), "no/such/dir/cred.bin");
    new_key(&k);
    sample_cred(&c);
    cr_assert_eq(ab_cred_write_file(path, &c, &k, false, &why), AB_EIO);
    cr_assert_eq(errno, ENOENT);
    cr_assert_not_null(why);
}

Test(cred, wrong_key_is_ecrypto_and_wipes)
{
    struct ab_cred_key k, other;
    struct ab_cred c, d;
    unsigned char buf[AB_CRED_FILE_SIZE];
    const char *why = NULL;

    new_key(&k);
    new_key(&other);
    cr_assert_neq(memcmp(k.bytes, other.bytes, sizeof(k.bytes)), 0);
    sample_cred(&c);
    sample_cred(&d); /* pre-filled: a failure must leave nothing behind */
    cr_assert_eq(ab_cred_seal(&c, &k, buf, NULL), 0);
    cr_assert_eq(ab_cred_open(buf, sizeof(buf), &other, &d, &why), AB_ECRYPTO);
    cr_assert_not_null(strstr(why, "wrong key"), "%s", why);
    assert_wiped(&d);
}

Test(cred, truncated_at_every_length)
{
    struct ab_cred_key k;
    struct ab_cred c, d;
    unsigned char buf[AB_CRED_FILE_SIZE];
    const char *why = NULL;

    new_key(&k);
    sample_cred(&c);
    ab_cred_init(&d);
    cr_assert_eq(ab_cred_seal(&c, &k, buf, NULL), 0);
    for (size_t len = 0; len < sizeof(buf); len++) {
        why = NULL;
        int rc = ab_cred_open(buf, len, &k, &d, &why);
        cr_assert_eq(rc, AB_ETRUNC, "len %zu: rc %d (%s)", len, rc, why ? why : "-");
        cr_assert_not_null(why);
        if (len == 0)
            cr_assert_not_null(strstr(why, "empty"), "%s", why);
        else
            cr_assert_not_null(strstr(why, "truncated"), "%s", why);
    }
    /* One extra byte is not a truncation, but not ours either. */
    unsigned char longer[AB_CRED_FILE_SIZE + 1];
    memcpy(longer, buf, sizeof(buf));
    longer[sizeof(buf)] = 0;
    cr_assert_eq(ab_cred_open(longer, sizeof(longer), &k, &d, &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "extra"), "%s", why);
}

Test(cred, truncated_files_on_disk)
{
    struct ab_cred_key k;
    struct ab_cred c, d;
    unsigned char buf[AB_CRED_FILE_SIZE];
    char path[512];
    const char *why = NULL;
    static const size_t lens[] = {0, 1, 8, 9, 33, 100, AB_CRED_FILE_SIZE - 1};

    new_key(&k);
    sample_cred(&c);
    ab_cred_init(&d);
    cr_assert_eq(ab_cred_seal(&c, &k, buf, NULL), 0);
    path_in_tmp(path, sizeof(path), "short.bin");
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        write_raw(path, buf, lens[i], 0600);
        cr_assert_eq(ab_cred_read_file(path, &k, &d, &why), AB_ETRUNC, "len %zu", lens[i]);
    }
}

Test(cred, every_single_byte_tamper_is_detected)
{
    struct ab_cred_key k;
    struct ab_cred c, d;
    unsigned char buf[AB_CRED_FILE_SIZE], bad[AB_CRED_FILE_SIZE];
    const char *why = NULL;
    static const unsigned char flips[] = {0x01, 0x80, 0xff};

    new_key(&k);
    sample_cred(&c);
    ab_cred_init(&d);
    cr_assert_eq(ab_cred_seal(&c, &k, buf, NULL), 0);
    for (size_t i = 0; i < sizeof(buf); i++) {
        for (size_t f = 0; f < sizeof(flips); f++) {
            memcpy(bad, buf, sizeof(buf));
            bad[i] ^= flips[f];
            int want = i < AB_CRED_MAGIC_LEN    ? AB_EINVAL
                       : i == AB_CRED_MAGIC_LEN ? AB_ERANGE
                                                : AB_ECRYPTO;
            int rc = ab_cred_open(bad, sizeof(bad), &k, &d, &why);
            cr_assert_eq(rc, want, "byte %zu ^ %02x: rc %d want %d", i, flips[f], rc, want);
            cr_assert_eq(d.api_key_len, 0);
        }
    }
    /* And the original still opens: the loop did not pass by luck. */
    cr_assert_eq(ab_cred_open(buf, sizeof(buf), &k, &d, &why), 0);
}

Test(cred, tampered_file_on_disk)
{
    struct ab_cred_key k;
    struct ab_cred c, d;
    unsigned char buf[AB_CRED_FILE_SIZE];
    char path[512];
    const char *why = NULL;

    new_key(&k);
    sample_cred(&c);
    ab_cred_init(&d);
    cr_assert_eq(ab_cred_seal(&c, &k, buf, NULL), 0);
    buf[AB_CRED_FILE_SIZE - 1] ^= 0x10; /* in the tag */
    path_in_tmp(path, sizeof(path), "tampered.bin");
    write_raw(path, buf, sizeof(buf), 0600);
    cr_assert_eq(ab_cred_read_file(path, &k, &d, &why), AB_ECRYPTO);
    cr_assert_not_null(strstr(why, "modified"), "%s", why);
}

Test(cred, wrong_magic_and_version)
{
    struct ab_cred_key k;
    struct ab_cred c, d;
    unsigned char buf[AB_CRED_FILE_SIZE];
    const char *why = NULL;

    new_key(&k);
    sample_cred(&c);
    ab_cred_init(&d);
    cr_assert_eq(ab_cred_seal(&c, &k, buf, NULL), 0);

    unsigned char other[AB_CRED_FILE_SIZE];
    memcpy(other, buf, sizeof(buf));
    memcpy(other, "ABIDCRE2", 8);
    cr_assert_eq(ab_cred_open(other, sizeof(other), &k, &d, &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "magic"), "%s", why);

    /* Short garbage is "not ours", not "truncated". */
    cr_assert_eq(ab_cred_open((const unsigned char *)"PK\x03\x04", 4, &k, &d, &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "magic"), "%s", why);

    memcpy(other, buf, sizeof(buf));
    other[AB_CRED_MAGIC_LEN] = 2;
    cr_assert_eq(ab_cred_open(other, sizeof(other), &k, &d, &why), AB_ERANGE);
    cr_assert_not_null(strstr(why, "version"), "%s", why);
    other[AB_CRED_MAGIC_LEN] = 0;
    cr_assert_eq(ab_cred_open(other, sizeof(other), &k, &d, &why), AB_ERANGE);
}

/* A file that authenticates under the key but whose plaintext breaks the layout. */
Test(cred, authentic_but_malformed_contents)
{
    struct ab_cred_key k;
    struct ab_cred d;
    unsigned char buf[AB_CRED_FILE_SIZE], plain[AB_CRED_PLAIN_LEN];
    const char *why = NULL;
    unsigned long long clen;

    new_key(&k);
    ab_cred_init(&d);
    struct {
        size_t klen, slen;
        char fill;
    } cases[] = {
        {0, 10, 'a'},   /* empty key */
        {10, 0, 'a'},   /* empty secret */
        {300, 10, 'a'}, /* key length beyond the cap */
        {10, 10, ' '},  /* forbidden character */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(plain, 0, sizeof(plain));
        memset(plain + 2, cases[i].fill, 10);
        memset(plain + 2 + AB_CRED_FIELD_MAX + 2, cases[i].fill, 10);
        plain[0] = (unsigned char)(cases[i].klen >> 8);
        plain[1] = (unsigned char)cases[i].klen;
        plain[2 + AB_CRED_FIELD_MAX] = (unsigned char)(cases[i].slen >> 8);
        plain[2 + AB_CRED_FIELD_MAX + 1] = (unsigned char)cases[i].slen;
        memcpy(buf, "ABIDCRED\x01", AB_CRED_HEADER_LEN);
        randombytes_buf(buf + AB_CRED_HEADER_LEN, AB_CRED_NONCE_LEN);
        cr_assert_eq(crypto_aead_xchacha20poly1305_ietf_encrypt(
                         buf + AB_CRED_HEADER_LEN + AB_CRED_NONCE_LEN, &clen, plain, sizeof(plain),
                         buf, AB_CRED_HEADER_LEN, NULL, buf + AB_CRED_HEADER_LEN, k.bytes),
                     0);
        cr_assert_eq(ab_cred_open(buf, sizeof(buf), &k, &d, &why), AB_EINVAL, "case %zu", i);
        cr_assert_not_null(strstr(why, "malformed"), "%s", why);
        assert_wiped(&d);
    }
}

Test(cred, group_or_world_accessible_file_is_refused)
{
    struct ab_cred_key k;
    struct ab_cred c, d;
    char path[512];
    const char *why = NULL;
    static const mode_t refused[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601, 0666};

    path_in_tmp(path, sizeof(path), "perm.bin");
    new_key(&k);
    sample_cred(&c);
    ab_cred_init(&d);
    cr_assert_eq(ab_cred_write_file(path, &c, &k, false, &why), 0, "%s", why);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        cr_assert_eq(chmod(path, refused[i]), 0);
        cr_assert_eq(ab_cred_read_file(path, &k, &d, &why), AB_EPERM, "mode %o",
                     (unsigned)refused[i]);
        cr_assert_not_null(strstr(why, "chmod 600"), "%s", why);
        assert_wiped(&d);
    }
    cr_assert_eq(chmod(path, 0400), 0);
    cr_assert_eq(ab_cred_read_file(path, &k, &d, &why), 0, "%s", why);
    cr_assert_str_eq(d.api_key, api_key);
}

Test(cred, read_errors_missing_empty_directory)
{
    struct ab_cred_key k;
    struct ab_cred d;
    char path[512];
    const char *why = NULL;

    new_key(&k);
    ab_cred_init(&d);
    path_in_tmp(path, sizeof(path), "absent.bin");
    cr_assert_eq(ab_cred_read_file(path, &k, &d, &why), AB_ENOTFOUND);
    cr_assert_not_null(strstr(why, "does not exist"), "%s", why);

    path_in_tmp(path, sizeof(path), "empty.bin");
    write_raw(path, "", 0, 0600);
    cr_assert_eq(ab_cred_read_file(path, &k, &d, &why), AB_ETRUNC);
    cr_assert_not_null(strstr(why, "empty"), "%s", why);

    path_in_tmp(path, sizeof(path), "subdir");
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(ab_cred_read_file(path, &k, &d, &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "regular"), "%s", why);
    rmdir(path);

    cr_assert_eq(ab_cred_read_file("", &k, &d, &why), AB_EINVAL);
}

Test(cred, key_text_round_trip_and_leniency)
{
    struct ab_cred_key k, p;
    char hex[AB_CRED_KEY_HEX_LEN + 1];
    char padded[100], upper[AB_CRED_KEY_HEX_LEN + 1];
    const char *why = NULL;

    new_key(&k);
    ab_cred_key_init(&p);
    ab_cred_key_format(&k, hex);
    cr_assert_eq(strlen(hex), AB_CRED_KEY_HEX_LEN);
    for (size_t i = 0; i < AB_CRED_KEY_HEX_LEN; i++)
        cr_assert((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
    cr_assert_eq(ab_cred_key_parse(hex, &p, &why), 0, "%s", why);
    cr_assert_eq(memcmp(k.bytes, p.bytes, sizeof(k.bytes)), 0);

    snprintf(padded, sizeof(padded), "  \t%s\r\n", hex);
    ab_cred_key_wipe(&p);
    cr_assert_eq(ab_cred_key_parse(padded, &p, &why), 0, "%s", why);
    cr_assert_eq(memcmp(k.bytes, p.bytes, sizeof(k.bytes)), 0);

    for (size_t i = 0; i <= AB_CRED_KEY_HEX_LEN; i++)
        upper[i] = (hex[i] >= 'a' && hex[i] <= 'f') ? (char)(hex[i] - 32) : hex[i];
    ab_cred_key_wipe(&p);
    cr_assert_eq(ab_cred_key_parse(upper, &p, &why), 0, "%s", why);
    cr_assert_eq(memcmp(k.bytes, p.bytes, sizeof(k.bytes)), 0);
}

Test(cred, malformed_keys_are_einval)
{
    struct ab_cred_key k;
    char hex[AB_CRED_KEY_HEX_LEN + 1], bad[200];
    const char *why = NULL;

    new_key(&k);
    ab_cred_key_format(&k, hex);
    ab_cred_key_init(&k);

    cr_assert_eq(ab_cred_key_parse(NULL, &k, &why), AB_EINVAL);
    cr_assert_eq(ab_cred_key_parse("", &k, &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "empty"), "%s", why);
    cr_assert_eq(ab_cred_key_parse(" \n ", &k, &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "empty"), "%s", why);

    snprintf(bad, sizeof(bad), "%.63s", hex); /* one digit short */
    cr_assert_eq(ab_cred_key_parse(bad, &k, &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "length"), "%s", why);
    snprintf(bad, sizeof(bad), "%s0", hex); /* one digit long */
    cr_assert_eq(ab_cred_key_parse(bad, &k, &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "length"), "%s", why);
    snprintf(bad, sizeof(bad), "%s%s", hex, hex);
    cr_assert_eq(ab_cred_key_parse(bad, &k, &why), AB_EINVAL);

    /* A non-hex character at each position. */
    for (size_t i = 0; i < AB_CRED_KEY_HEX_LEN; i++) {
        snprintf(bad, sizeof(bad), "%s", hex);
        bad[i] = (i % 3 == 0) ? 'g' : (i % 3 == 1) ? ' ' : '\x80';
        cr_assert_eq(ab_cred_key_parse(bad, &k, &why), AB_EINVAL, "position %zu", i);
        cr_assert_not_null(why);
        for (size_t j = 0; j < sizeof(k.bytes); j++)
            cr_assert_eq(k.bytes[j], 0, "failed parse left key bytes");
    }
    /* Base64 of 32 bytes, a plausible mistake. */
    cr_assert_eq(ab_cred_key_parse("q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=", &k, &why),
                 AB_EINVAL);
    /* The reason never repeats the key text. */
    cr_assert_null(strstr(why, "q83v"));
}

Test(cred, key_from_env)
{
    struct ab_cred_key k, p;
    char hex[AB_CRED_KEY_HEX_LEN + 1];
    const char *why = NULL;

    new_key(&k);
    ab_cred_key_init(&p);
    ab_cred_key_format(&k, hex);

    unsetenv("CREDENTIAL_KEY");
    cr_assert_eq(ab_cred_key_from_env(&p, &why), AB_EMISSING);
    cr_assert_not_null(strstr(why, "CREDENTIAL_KEY"), "%s", why);
    setenv("CREDENTIAL_KEY", "", 1);
    cr_assert_eq(ab_cred_key_from_env(&p, &why), AB_EMISSING);
    setenv("CREDENTIAL_KEY", "zz", 1);
    cr_assert_eq(ab_cred_key_from_env(&p, &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "CREDENTIAL_KEY is malformed"), "%s", why);
    setenv("CREDENTIAL_KEY", hex, 1);
    cr_assert_eq(ab_cred_key_from_env(&p, &why), 0, "%s", why);
    cr_assert_eq(memcmp(k.bytes, p.bytes, sizeof(k.bytes)), 0);
}

Test(cred, set_validates_text)
{
    struct ab_cred c;
    char big[AB_CRED_FIELD_MAX + 2];
    const char *why = NULL;

    ab_cred_init(&c);
    cr_assert_eq(ab_cred_set(&c, "", "s", &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "API key is empty"), "%s", why);
    cr_assert_eq(ab_cred_set(&c, "k", "", &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "API secret is empty"), "%s", why);
    cr_assert_eq(ab_cred_set(&c, NULL, "s", &why), AB_EINVAL);
    cr_assert_eq(ab_cred_set(&c, "k", NULL, &why), AB_EINVAL);
    cr_assert_eq(ab_cred_set(&c, "a b", "s", &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "API key contains"), "%s", why);
    cr_assert_eq(ab_cred_set(&c, "k", "tab\there", &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "API secret contains"), "%s", why);
    cr_assert_eq(ab_cred_set(&c, "k\xc3\xa9", "s", &why), AB_EINVAL);
    cr_assert_eq(ab_cred_set(&c, "k", "s\x7f", &why), AB_EINVAL);

    memset(big, 'x', sizeof(big));
    big[AB_CRED_FIELD_MAX] = '\0'; /* exactly the cap: accepted */
    cr_assert_eq(ab_cred_set(&c, big, big, &why), 0, "%s", why);
    cr_assert_eq(c.api_key_len, AB_CRED_FIELD_MAX);
    big[AB_CRED_FIELD_MAX] = 'x';
    big[AB_CRED_FIELD_MAX + 1] = '\0'; /* one over */
    cr_assert_eq(ab_cred_set(&c, big, "s", &why), AB_ERANGE);
    cr_assert_not_null(strstr(why, "API key is longer than 256"), "%s", why);
    assert_wiped(&c); /* the failed set also dropped the earlier pair */
    cr_assert_eq(ab_cred_set(&c, "k", big, &why), AB_ERANGE);
    cr_assert_not_null(strstr(why, "API secret is longer than 256"), "%s", why);

    /* In place (the CLI reads straight into the struct). */
    snprintf(c.api_key, sizeof(c.api_key), "%s", "inplacekey");
    snprintf(c.api_secret, sizeof(c.api_secret), "%s", "inplacesecret");
    cr_assert_eq(ab_cred_set(&c, c.api_key, c.api_secret, &why), 0, "%s", why);
    cr_assert_str_eq(c.api_key, "inplacekey");
    cr_assert_eq(c.api_secret_len, strlen("inplacesecret"));
}

Test(cred, seal_rejects_inconsistent_struct)
{
    struct ab_cred_key k;
    struct ab_cred c;
    unsigned char buf[AB_CRED_FILE_SIZE];
    const char *why = NULL;

    new_key(&k);
    ab_cred_init(&c);
    cr_assert_eq(ab_cred_seal(&c, &k, buf, &why), AB_EINVAL); /* empty */
    sample_cred(&c);
    c.api_key_len = 3;
    cr_assert_eq(ab_cred_seal(&c, &k, buf, &why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "inconsistent"), "%s", why);
}

Test(cred, wipe_and_deinit_zero_everything)
{
    struct ab_cred c;
    struct ab_cred_key k;

    sample_cred(&c);
    cr_assert_neq(c.api_key_len, 0);
    ab_cred_wipe(&c);
    assert_wiped(&c);

    new_key(&k);
    unsigned char zero[AB_CRED_KEY_BYTES] = {0};
    cr_assert_neq(memcmp(k.bytes, zero, sizeof(zero)), 0);
    ab_cred_key_wipe(&k);
    cr_assert_eq(memcmp(k.bytes, zero, sizeof(zero)), 0);

    /* deinit clears the whole struct, lock flag included. */
    sample_cred(&c);
    ab_cred_deinit(&c);
    const unsigned char *raw = (const unsigned char *)&c;
    for (size_t i = 0; i < sizeof(c); i++)
        cr_assert_eq(raw[i], 0, "byte %zu of struct ab_cred not zero after deinit", i);
    new_key(&k);
    ab_cred_key_deinit(&k);
    raw = (const unsigned char *)&k;
    for (size_t i = 0; i < sizeof(k); i++)
        cr_assert_eq(raw[i], 0, "byte %zu of struct ab_cred_key not zero after deinit", i);

    /* NULL is accepted everywhere. */
    ab_cred_wipe(NULL);
    ab_cred_deinit(NULL);
    ab_cred_key_wipe(NULL);
    ab_cred_key_deinit(NULL);
}

Test(cred, null_why_is_allowed)
{
    struct ab_cred_key k;
    struct ab_cred d;

    ab_cred_key_init(&k);
    ab_cred_init(&d);
    cr_assert_eq(ab_cred_key_parse("nope", &k, NULL), AB_EINVAL);
    cr_assert_eq(ab_cred_open((const unsigned char *)"", 0, &k, &d, NULL), AB_ETRUNC);
    cr_assert_eq(ab_cred_read_file("/nonexistent/abidance/cred", &k, &d, NULL), AB_ENOTFOUND);
}
