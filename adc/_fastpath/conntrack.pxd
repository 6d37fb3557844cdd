from libc.stdint cimport uint8_t, uint16_t, int32_t, uint32_t, uint64_t
from libc.string cimport memcmp
from posix.time cimport timespec
from adc._fastpath.includes.socket cimport sockaddr_storage, sockaddr_in, sockaddr_in6, AF_INET6, ntohs
from adc._fastpath.includes.timerfd cimport clock_gettime, CLOCK_MONOTONIC
from adc._fastpath.counters cimport NFIELDS
from adc._fastpath.engine_types cimport Core, Conn

# the connection table: allocation, the timer wheel, the pipe pool, the UDP
# flow index, member choice and closing (conntrack.pyx)
cdef int32_t conn_alloc(Core *e) noexcept nogil
cdef void flush_pending(Core *e) noexcept nogil
cdef void wheel_insert(Core *e, int32_t ci, uint64_t deadline) noexcept nogil
cdef void wheel_remove(Core *e, int32_t ci) noexcept nogil
cdef void wheel_arm(Core *e, int32_t ci, uint32_t timeout_ms) noexcept nogil
cdef int pipe_get(Core *e, int *p) noexcept nogil
cdef void pipe_put(Core *e, int *p, uint32_t nbytes) noexcept nogil
cdef void close_conn(Core *e, int32_t ci) noexcept nogil
cdef void queue_push(Core *e, int32_t ci) noexcept nogil
cdef void queue_unlink(Core *e, int32_t ci) noexcept nogil
cdef int32_t pick(Core *e, Conn *c, int proto) noexcept nogil
cdef uint32_t flow_hash(Core *e, int32_t vi, const sockaddr_storage *ss) noexcept nogil
cdef int32_t flow_find(Core *e, int32_t vi, const sockaddr_storage *ss) noexcept nogil
cdef void flow_link(Core *e, int32_t ci) noexcept nogil
cdef void flow_unlink(Core *e, int32_t ci) noexcept nogil


cdef inline uint64_t mono_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)   # 0; vDSO
    return <uint64_t> ts.tv_sec * 1000 + <uint64_t> ts.tv_nsec // 1000000


cdef inline void cadd(Core *e, int32_t slot, int field, uint64_t n) noexcept nogil:
    """Add to a counter of the worker's shared region (read through, so a closed region is skipped)."""
    if e.cbase != NULL and e.cbase[0] != NULL and 0 <= slot < e.cslots[0]:
        e.cbase[0][slot * NFIELDS + field] += n


cdef inline void csub(Core *e, int32_t slot, int field, uint64_t n) noexcept nogil:
    cdef uint64_t *p
    if e.cbase != NULL and e.cbase[0] != NULL and 0 <= slot < e.cslots[0]:
        p = &e.cbase[0][slot * NFIELDS + field]
        p[0] = p[0] - n if p[0] >= n else 0


cdef inline int addr_ip(const sockaddr_storage *ss, const uint8_t **ip) noexcept nogil:
    """Length of the packed address (4 or 16) and a pointer to it."""
    if ss.ss_family == AF_INET6:
        ip[0] = <const uint8_t *> &(<sockaddr_in6 *> ss).sin6_addr
        return 16
    ip[0] = <const uint8_t *> &(<sockaddr_in *> ss).sin_addr
    return 4


cdef inline uint16_t addr_port(const sockaddr_storage *ss) noexcept nogil:
    if ss.ss_family == AF_INET6:
        return ntohs((<sockaddr_in6 *> ss).sin6_port)
    return ntohs((<sockaddr_in *> ss).sin_port)


cdef inline bint addr_eq(const sockaddr_storage *a, const sockaddr_storage *b) noexcept nogil:
    cdef const uint8_t *ia
    cdef const uint8_t *ib
    cdef int n
    if a.ss_family != b.ss_family or addr_port(a) != addr_port(b):
        return False
    n = addr_ip(a, &ia)
    addr_ip(b, &ib)
    return memcmp(ia, ib, n) == 0
