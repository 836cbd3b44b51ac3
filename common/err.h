/*
 * err: the project-wide error codes.
 *
 * Every fallible function in abidance returns int: 0 on success or one of the
 * negative codes below. ab_err_str() names a code for logs and error bodies.
 * Any thread may call these functions.
 */
#ifndef AB_ERR_H
#define AB_ERR_H

enum ab_err {
    AB_OK = 0,
    AB_EINVAL = -1,     /* malformed input: bad syntax, bad characters */
    AB_ERANGE = -2,     /* value out of the representable or allowed range */
    AB_ENOMEM = -3,     /* allocation failed or a hard cap was reached */
    AB_EJSON = -4,      /* not JSON, or JSON of the wrong overall shape */
    AB_EMISSING = -5,   /* a required field is absent */
    AB_ETYPE = -6,      /* a field has the wrong JSON type */
    AB_EVALIDATE = -7,  /* well-formed but semantically invalid (OHLC, alignment) */
    AB_EGAP = -8,       /* a sequence gap: the consumer must resynchronise */
    AB_ESTATE = -9,     /* call not valid in the object's current state */
    AB_EIO = -10,       /* an operating-system I/O call failed (see errno) */
    AB_ECRYPTO = -11,   /* decryption/authentication failed: wrong key or tampered data */
    AB_ETRUNC = -12,    /* input ended early */
    AB_EDB = -13,       /* database error that retrying will not fix */
    AB_EDB_RETRY = -14, /* database error that may succeed on retry (connection lost) */
    AB_ENOTFOUND = -15, /* the thing asked for does not exist */
    AB_EEXCHANGE = -16, /* the exchange answered with an error body */
    AB_EPERM = -17,     /* refused: permissions or policy (e.g. world-readable secret file) */
};

/* Returns a static, human-readable name for an ab_err code ("invalid input", ...). */
const char *ab_err_str(int code);

#endif
