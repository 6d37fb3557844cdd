"""adc.tls._conn: TLS termination in C for https VIPs, between uvloop's plain transport and ClientConn.

uvloop's own TLS (create_server(ssl=...)) runs every record through Python:
SSLObject/MemoryBIO method calls, a 256 KiB bytes per read, a wake-up more
per write. That cost adc ~20 us per keep-alive request against HAProxy's
~4 us (docs/tls.md). Here the raw bytes go into an OpenSSL memory BIO and
SSL_do_handshake / SSL_read / SSL_write run from C: per request one
data_received in, one write out, one Python call each way to ClientConn.

The SSL objects come from the SSL_CTX inside the stdlib SSLContext objects
that adc.tls.server builds (policy, certificates, ALPN, ticket keys are set
there, with the stdlib). Python's SNI callback needs a Python SSLSocket as
the SSL's app data, so it never runs here: our SSL objects start on a
dispatcher context of their own (ServerTls.c_dispatcher) whose servername
callback is ours.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t

import logging
import ssl

from adc._fastpath.counters cimport ERRORS, TLS_FAILURES, TLS_HANDSHAKES, TLS_RESUMED
from adc.tls.includes.openssl cimport *

logger = logging.getLogger("adc.tls")

LINKED_VERSION = OpenSSL_version(OPENSSL_VERSION).decode()
# the SSL_CTX pointers we take from Python's contexts are only meaningful in the same library
AVAILABLE = LINKED_VERSION == ssl.OPENSSL_VERSION

cdef enum:
    PLAIN_SIZE = 65536


cdef bint _free_buffers_safe():
    """Whether SSL_free_buffers refuses buffers in use (CVE-2024-4741 fixed): 3.0.14, 3.1.6, 3.2.2,
    3.3.1 and later releases of each series, any 3.4+."""
    cdef unsigned long v = OpenSSL_version_num()
    cdef unsigned long major = v >> 28, minor = (v >> 20) & 0xff, patch = (v >> 4) & 0xff
    if major != 3:
        return major > 3
    if minor >= 4:
        return True
    return patch >= (14, 6, 2, 1)[minor]


# without a safe SSL_free_buffers, OpenSSL's own per-record release (Python's default) stays on
KEEP_BUFFERS = _free_buffers_safe()

# the one plaintext read buffer of the process: its bytes are copied out before any callback runs
cdef char _plain[PLAIN_SIZE]


class Unsupported(Exception):
    """This Python's SSLContext does not hold an SSL_CTX where we look for it."""


cdef SSL_CTX *_ctx_of(object ctx) except? NULL:
    """The SSL_CTX* of a stdlib SSLContext: CPython's PySSLContext has it first after the object header.

    Checked as adc.tls._openssl does: its options must read back, also after one bit is flipped.
    NULL if not.
    """
    if not isinstance(ctx, ssl.SSLContext):
        return NULL
    cdef SSL_CTX *p = (<SSL_CTX **>(<char *><PyObject *>ctx + sizeof(PyObject)))[0]
    if p == NULL:
        return NULL
    before = int(ctx.options)
    if SSL_CTX_get_options(p) != <uint64_t>before:
        return NULL
    cdef bint ok
    try:
        ctx.options = before ^ int(ssl.OP_CIPHER_SERVER_PREFERENCE)
        ok = SSL_CTX_get_options(p) == <uint64_t>int(ctx.options)
    finally:
        ctx.options = before
    return p if ok else NULL


def ctx_check(ctx) -> bool:
    """True if the C path can use ctx's SSL_CTX."""
    return AVAILABLE and _ctx_of(ctx) != NULL


cdef inline void _clear_errors() noexcept nogil:
    """Empty the thread's error queue before an SSL call, whose SSL_get_error reads it.

    Python's ssl shares the queue and may leave entries; ERR_clear_error wipes all 16 slots
    whether or not they are used (~800 instructions), so it runs only when a look finds one."""
    if ERR_peek_error() != 0:
        ERR_clear_error()


cdef inline size_t _held(BIO *b) noexcept nogil:
    """The bytes a memory BIO holds: its running totals, not BIO_ctrl_pending's method dispatch."""
    return <size_t>(BIO_number_written(b) - BIO_number_read(b))


cdef size_t _capacity(BIO *b) noexcept nogil:
    cdef BUF_MEM *bm = NULL
    if b == NULL:
        return 0
    BIO_get_mem_ptr(b, &bm)
    return bm.max if bm != NULL else 0


cdef enum:
    # memory BIOs holding more than this (a large body went through) are replaced when idle
    BIO_KEEP = 16384


cdef str _ssl_error():
    """The first queued OpenSSL error as text; the queue is left empty (Python's ssl shares it)."""
    cdef char buf[256]
    cdef unsigned long e = ERR_get_error()
    ERR_clear_error()
    if e == 0:
        return "unexpected EOF or I/O error"
    ERR_error_string_n(e, buf, sizeof(buf))
    return buf.decode("ascii", "replace")


cdef int _on_servername(SSL *s, int *al, void *arg) noexcept with gil:
    # OpenSSL calls this for every ClientHello, with or without a server name, resumptions too
    cdef void *me = SSL_get_app_data(s)
    if me == NULL:
        return SSL_TLSEXT_ERR_OK
    try:
        (<TlsConn>me)._switch(SSL_get_servername(s, TLSEXT_NAMETYPE_host_name))
        return SSL_TLSEXT_ERR_OK
    except BaseException:      # noqa: BLE001 - nothing may raise into OpenSSL
        (<TlsConn>me).sni_error = True
        logger.exception("vip %s: SNI: no context", getattr((<TlsConn>me).server.tls, "vip", "?"))
        al[0] = SSL_AD_INTERNAL_ERROR
        return SSL_TLSEXT_ERR_ALERT_FATAL


cdef class TlsServer:
    """The C TLS side of one https listener: the protocol factory handed to loop.create_server.

    tls: the listener's adc.tls.server.ServerTls; app_factory: makes the ClientConn of a connection.
    """

    def __init__(self, tls, app_factory, loop, double handshake_timeout, double release_after=5.0):
        if not AVAILABLE:
            raise Unsupported(f"adc.tls._conn is linked to {LINKED_VERSION}, Python's ssl to {ssl.OPENSSL_VERSION}")
        self.tls = tls
        self.app_factory = app_factory
        self.loop = loop
        self.handshake_timeout = handshake_timeout
        self.dispatch_py = tls.c_dispatcher()
        cdef SSL_CTX *p = _ctx_of(self.dispatch_py)
        if p == NULL:
            raise Unsupported("the SSL_CTX of Python's SSLContext is not where adc expects it")
        self.dispatch = p
        SSL_CTX_set_tlsext_servername_callback(p, _on_servername)
        self.certs = None
        self.ptrs = {}
        self.release_after = release_after
        self.max_held = 4096
        self.counters = None
        self.slot = -1
        self.held = set()
        self.sweeper = None

    def __call__(self):
        cdef TlsConn c = TlsConn.__new__(TlsConn)
        c.server = self
        c.app = self.app_factory()
        return c

    cdef void count(self, int field) noexcept:
        if self.counters is not None:
            self.counters.add(self.slot, field, 1)

    @property
    def buffers_held(self):
        """Connections whose record buffers are allocated (in use in the last release_after seconds)."""
        return len(self.held)

    cdef _hold(self, TlsConn c):
        if len(self.held) >= self.max_held:
            # as many busy connections as we keep buffers for (~34 KiB each): this one gets
            # OpenSSL's per-record release until the sweep makes room
            if not c.capped:
                c.capped = True
                SSL_set_mode(c.ssl, SSL_MODE_RELEASE_BUFFERS)
            return
        if c.capped:
            c.capped = False
            SSL_clear_mode(c.ssl, SSL_MODE_RELEASE_BUFFERS)
        c.held = True
        self.held.add(c)
        if self.sweeper is None:
            self.sweeper = self.loop.call_later(self.release_after, self._sweep)

    def _sweep(self):
        """Give back the record buffers (~34 KiB) of connections idle for a sweep period, and the
        memory BIOs' buffers when a large body made them grow (up to a read or a write: 256 KiB).

        OpenSSL would otherwise allocate and free them around every record (Python's contexts set
        SSL_MODE_RELEASE_BUFFERS): 1,200 instructions a request, a tenth of the TLS cost of a
        small keep-alive request. Keeping them while a connection is busy and freeing them when it
        idles costs an idle keep-alive connection nothing, as the mode did."""
        self.sweeper = None
        cdef TlsConn c
        for c in list(self.held):
            if c.busy:
                c.busy = False
            elif c.ssl != NULL and (c.app_paused or SSL_has_pending(c.ssl)):
                pass        # decrypted bytes wait for the app: the buffer is in use
            elif c.ssl == NULL or SSL_free_buffers(c.ssl):
                c._shrink_bios()
                c.held = False
                self.held.discard(c)
        if self.held:
            self.sweeper = self.loop.call_later(self.release_after, self._sweep)

    cdef SSL_CTX *ptr_for(self, ctx) except NULL:
        """ctx's SSL_CTX, checked once per context of the current certificate revision."""
        certs = self.tls.certs
        if certs is not self.certs:
            # an apply brought new contexts: forget the old ones (the revision object holds them alive)
            self.certs = certs
            self.ptrs = {}
        v = self.ptrs.get(id(ctx))
        if v is not None:
            return <SSL_CTX *><size_t>v
        cdef SSL_CTX *p = _ctx_of(ctx)
        if p == NULL:
            raise Unsupported("the SSL_CTX of a certificate context failed its check")
        self.ptrs[id(ctx)] = <size_t>p
        return p


cdef class TlsConn:
    """One TLS connection: uvloop's protocol on the raw side, the transport of ClientConn on the other.

    Reading: raw bytes -> read BIO -> SSL_read into the shared buffer -> one bytes per batch to
    app.data_received. Writing: one SSL_write per app write -> the write BIO -> one raw write.
    The app (ClientConn) is connected once the handshake is done, as with uvloop's ssl.
    """

    def __dealloc__(self):
        if self.ssl != NULL:
            SSL_free(self.ssl)      # frees both BIOs
            self.ssl = NULL

    # ------------------------------------------------------------ raw side (uvloop)
    def connection_made(self, raw):
        self.raw = raw
        self.raw_write = raw.write
        cdef TlsServer srv = self.server
        _clear_errors()
        cdef SSL *s = SSL_new(srv.dispatch)
        if s == NULL:
            _clear_errors()
            raw.abort()
            return
        self.rbio = BIO_new(BIO_s_mem())
        self.wbio = BIO_new(BIO_s_mem())
        if self.rbio == NULL or self.wbio == NULL:
            if self.rbio != NULL:
                BIO_free(self.rbio)
            if self.wbio != NULL:
                BIO_free(self.wbio)
            SSL_free(s)
            _clear_errors()
            raw.abort()
            return
        SSL_set_bio(s, self.rbio, self.wbio)
        SSL_set_accept_state(s)
        # the buffers stay while the connection is busy; TlsServer._sweep frees them when it idles
        if KEEP_BUFFERS:
            SSL_clear_mode(s, SSL_MODE_RELEASE_BUFFERS)
        # borrowed: this object owns s and frees it before it goes
        SSL_set_app_data(s, <void *>self)
        self.ssl = s
        self.pyctx = srv.dispatch_py
        if srv.handshake_timeout > 0:
            self.hs_timer = srv.loop.call_later(srv.handshake_timeout, self._handshake_timeout)

    def data_received(self, data):
        if self.ssl == NULL or self.closing:
            return
        self._used()
        cdef Py_buffer view
        if type(data) is bytes:
            BIO_write(self.rbio, PyBytes_AS_STRING(data), len(<bytes>data))
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                BIO_write(self.rbio, view.buf, <int>view.len)
            finally:
                PyBuffer_Release(&view)
        if not self.handshaken:
            self._handshake()
            # the app may have refused the connection in connection_made (max_connections: 503, close)
            if not self.handshaken or self.closing:
                return
        if not self.app_paused:
            self._read()

    def eof_received(self):
        # TCP FIN (with or without close_notify before it)
        if not self.connected:
            self.closing = True
            return False
        if self.eof:
            return True     # close_notify came first and the app keeps the connection to answer
        self.eof = True
        keep = self.app.eof_received()
        if not keep:
            self.closing = True
        return keep

    def connection_lost(self, exc):
        self.closing = True
        if self.held:
            self.held = False
            self.server.held.discard(self)
        if self.hs_timer is not None:
            self.hs_timer.cancel()
            self.hs_timer = None
        if self.ssl != NULL:
            SSL_free(self.ssl)
            self.ssl = NULL
            self.rbio = self.wbio = NULL
        app = self.app
        self.app = self.app_received = None     # ClientConn keeps us as its transport: no cycle left
        if self.connected:
            self.connected = False
            app.connection_lost(exc)
        self.raw = self.raw_write = None

    def pause_writing(self):
        if self.connected:
            self.app.pause_writing()

    def resume_writing(self):
        if self.connected:
            self.app.resume_writing()

    @property
    def bio_capacity(self):
        """Bytes allocated by the two memory BIOs (they grow to the largest read or write seen)."""
        return _capacity(self.rbio) + _capacity(self.wbio) if self.ssl != NULL else 0

    # ----------------------------------------------------------------- internals
    cdef _used(self):
        # I/O since the last sweep; a connection that kept no buffers asks to keep them
        self.busy = True
        if not self.held and KEEP_BUFFERS:
            self.server._hold(self)

    cdef _shrink_bios(self):
        """An idle connection's empty memory BIOs, grown by a large body, become new small ones."""
        if self.ssl == NULL or _held(self.rbio) or _held(self.wbio):
            return
        if _capacity(self.rbio) + _capacity(self.wbio) <= BIO_KEEP:
            return
        cdef BIO *r = BIO_new(BIO_s_mem())
        cdef BIO *w = BIO_new(BIO_s_mem())
        if r == NULL or w == NULL:
            if r != NULL:
                BIO_free(r)
            if w != NULL:
                BIO_free(w)
            _clear_errors()
            return
        SSL_set_bio(self.ssl, r, w)     # both changed: the old two are freed
        self.rbio = r
        self.wbio = w

    def _handshake_timeout(self):
        self.hs_timer = None
        if not self.handshaken and not self.closing and self.raw is not None:
            logger.debug("vip %s: TLS handshake timed out", self.server.tls.vip)
            self.server.count(TLS_FAILURES)
            self.closing = True
            self.raw.abort()

    cdef int _switch(self, const char *name) except -1:
        """The servername callback: move the handshake to the context of name's certificates."""
        srv = self.server
        ctx = srv.tls.certs.for_name(name.decode("ascii", "replace") if name != NULL else None)
        if ctx is not self.pyctx:
            SSL_set_SSL_CTX(self.ssl, srv.ptr_for(ctx))
            # Python's ALPN callback reads this PySSLContext: it lives as long as the connection
            self.pyctx = ctx
        return 0

    cdef _handshake(self):
        _clear_errors()
        cdef int r = SSL_do_handshake(self.ssl)
        if r == 1:
            self.handshaken = True
            self.server.count(TLS_HANDSHAKES)
            if SSL_session_reused(self.ssl):
                self.server.count(TLS_RESUMED)
            if self.hs_timer is not None:
                self.hs_timer.cancel()
                self.hs_timer = None
            self._flush()       # the server's last flight (TLS 1.3: its session tickets)
            self.connected = True
            self.app_received = self.app.data_received
            self.app.connection_made(self)
            return
        cdef int err = SSL_get_error(self.ssl, r)
        if err == SSL_ERROR_WANT_READ:
            _clear_errors()
            self._flush()
            return
        if self.sni_error:
            # ours, not the client's (logged above): an error of the VIP
            self.server.count(ERRORS)
        else:
            self.server.count(TLS_FAILURES)
        self._fail("TLS handshake failed")

    cdef _fail(self, str what):
        """A fatal TLS error: send the alert OpenSSL queued, close."""
        reason = _ssl_error()
        peer = self.raw.get_extra_info("peername") if self.raw is not None else None
        logger.debug("vip %s: client %s: %s: %s", self.server.tls.vip, peer, what, reason)
        self._flush()
        self.closing = True
        if self.raw is not None:
            self.raw.close()

    cdef _read(self):
        cdef SSL *s
        cdef int n, off, err
        _clear_errors()
        while True:
            s = self.ssl
            off = 0
            err = SSL_ERROR_NONE
            while off < PLAIN_SIZE:
                n = SSL_read(s, _plain + off, PLAIN_SIZE - off)
                if n > 0:
                    off += n
                    # nothing left to decrypt: spare the SSL_read that would say WANT_READ
                    if _held(self.rbio) == 0 and not SSL_has_pending(s):
                        err = SSL_ERROR_WANT_READ
                        break
                else:
                    err = SSL_get_error(s, n)
                    break
            if _held(self.wbio):
                self._flush()       # what reading made OpenSSL answer (a KeyUpdate)
            if off:
                self.app_received(PyBytes_FromStringAndSize(_plain, off))
                if self.ssl == NULL or self.closing:
                    return
            if err == SSL_ERROR_NONE:
                if self.app_paused:
                    return      # the rest waits in the read BIO for resume_reading
                continue
            break
        if err == SSL_ERROR_WANT_READ:
            return
        if err == SSL_ERROR_ZERO_RETURN:
            # close_notify: the client sends no more; the app may still answer
            _clear_errors()
            if not self.eof:
                self.eof = True
                if not self.app.eof_received():
                    self.close()
            return
        self._fail("TLS error")

    def _read_soon(self):
        self.read_scheduled = False
        if self.ssl != NULL and not self.closing and not self.app_paused and self.handshaken:
            self._read()

    cdef _flush(self):
        cdef size_t n = _held(self.wbio)
        if n == 0 or self.raw is None:
            return
        b = PyBytes_FromStringAndSize(NULL, n)
        BIO_read(self.wbio, PyBytes_AS_STRING(b), <int>n)
        self.raw_write(b)

    # ------------------------------------------------------- transport (for ClientConn)
    def write(self, data):
        # after close, writes are dropped, as uvloop's transports do
        if self.ssl == NULL or self.closing:
            return
        cdef Py_buffer view
        cdef int r
        # no ERR_clear_error here: a write into a memory BIO cannot ask to be retried, so SSL_get_error
        # is never consulted; a failure is fatal and read from the queue as it is
        if type(data) is bytes:
            if not len(<bytes>data):
                return
            r = SSL_write(self.ssl, PyBytes_AS_STRING(data), len(<bytes>data))
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                if not view.len:
                    return
                r = SSL_write(self.ssl, view.buf, <int>view.len)
            finally:
                PyBuffer_Release(&view)
        if r <= 0:
            self._fail("TLS write failed")
            return
        self._used()
        self._flush()

    def writelines(self, list_of_data):
        # one SSL_write: full records instead of one per piece
        self.write(b"".join(list_of_data))

    def close(self):
        if self.closing:
            return
        self.closing = True
        if self.ssl != NULL and self.handshaken:
            _clear_errors()
            SSL_shutdown(self.ssl)      # queues our close_notify; we do not wait for the client's
            _clear_errors()
            self._flush()
        if self.raw is not None:
            self.raw.close()

    def abort(self):
        self.closing = True
        if self.raw is not None:
            self.raw.abort()

    def is_closing(self):
        return self.closing

    def pause_reading(self):
        if not self.app_paused:
            self.app_paused = True
            if self.raw is not None and not self.closing:
                self.raw.pause_reading()

    def resume_reading(self):
        if self.app_paused:
            self.app_paused = False
            if self.raw is None or self.closing:
                return
            self.raw.resume_reading()
            # records that came before the pause wait in the read BIO: decrypt them from the loop,
            # not inside the app's call
            if not self.read_scheduled and (_held(self.rbio) or SSL_has_pending(self.ssl)):
                self.read_scheduled = True
                self.server.loop.call_soon(self._read_soon)

    def is_reading(self):
        return not self.app_paused and not self.closing

    def can_write_eof(self):
        return False

    def write_eof(self):
        raise NotImplementedError("TLS has no half-close for the server; close() sends close_notify")

    def get_write_buffer_size(self):
        return self.raw.get_write_buffer_size() if self.raw is not None else 0

    def get_write_buffer_limits(self):
        return self.raw.get_write_buffer_limits()

    def set_write_buffer_limits(self, high=None, low=None):
        self.raw.set_write_buffer_limits(high, low)

    def get_protocol(self):
        return self.app

    def set_protocol(self, protocol):
        self.app = protocol
        if self.connected:
            self.app_received = protocol.data_received

    def get_extra_info(self, name, default=None):
        if name == "ssl_object":
            return self         # getpeercert(binary_form=True), selected_alpn_protocol(), version(), cipher()
        if name == "sslcontext":
            return self.pyctx
        if name == "cipher":
            return self.cipher()
        if name == "peercert":
            return default
        if self.raw is None:
            return default
        return self.raw.get_extra_info(name, default)

    # ---------------------------------------------- the parts of ssl.SSLObject adc reads
    def getpeercert(self, binary_form=False):
        """The client's certificate as DER (verified: an unverified one fails the handshake), or None."""
        if not binary_form:
            raise NotImplementedError("adc's C TLS path gives the client certificate as DER only")
        if self.ssl == NULL:
            return None
        cdef X509 *x = SSL_get0_peer_certificate(self.ssl)
        if x == NULL:
            return None
        cdef int n = i2d_X509(x, NULL)
        if n <= 0:
            _clear_errors()
            return None
        b = PyBytes_FromStringAndSize(NULL, n)
        cdef unsigned char *p = <unsigned char *>PyBytes_AS_STRING(b)
        i2d_X509(x, &p)
        return b

    def selected_alpn_protocol(self):
        cdef const unsigned char *d = NULL
        cdef unsigned int n = 0
        if self.ssl == NULL:
            return None
        SSL_get0_alpn_selected(self.ssl, &d, &n)
        return (<const char *>d)[:n].decode("ascii", "replace") if n else None

    def version(self):
        if self.ssl == NULL or not self.handshaken:
            return None
        return SSL_get_version(self.ssl).decode()

    def cipher(self):
        if self.ssl == NULL or not self.handshaken:
            return None
        c = SSL_get_current_cipher(self.ssl)
        if c == NULL:
            return None
        return (SSL_CIPHER_get_name(c).decode(), self.version(), None)

    def session_reused(self):
        return self.ssl != NULL and SSL_session_reused(self.ssl) == 1
