"""adc.tls._openssl: the two OpenSSL knobs the stdlib ssl module does not expose, reached with ctypes.

Python 3.11's SSLContext cannot set the key-exchange group list or the
session ticket keys. Both are plain SSL_CTX_ctrl calls on the SSL_CTX that
the SSLContext wraps. Every call here checks first that it found the real
SSL_CTX (its options must read back as the SSLContext's), and reports
False instead of guessing, so callers can fall back.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import ssl
from typing import Optional

# ssl.h
SSL_CTRL_SET_TLSEXT_TICKET_KEYS = 59
SSL_CTRL_SET_GROUPS_LIST = 92

_lib: Optional[ctypes.CDLL] = None
_tried = False


def _libssl() -> Optional[ctypes.CDLL]:
    """The libssl the _ssl module is linked against (dlopen of a loaded soname returns that copy)."""
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    import _ssl
    names = []
    try:
        # the exact file _ssl loaded, from /proc/self/maps
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rsplit(" ", 1)[-1].strip()
                if "/libssl.so" in path and path not in names:
                    names.append(path)
    except OSError:
        pass
    found = ctypes.util.find_library("ssl")
    if found:
        names.append(found)
    del _ssl
    for n in names:
        try:
            lib = ctypes.CDLL(n)
            lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
            lib.SSL_CTX_ctrl.restype = ctypes.c_long
            lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
            lib.SSL_CTX_get_options.restype = ctypes.c_uint64
            lib.OpenSSL_version.argtypes = [ctypes.c_int]
            lib.OpenSSL_version.restype = ctypes.c_char_p
        except (OSError, AttributeError):
            continue
        # the same library as the ssl module, or the pointer games below are wrong
        if lib.OpenSSL_version(0).decode() == ssl.OPENSSL_VERSION:
            _lib = lib
            break
    return _lib


def _ssl_ctx(ctx: ssl.SSLContext) -> Optional[int]:
    """The SSL_CTX* inside ctx: the first field after the object header (CPython's PySSLContext)."""
    lib = _libssl()
    if lib is None:
        return None
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ptr:
        return None
    # a wrong pointer would not read back our options (flip one harmless bit to be sure)
    probe = ssl.OP_CIPHER_SERVER_PREFERENCE
    before = ctx.options
    try:
        if lib.SSL_CTX_get_options(ptr) != int(before):
            return None
        ctx.options = before ^ probe
        ok = lib.SSL_CTX_get_options(ptr) == int(ctx.options)
    finally:
        ctx.options = before
    return ptr if ok else None


def set_groups(ctx: ssl.SSLContext, groups: list[str]) -> bool:
    """SSL_CTX_set1_groups_list: the key-exchange groups offered, in order. False if not possible."""
    ptr = _ssl_ctx(ctx)
    if ptr is None:
        return False
    arg = ctypes.create_string_buffer(":".join(groups).encode())
    return _libssl().SSL_CTX_ctrl(ptr, SSL_CTRL_SET_GROUPS_LIST, 0, ctypes.cast(arg, ctypes.c_void_p)) == 1


def set_ticket_keys(ctx: ssl.SSLContext, keys: bytes) -> bool:
    """SSL_CTX_set_tlsext_ticket_keys: 80 bytes (16 name, 32 HMAC, 32 AES). False if not possible."""
    if len(keys) != 80:
        raise ValueError("session ticket keys are 80 bytes")
    ptr = _ssl_ctx(ctx)
    if ptr is None:
        return False
    buf = ctypes.create_string_buffer(keys, 80)
    return _libssl().SSL_CTX_ctrl(ptr, SSL_CTRL_SET_TLSEXT_TICKET_KEYS, 80, ctypes.cast(buf, ctypes.c_void_p)) == 1
