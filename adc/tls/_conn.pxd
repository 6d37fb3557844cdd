from adc._fastpath.counters cimport CounterRegion
from adc.tls.includes.openssl cimport SSL, SSL_CTX, BIO


cdef class TlsServer:
    cdef readonly object tls, app_factory, loop, dispatch_py
    cdef readonly double handshake_timeout
    # the worker's counters and the VIP's slot (adc.control.metrics: adc_vip_tls_*); None: not counted
    cdef public CounterRegion counters
    cdef public Py_ssize_t slot
    cdef SSL_CTX *dispatch
    cdef object certs, ptrs
    # seconds a connection may idle before its record buffers go (tests shorten it)
    cdef public double release_after
    # connections that may keep their record buffers at once; more get OpenSSL's per-record release
    cdef public Py_ssize_t max_held
    cdef set held
    cdef object sweeper

    cdef SSL_CTX *ptr_for(self, ctx) except NULL
    cdef _hold(self, TlsConn c)
    cdef void count(self, int field) noexcept


cdef class TlsConn:
    cdef SSL *ssl
    cdef BIO *rbio
    cdef BIO *wbio
    cdef readonly TlsServer server
    cdef readonly object app, raw, pyctx
    # adc.tls.identity's headers for this connection, computed once (ClientConn has no slot for them)
    cdef public object tls_identity
    cdef object hs_timer
    # bound once: a lookup and a method object less per request each way
    cdef object app_received, raw_write
    cdef readonly bint handshaken, closing, app_paused, eof, connected
    cdef bint read_scheduled
    # busy: read or written since the last sweep; held: in the server's set of buffer holders;
    # capped: on OpenSSL's per-record release because max_held connections hold theirs
    cdef bint busy, held, capped, sni_error

    cdef int _switch(self, const char *name) except -1
    cdef _handshake(self)
    cdef _read(self)
    cdef _flush(self)
    cdef _fail(self, str what)
    cdef _shrink_bios(self)
    cdef _used(self)
