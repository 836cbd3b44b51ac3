/*
 * abidance-cred: creates and checks encrypted exchange API credential files
 * (common/cred.h has the file format).
 *
 *   keygen              print a new key for CREDENTIAL_KEY
 *   encrypt --out FILE  seal an API key and secret into FILE (mode 0600)
 *   check FILE          decrypt FILE and confirm it holds a valid pair
 *
 * Secrets never come from argv (the process list shows it) and are never
 * printed. Exit codes: 0 ok, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "common/cred.h"
#include "common/err.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: abidance-cred <command> [options]\n"
    "\n"
    "Creates and checks encrypted Binance API credential files.\n"
    "\n"
    "commands:\n"
    "  keygen                 print a new random key (64 hex digits) on stdout\n"
    "  encrypt --out FILE [--force]\n"
    "                         encrypt an API key and secret into FILE (mode 0600);\n"
    "                         --force replaces an existing FILE\n"
    "  check FILE             decrypt FILE and report the API key's last 4 characters\n"
    "\n"
    "options:\n"
    "  -h, --help             show this help\n"
    "  --version              show the version\n"
    "\n"
    "environment:\n"
    "  CREDENTIAL_KEY         the key (from keygen) for encrypt and check\n"
    "  ABIDANCE_API_KEY       API key for encrypt; with ABIDANCE_API_SECRET, used\n"
    "  ABIDANCE_API_SECRET    instead of stdin\n"
    "\n"
    "encrypt reads the API key and then the secret as two lines on stdin unless\n"
    "both variables are set. Credentials are never accepted as arguments, since\n"
    "other users can read a process's arguments.\n"
    "\n"
    "exit status: 0 ok, 1 failure, 2 usage error\n";

static int usage_error(const char *msg)
{
    fprintf(stderr, "abidance-cred: %s\nTry 'abidance-cred --help'.\n", msg);
    return EXIT_USAGE;
}

/* Prints a failure; an OS error adds errno's text. */
static int fail(const char *cmd, const char *path, int rc, const char *why, int err)
{
    fprintf(stderr, "abidance-cred: %s: %s%s%s%s%s\n", cmd, path ? path : "", path ? ": " : "",
            why ? why : ab_err_str(rc), rc == AB_EIO && err ? ": " : "",
            rc == AB_EIO && err ? strerror(err) : "");
    return EXIT_FAILURE;
}

/* A core dump or a debugger attached by the same user must not show secrets. */
static void harden_process(void)
{
    struct rlimit no_core = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &no_core);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static int cmd_keygen(int argc, char **argv)
{
    struct ab_cred_key key;
    char hex[AB_CRED_KEY_HEX_LEN + 1];
    int rc;

    if (argc > 1)
        return usage_error("keygen takes no arguments");
    (void)argv;
    ab_cred_key_init(&key);
    rc = ab_cred_key_generate(&key);
    if (rc) {
        ab_cred_key_deinit(&key);
        return fail("keygen", NULL, rc, "cannot generate a key", 0);
    }
    ab_cred_key_format(&key, hex);
    ab_cred_key_deinit(&key);
    printf("%s\n", hex);
    sodium_memzero(hex, sizeof(hex));
    if (fflush(stdout) != 0)
        return fail("keygen", NULL, AB_EIO, "cannot write the key", errno);
    return EXIT_SUCCESS;
}

/*
 * Reads one line from fd byte by byte (no stdio buffer keeps a copy) into
 * buf (cap bytes with the NUL). Drops the newline and a trailing '\r'.
 * Returns 1 for a line, 0 at EOF before any byte, -1 when too long or on a
 * read error (the rest of a long line is consumed).
 */
static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    bool got = false, too_long = false;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got = true;
        if (ch == '\n')
            break;
        if (n + 1 < cap)
            buf[n++] = ch;
        else
            too_long = true;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (too_long)
        return -1;
    return got ? 1 : 0;
}

/* Reads a line from a terminal with echo off, so the secret is not shown. */
static int read_hidden(int fd, char *buf, size_t cap)
{
    struct termios old, quiet;
    bool tty = tcgetattr(fd, &old) == 0;
    if (tty) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        (void)tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    int rc = read_line(fd, buf, cap);
    if (tty)
        (void)tcsetattr(fd, TCSAFLUSH, &old);
    return rc;
}

/* Fills *c from the environment or stdin; on failure prints why and returns 1. */
static int read_credentials(struct ab_cred *c)
{
    const char *env_key = getenv("ABIDANCE_API_KEY");
    const char *env_secret = getenv("ABIDANCE_API_SECRET");
    const char *why = NULL;
    bool have_key = env_key && *env_key, have_secret = env_secret && *env_secret;
    int rc;

    if (have_key || have_secret) {
        if (!have_key || !have_secret)
            return fail("encrypt", NULL, AB_EMISSING,
                        "set both ABIDANCE_API_KEY and ABIDANCE_API_SECRET, or neither to read "
                        "them from stdin",
                        0);
        rc = ab_cred_set(c, env_key, env_secret, &why);
        return rc ? fail("encrypt", NULL, rc, why, 0) : 0;
    }

    bool tty = isatty(STDIN_FILENO);
    if (tty)
        fputs("API key: ", stderr);
    /* Read straight into the (locked) struct; ab_cred_set checks in place. */
    int r = read_line(STDIN_FILENO, c->api_key, sizeof(c->api_key));
    if (r <= 0) {
        ab_cred_wipe(c);
        return fail("encrypt", NULL, AB_EINVAL,
                    r == 0 ? "no API key on stdin (expected two lines: API key, then secret)"
                           : "API key line is longer than 256 bytes or unreadable",
                    0);
    }
    if (tty)
        fputs("API secret (not shown): ", stderr);
    r = tty ? read_hidden(STDIN_FILENO, c->api_secret, sizeof(c->api_secret))
            : read_line(STDIN_FILENO, c->api_secret, sizeof(c->api_secret));
    if (r <= 0) {
        ab_cred_wipe(c);
        return fail("encrypt", NULL, AB_EINVAL,
                    r == 0 ? "no API secret on stdin (expected two lines: API key, then secret)"
                           : "API secret line is longer than 256 bytes or unreadable",
                    0);
    }
    rc = ab_cred_set(c, c->api_key, c->api_secret, &why);
    return rc ? fail("encrypt", NULL, rc, why, 0) : 0;
}

static int cmd_encrypt(int argc, char **argv)
{
    const char *out = NULL, *why = NULL;
    bool force = false;
    struct ab_cred_key key;
    struct ab_cred c;
    int rc, status = EXIT_FAILURE;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 || strcmp(argv[i], "-o") == 0) {
            if (i + 1 >= argc)
                return usage_error("encrypt: --out needs a file name");
            out = argv[++i];
        } else if (strncmp(argv[i], "--out=", 6) == 0) {
            out = argv[i] + 6;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = true;
        } else if (argv[i][0] == '-') {
            return usage_error("encrypt: unknown option");
        } else {
            return usage_error("encrypt takes no positional arguments (credentials come from "
                               "stdin or the environment, never from arguments)");
        }
    }
    if (!out || !*out)
        return usage_error("encrypt: --out FILE is required");

    ab_cred_key_init(&key);
    ab_cred_init(&c);
    rc = ab_cred_key_from_env(&key, &why);
    if (rc) {
        fail("encrypt", NULL, rc, why, 0);
        goto out;
    }
    if (read_credentials(&c) != 0)
        goto out;
    rc = ab_cred_write_file(out, &c, &key, force, &why);
    if (rc) {
        int err = errno;
        if (rc == AB_EPERM)
            why = "file exists; refusing to overwrite it (use --force to replace it)";
        fail("encrypt", out, rc, why, err);
        goto out;
    }
    printf("ok: wrote %s (mode 0600)\n", out);
    status = EXIT_SUCCESS;
out:
    ab_cred_deinit(&c);
    ab_cred_key_deinit(&key);
    return status;
}

static int cmd_check(int argc, char **argv)
{
    const char *path = NULL, *why = NULL;
    struct ab_cred_key key;
    struct ab_cred c;
    int rc, status = EXIT_FAILURE;

    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return usage_error("check: unknown option");
        if (path)
            return usage_error("check takes exactly one FILE");
        path = argv[i];
    }
    if (!path)
        return usage_error("check: FILE is required");

    ab_cred_key_init(&key);
    ab_cred_init(&c);
    rc = ab_cred_key_from_env(&key, &why);
    if (rc) {
        fail("check", NULL, rc, why, 0);
        goto out;
    }
    rc = ab_cred_read_file(path, &key, &c, &why);
    if (rc) {
        fail("check", path, rc, why, errno);
        goto out;
    }
    /* Only the last 4 characters, and only of a key long enough to keep them vague. */
    if (c.api_key_len >= 16)
        printf("ok: api key ...%s, secret present\n", c.api_key + c.api_key_len - 4);
    else
        printf("ok: api key (%zu characters), secret present\n", c.api_key_len);
    status = EXIT_SUCCESS;
out:
    ab_cred_deinit(&c);
    ab_cred_key_deinit(&key);
    return status;
}

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"keygen", cmd_keygen},
    {"encrypt", cmd_encrypt},
    {"check", cmd_check},
};

int main(int argc, char **argv)
{
    harden_process();
    if (argc < 2)
        return usage_error("a command is required (keygen, encrypt, check)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("abidance-cred %s\n", ABIDANCE_VERSION);
        return EXIT_SUCCESS;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            for (int j = 2; j < argc; j++) {
                if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
                    fputs(usage_text, stdout);
                    return EXIT_SUCCESS;
                }
            }
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    return usage_error("unknown command");
}
