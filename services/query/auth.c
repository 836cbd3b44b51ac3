/* auth: the API token (see auth.h). */
#include "auth.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"

static bool token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '~' || c == '-';
}

int auth_token_check(const char *text, size_t len, char *why, size_t why_len)
{
    if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX) {
        snprintf(why, why_len, "the token is %zu characters; %d to %d are accepted", len,
                 AUTH_TOKEN_MIN, AUTH_TOKEN_MAX);
        return AB_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (!token_char((unsigned char)text[i])) {
            snprintf(why, why_len,
                     "the token has a character outside A-Z a-z 0-9 . _ ~ - (at offset %zu)", i);
            return AB_EINVAL;
        }
    }
    return 0;
}

bool auth_token_equal(const char *secret, const char *given, size_t given_len)
{
    size_t slen = secret ? strlen(secret) : 0;
    if (slen == 0 || !given)
        return false;
    /* Accumulate differences over every byte of given; the secret is read
     * cyclically so its length and contents do not change the work done. */
    volatile unsigned char diff = (unsigned char)(given_len != slen);
    for (size_t i = 0; i < given_len; i++)
        diff |= (unsigned char)((unsigned char)given[i] ^ (unsigned char)secret[i % slen]);
    return diff == 0;
}

bool auth_bearer(const char *value, const char **tok, size_t *tok_len)
{
    if (!value)
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    if (strncasecmp(value, "Bearer", 6) != 0 || (value[6] != ' ' && value[6] != '\t'))
        return false;
    const char *t = value + 6;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (n == 0)
        return false;
    *tok = t;
    *tok_len = n;
    return true;
}
