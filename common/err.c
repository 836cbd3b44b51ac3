#include "common/err.h"

const char *ab_err_str(int code)
{
    switch (code) {
    case AB_OK:
        return "ok";
    case AB_EINVAL:
        return "invalid input";
    case AB_ERANGE:
        return "out of range";
    case AB_ENOMEM:
        return "out of memory or capacity";
    case AB_EJSON:
        return "malformed JSON";
    case AB_EMISSING:
        return "missing field";
    case AB_ETYPE:
        return "wrong field type";
    case AB_EVALIDATE:
        return "validation failed";
    case AB_EGAP:
        return "sequence gap";
    case AB_ESTATE:
        return "invalid state";
    case AB_EIO:
        return "I/O error";
    case AB_ECRYPTO:
        return "decryption failed";
    case AB_ETRUNC:
        return "truncated input";
    case AB_EDB:
        return "database error";
    case AB_EDB_RETRY:
        return "database unavailable";
    case AB_ENOTFOUND:
        return "not found";
    case AB_EEXCHANGE:
        return "exchange error";
    case AB_EPERM:
        return "permission denied";
    }
    return "unknown error";
}
