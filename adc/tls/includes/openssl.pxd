# C declarations only: the parts of libssl/libcrypto (OpenSSL 3.0) that adc.tls._conn calls.
from libc.stdint cimport uint64_t

cdef extern from "<openssl/crypto.h>" nogil:
    enum:
        OPENSSL_VERSION
    # a static string, e.g. "OpenSSL 3.0.19 27 Jan 2026"; never NULL
    const char *OpenSSL_version(int t)
    # 0xMNN00PP0L: major, minor, patch
    unsigned long OpenSSL_version_num()

cdef extern from "<openssl/err.h>" nogil:
    # the calling thread's error queue: Python's ssl shares it, so we leave it empty
    void ERR_clear_error()
    # 0: the queue is empty (a look costs a tenth of a clear, which wipes all 16 slots)
    unsigned long ERR_peek_error()
    unsigned long ERR_get_error()
    void ERR_error_string_n(unsigned long e, char *buf, size_t len)

cdef extern from "<openssl/buffer.h>" nogil:
    ctypedef struct BUF_MEM:
        size_t length       # bytes held
        size_t max          # bytes allocated: a memory BIO's buffer grows to its largest fill, never shrinks

cdef extern from "<openssl/bio.h>" nogil:
    ctypedef struct BIO
    # a memory BIO's buffer (macro over BIO_ctrl)
    long BIO_get_mem_ptr(BIO *b, BUF_MEM **pp)
    ctypedef struct BIO_METHOD
    const BIO_METHOD *BIO_s_mem()
    # NULL: out of memory
    BIO *BIO_new(const BIO_METHOD *t)
    void BIO_free(BIO *b)
    # bytes written (a memory BIO takes all), or <= 0: out of memory
    int BIO_write(BIO *b, const void *data, int dlen)
    # bytes read; -1 with retry when empty (a memory BIO's default)
    int BIO_read(BIO *b, void *data, int dlen)
    size_t BIO_ctrl_pending(BIO *b)
    # running totals of the bytes through a BIO; for a memory BIO written - read is what it holds,
    # without BIO_ctrl's dispatch
    uint64_t BIO_number_read(BIO *b)
    uint64_t BIO_number_written(BIO *b)

cdef extern from "<openssl/x509.h>" nogil:
    ctypedef struct X509
    # DER length, or < 0; with *out set, writes there and advances it
    int i2d_X509(X509 *a, unsigned char **out)

cdef extern from "<openssl/ssl.h>" nogil:
    ctypedef struct SSL_CTX
    ctypedef struct SSL
    ctypedef struct SSL_CIPHER

    enum:
        SSL_ERROR_NONE
        SSL_ERROR_SSL
        SSL_ERROR_WANT_READ
        SSL_ERROR_WANT_WRITE
        SSL_ERROR_SYSCALL
        SSL_ERROR_ZERO_RETURN
        SSL_TLSEXT_ERR_OK
        SSL_TLSEXT_ERR_ALERT_FATAL
        SSL_AD_INTERNAL_ERROR
        TLSEXT_NAMETYPE_host_name
        SSL_MODE_RELEASE_BUFFERS

    uint64_t SSL_CTX_get_options(const SSL_CTX *ctx)
    # macro over SSL_CTX_callback_ctrl; the callback runs inside SSL_do_handshake, after the ClientHello
    long SSL_CTX_set_tlsext_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *) noexcept)

    # NULL: out of memory; copies verify mode, options, session context from ctx
    SSL *SSL_new(SSL_CTX *ctx)
    void SSL_free(SSL *s)
    # takes ownership of both BIOs
    void SSL_set_bio(SSL *s, BIO *rbio, BIO *wbio)
    void SSL_set_accept_state(SSL *s)
    int SSL_set_app_data(SSL *s, void *arg)
    void *SSL_get_app_data(const SSL *s)
    long SSL_clear_mode(SSL *s, long mode)
    # 1: the record buffers are freed; 0: in use (a partial record, or decrypted bytes not read yet),
    # nothing freed. Before 3.0.14 / 3.1.6 / 3.2.2 / 3.3.1 (CVE-2024-4741) it freed buffers in use:
    # adc.tls._conn calls it only on fixed versions
    int SSL_free_buffers(SSL *s)
    long SSL_set_mode(SSL *s, long mode)
    # 1 done; <= 0: SSL_get_error (WANT_READ: feed more bytes)
    int SSL_do_handshake(SSL *s)
    int SSL_is_init_finished(const SSL *s)
    # > 0 bytes; <= 0: SSL_get_error (WANT_READ: none buffered; ZERO_RETURN: close_notify)
    int SSL_read(SSL *s, void *buf, int num)
    # num, all of it (a memory BIO never pushes back); <= 0: SSL_get_error
    int SSL_write(SSL *s, const void *buf, int num)
    # 0: close_notify sent; 1: both sent; < 0: error
    int SSL_shutdown(SSL *s)
    int SSL_get_error(const SSL *s, int ret)
    int SSL_has_pending(const SSL *s)
    # NULL when the client sent none
    const char *SSL_get_servername(const SSL *s, const int type)
    # moves the handshake to ctx (certificates, CA store, ALPN); session context and verify mode stay
    SSL_CTX *SSL_set_SSL_CTX(SSL *s, SSL_CTX *ctx)
    # borrowed; NULL when the client sent no certificate
    X509 *SSL_get0_peer_certificate(const SSL *s)
    void SSL_get0_alpn_selected(const SSL *s, const unsigned char **data, unsigned int *len)
    const char *SSL_get_version(const SSL *s)
    const SSL_CIPHER *SSL_get_current_cipher(const SSL *s)
    const char *SSL_CIPHER_get_name(const SSL_CIPHER *c)
    int SSL_session_reused(const SSL *s)
