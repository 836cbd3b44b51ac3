/*
 * auth: the optional API token shared by REST and WebSocket
 * (ABIDANCE_API_TOKEN, --api-token, or --api-token-file).
 *
 * A token is AUTH_TOKEN_MIN..AUTH_TOKEN_MAX characters from the URL-safe
 * set [A-Za-z0-9._~-] (e.g. `openssl rand -hex 32`), so it travels
 * unchanged in an Authorization header and in a `?token=` query parameter.
 * Clients send `Authorization: Bearer <token>`.
 *
 * The token is a secret: nothing here logs or formats it, and comparisons
 * take time that does not depend on the secret's contents. Pure; any thread.
 */
#ifndef ABIDANCE_QUERY_AUTH_H
#define ABIDANCE_QUERY_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TOKEN_MIN 16
#define AUTH_TOKEN_MAX 256

/* 0 when text (len bytes) is an acceptable token, else AB_EINVAL (too short,
 * too long, or a character outside the set) with a message in why that never
 * quotes the text. */
int auth_token_check(const char *text, size_t len, char *why, size_t why_len);

/*
 * True when given (given_len bytes, any bytes) equals the NUL-terminated
 * secret. Every byte of given is looked at whatever the outcome, so the time
 * depends on given_len only, never on where a mismatch is or on the secret.
 * An empty secret equals nothing.
 */
bool auth_token_equal(const char *secret, const char *given, size_t given_len);

/*
 * Finds the credentials in an Authorization header value: "Bearer <token>"
 * (scheme case-insensitive, spaces around the token ignored). On success
 * *tok points into value and *tok_len is its length (> 0). NULL value: false.
 */
bool auth_bearer(const char *value, const char **tok, size_t *tok_len);

#endif
