from libc.stdint cimport uint64_t

# fields of a slot; adc.control.stats names them for the API
cpdef enum Field:
    CONN_TOTAL = 0
    CONN_ACTIVE = 1
    BYTES_IN = 2
    BYTES_OUT = 3
    REQUESTS = 4
    ERRORS = 5
    REFUSED = 6
    TIMEOUTS = 7
    RESP_5XX = 8      # L7: responses with a 5xx status received from a member (its slot)
    # https VIPs (adc.tls._conn, the VIP's slot): handshakes completed, of them resumed, and failed
    # (the client's fault: a protocol error or alert, or no complete handshake within the header timeout)
    TLS_HANDSHAKES = 9
    TLS_RESUMED = 10
    TLS_FAILURES = 11
    NFIELDS = 12

cdef class CounterRegion:
    cdef uint64_t *base
    cdef Py_ssize_t nslots
    cdef object _mm
    cdef void add(self, Py_ssize_t slot, int field, uint64_t n) noexcept nogil
    cdef void sub(self, Py_ssize_t slot, int field, uint64_t n) noexcept nogil
