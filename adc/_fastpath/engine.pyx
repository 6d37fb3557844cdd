# cython: language_level=3
"""The L4 fast path: one epoll loop in C for TCP splicing and UDP flows of one worker.

Where it runs: the engine's epoll fd is registered in the worker's uvloop loop
(loop.add_reader(engine.fileno(), engine.run)), so L4 and L7 share one thread
and need no locks; `run` handles what is ready and returns without blocking
(docs/fastpath.md has the reasons and the numbers).

Everything per connection lives in C arrays: a Conn per TCP connection or UDP
flow, members, pools (with their C schedulers, adc._fastpath.sched) and VIPs
indexed by small ints that adc/l4/fast.py assigns. epoll data words carry
(index << 3 | tag), so an event finds its Conn without a lookup. A Conn freed
while handling a batch of events is reused only after the batch, so a stale
event for it is recognised (kind == K_FREE) and dropped.

TCP, per connection:
    accept4 -> pick a member -> non-blocking connect (timer: the pool's connect
    timeout) -> refused or timed out: pick another member, excluding those
    tried, up to `retries` times, then close the client -> established: send the
    PROXY header if the pool asks, then splice both ways through pipes from a
    pool (a pipe is held only while it has bytes in it, so an idle connection
    holds none). Sockets are edge-triggered for in and out from the start; the
    readiness flags remember what the kernel said until a call returns EAGAIN,
    so back-pressure needs no epoll_ctl: a full output stops reading its input
    until EPOLLOUT. One side's EOF becomes shutdown(SHUT_WR) on the other once
    its pipe is empty; the connection ends when both directions have ended, on
    an error, on the idle timeout, or by kill.

UDP, per flow (client address, VIP): a connected upstream socket to the
member; datagrams from the VIP socket are read with recvmmsg in batches and
sent on the flow's socket; replies are read in batches and sent back with
sendmmsg from the VIP socket (so they leave from the VIP's address). A flow
ends after its idle timeout, or after the first reply in one-shot mode.

Timers: one hashed wheel (4096 slots of `tick_ms`), driven by a timerfd in the
same epoll set. Activity only stamps last_ms; an entry whose deadline moved is
re-filed when its slot comes round, so a busy connection costs no wheel work.
"""
from libc.stdint cimport uint8_t, uint16_t, int32_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset, memcpy, memcmp
from libc.stdio cimport snprintf
from libc.errno cimport (errno, EAGAIN, EINTR, EINPROGRESS, ECONNABORTED, EMFILE, ENFILE,
                         ENOBUFS, ENOMEM, ECONNREFUSED)
from posix.time cimport timespec

from adc._fastpath.includes.epoll cimport (epoll_event, epoll_create1, epoll_ctl, epoll_wait, EPOLLIN,
                                           EPOLLOUT, EPOLLRDHUP, EPOLLERR, EPOLLHUP, EPOLLET,
                                           EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CLOEXEC)
from adc._fastpath.includes.socket cimport (sockaddr, sockaddr_storage, sockaddr_in, sockaddr_in6,
                                            socklen_t, iovec, msghdr, mmsghdr, socket, accept4, connect,
                                            getsockopt, setsockopt, shutdown, getsockname, send,
                                            recvmmsg, sendmmsg, inet_ntop, ntohs, htons, AF_INET, AF_INET6,
                                            SOCK_STREAM, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_CLOEXEC,
                                            SOL_SOCKET, SO_ERROR, SO_KEEPALIVE, SHUT_WR, MSG_NOSIGNAL,
                                            MSG_DONTWAIT, IPPROTO_TCP, IPPROTO_UDP, TCP_NODELAY)
from adc._fastpath.includes.splice cimport (splice, pipe2, close, read, fcntl, SPLICE_F_MOVE,
                                            SPLICE_F_NONBLOCK, F_SETPIPE_SZ, F_GETPIPE_SZ, O_NONBLOCK,
                                            O_CLOEXEC)
from adc._fastpath.includes.timerfd cimport (itimerspec, timerfd_create, timerfd_settime, TFD_NONBLOCK,
                                             TFD_CLOEXEC, CLOCK_MONOTONIC, clock_gettime)
from adc._fastpath.counters cimport (CounterRegion, CONN_TOTAL, CONN_ACTIVE, BYTES_IN, BYTES_OUT,
                                     ERRORS, REFUSED, TIMEOUTS, NFIELDS)
from adc._fastpath.engine_types cimport (K_FREE, K_TCP, K_UDP, ST_CONNECTING, ST_ESTABLISHED, EMember,
                                         EPool, EVip, Conn)
from adc._fastpath.sched cimport (Sched, sched_init, sched_free, sched_build, sched_pick, algo_code,
                                  ALG_SOURCE_HASH, ALG_MAGLEV)
from adc._fastpath.maglev cimport xxh3_64, MAX_KEY

cdef enum:
    TAG_CLIENT = 0
    TAG_SERVER = 1
    TAG_LISTEN = 2
    TAG_TIMER = 3
    TAG_UDP_UP = 4
    TAG_UDP_VIP = 5
    NEV = 256                 # events per epoll_wait
    ACCEPT_BATCH = 64         # accepts per listener event: fairness with established traffic
    WHEEL = 4096
    WHEEL_MASK = 4095
    UDP_BATCH = 32
    UDP_BUF = 65536           # the largest datagram (65,507 bytes of IPv4 payload) fits
    MAX_MEMBERS = 65536
    MAX_POOLS = 4096
    MAX_VIPS = 1024

cdef uint8_t PP2_SIG[12]
_SIG = bytearray(b"\r\n\r\n\x00\r\nQUIT\n")
for _i in range(12):
    PP2_SIG[_i] = _SIG[_i]


cdef inline uint64_t mono_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)   # 0; vDSO
    return <uint64_t> ts.tv_sec * 1000 + <uint64_t> ts.tv_nsec // 1000000


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


cdef class Engine:
    """One worker's L4 data path. All methods run on the loop's thread."""
    cdef int ep, tfd
    cdef Conn *conns
    cdef int32_t cap, hwm, nfree, npending
    cdef int32_t *freelist
    cdef int32_t *pending
    cdef EMember *members
    cdef EPool *pools
    cdef EVip *vips
    cdef int32_t wheel[WHEEL]
    cdef uint64_t now, tick
    cdef uint32_t tick_ms
    cdef uint64_t next_id
    cdef int *pipes
    cdef int32_t npipes, pipecap
    cdef uint32_t pipe_bytes
    cdef CounterRegion counters   # kept alive for the two pointers below
    cdef uint64_t **cbase         # &counters.base: read at each add, so a closed region (NULL) costs nothing
    cdef Py_ssize_t *cslots       # &counters.nslots
    cdef epoll_event evs[NEV]
    cdef int32_t *buckets
    cdef uint32_t bmask
    cdef mmsghdr *msgs
    cdef iovec *iovs
    cdef char *bufs
    cdef sockaddr_storage *names
    cdef uint64_t nflows
    cdef int _pipe_size_req

    def __cinit__(self, CounterRegion counters=None, int capacity=65536, int tick_ms=100,
                  int pipe_size=0, int pipe_pool=1024):
        cdef int i
        cdef epoll_event ev
        cdef itimerspec its
        self.ep = -1
        self.tfd = -1
        self.cap = capacity
        self.tick_ms = tick_ms
        self.conns = <Conn *> calloc(capacity, sizeof(Conn))      # untouched pages cost no memory
        self.freelist = <int32_t *> malloc(capacity * sizeof(int32_t))
        self.pending = <int32_t *> malloc(capacity * sizeof(int32_t))
        self.members = <EMember *> calloc(MAX_MEMBERS, sizeof(EMember))
        self.pools = <EPool *> calloc(MAX_POOLS, sizeof(EPool))
        self.vips = <EVip *> calloc(MAX_VIPS, sizeof(EVip))
        self.pipecap = pipe_pool
        self.pipes = <int *> malloc(2 * pipe_pool * sizeof(int))
        self.bmask = 1
        while self.bmask < <uint32_t> capacity:
            self.bmask <<= 1
        self.buckets = <int32_t *> malloc(self.bmask * sizeof(int32_t))
        self.bmask -= 1
        self.msgs = <mmsghdr *> calloc(UDP_BATCH, sizeof(mmsghdr))
        self.iovs = <iovec *> calloc(UDP_BATCH, sizeof(iovec))
        self.names = <sockaddr_storage *> calloc(UDP_BATCH, sizeof(sockaddr_storage))
        self.bufs = <char *> malloc(UDP_BATCH * UDP_BUF)
        if (self.conns == NULL or self.freelist == NULL or self.pending == NULL or self.members == NULL
                or self.pools == NULL or self.vips == NULL or self.pipes == NULL or self.buckets == NULL
                or self.msgs == NULL or self.iovs == NULL or self.names == NULL or self.bufs == NULL):
            raise MemoryError()
        for i in range(self.bmask + 1):
            self.buckets[i] = -1
        for i in range(WHEEL):
            self.wheel[i] = -1
        self.pipe_bytes = pipe_size if pipe_size > 0 else 65536
        self._pipe_size_req = pipe_size
        self.counters = counters
        if counters is not None:
            self.cbase = &counters.base
            self.cslots = &counters.nslots
        self.now = mono_ms()
        self.tick = self.now // tick_ms
        self.ep = epoll_create1(EPOLL_CLOEXEC)
        if self.ep < 0:
            raise OSError(errno, "epoll_create1")
        self.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if self.tfd < 0:
            raise OSError(errno, "timerfd_create")
        its.it_interval.tv_sec = tick_ms // 1000
        its.it_interval.tv_nsec = (tick_ms % 1000) * 1000000
        its.it_value = its.it_interval
        timerfd_settime(self.tfd, 0, &its, NULL)
        ev.events = EPOLLIN
        ev.data.u64 = TAG_TIMER
        epoll_ctl(self.ep, EPOLL_CTL_ADD, self.tfd, &ev)

    def __dealloc__(self):
        self._close_all_fds()
        free(self.conns); free(self.freelist); free(self.pending); free(self.members)
        free(self.pipes); free(self.buckets); free(self.msgs); free(self.iovs)
        free(self.names); free(self.bufs); free(self.vips)
        if self.pools != NULL:
            for i in range(MAX_POOLS):
                if self.pools[i].used:
                    self._pool_free(i)
            free(self.pools)

    # ---- counters ------------------------------------------------------------------------

    cdef inline void cadd(self, int32_t slot, int field, uint64_t n) noexcept nogil:
        if self.cbase != NULL and self.cbase[0] != NULL and 0 <= slot < self.cslots[0]:
            self.cbase[0][slot * NFIELDS + field] += n

    cdef inline void csub(self, int32_t slot, int field, uint64_t n) noexcept nogil:
        cdef uint64_t *p
        if self.cbase != NULL and self.cbase[0] != NULL and 0 <= slot < self.cslots[0]:
            p = &self.cbase[0][slot * NFIELDS + field]
            p[0] = p[0] - n if p[0] >= n else 0

    # ---- conn table, timer wheel, pipes ------------------------------------------------------

    cdef int32_t conn_alloc(self) noexcept nogil:
        cdef int32_t ci
        cdef Conn *c
        if self.nfree > 0:
            self.nfree -= 1
            ci = self.freelist[self.nfree]
        elif self.hwm < self.cap:
            ci = self.hwm
            self.hwm += 1
        else:
            return -1
        c = &self.conns[ci]
        memset(c, 0, sizeof(Conn))
        c.cfd = -1
        c.sfd = -1
        c.pcs[0] = c.pcs[1] = c.psc[0] = c.psc[1] = -1
        c.mid = -1
        c.tw_slot = -1
        c.hnext = -1
        self.next_id += 1
        c.id = self.next_id
        c.start_ms = self.now
        c.last_ms = self.now
        return ci

    cdef void flush_pending(self) noexcept nogil:
        cdef int32_t i
        for i in range(self.npending):
            self.freelist[self.nfree] = self.pending[i]
            self.nfree += 1
        self.npending = 0

    cdef void wheel_insert(self, int32_t ci, uint64_t deadline) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        cdef uint64_t t = deadline // self.tick_ms
        cdef int32_t s
        if t <= self.tick:
            t = self.tick + 1
        s = <int32_t> (t & WHEEL_MASK)
        c.tw_slot = s
        c.tw_prev = -1
        c.tw_next = self.wheel[s]
        if c.tw_next >= 0:
            self.conns[c.tw_next].tw_prev = ci
        self.wheel[s] = ci

    cdef void wheel_remove(self, int32_t ci) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        if c.tw_slot < 0:
            return
        if c.tw_prev >= 0:
            self.conns[c.tw_prev].tw_next = c.tw_next
        else:
            self.wheel[c.tw_slot] = c.tw_next
        if c.tw_next >= 0:
            self.conns[c.tw_next].tw_prev = c.tw_prev
        c.tw_slot = -1

    cdef void wheel_arm(self, int32_t ci, uint32_t timeout_ms) noexcept nogil:
        """(Re)start the connection's timer: it fires timeout_ms after its last activity."""
        cdef Conn *c = &self.conns[ci]
        c.timeout_ms = timeout_ms
        c.last_ms = self.now
        if timeout_ms == 0:
            self.wheel_remove(ci)
        elif c.tw_slot < 0:
            self.wheel_insert(ci, self.now + timeout_ms)
        # already filed earlier than the new deadline: it is re-filed when its slot comes round

    cdef void wheel_advance(self) noexcept nogil:
        cdef uint64_t cur = self.now // self.tick_ms
        cdef int32_t ci, nxt, s
        cdef Conn *c
        cdef uint64_t dl
        if cur > self.tick + WHEEL:
            self.tick = cur - WHEEL
        while self.tick < cur:
            self.tick += 1
            s = <int32_t> (self.tick & WHEEL_MASK)
            ci = self.wheel[s]
            self.wheel[s] = -1
            while ci >= 0:
                c = &self.conns[ci]
                nxt = c.tw_next
                c.tw_slot = -1
                if c.kind != K_FREE and c.timeout_ms:
                    dl = c.last_ms + c.timeout_ms
                    if dl <= self.now:
                        self.expire(ci)
                    else:
                        self.wheel_insert(ci, dl)
                ci = nxt

    cdef int pipe_get(self, int *p) noexcept nogil:
        if self.npipes > 0:
            self.npipes -= 1
            p[0] = self.pipes[2 * self.npipes]
            p[1] = self.pipes[2 * self.npipes + 1]
            return 0
        if pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0:      # EMFILE/ENFILE
            p[0] = p[1] = -1
            return -1
        if self._pipe_size_req > 0:
            fcntl(p[0], F_SETPIPE_SZ, self._pipe_size_req)   # EPERM above pipe-max-size: keep the default
        return 0

    cdef void pipe_put(self, int *p, uint32_t nbytes) noexcept nogil:
        if p[0] < 0:
            return
        if nbytes == 0 and self.npipes < self.pipecap:
            self.pipes[2 * self.npipes] = p[0]
            self.pipes[2 * self.npipes + 1] = p[1]
            self.npipes += 1
        else:
            close(p[0])    # bytes still inside: the pipe goes with them
            close(p[1])
        p[0] = p[1] = -1

    # ---- closing ------------------------------------------------------------------------------

    cdef void close_conn(self, int32_t ci) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        cdef EVip *v
        cdef EMember *m
        if c.kind == K_FREE:
            return
        self.wheel_remove(ci)
        if c.kind == K_UDP:
            self.flow_unlink(ci)
        if c.cfd >= 0 and c.kind == K_TCP:
            close(c.cfd)
        if c.sfd >= 0:
            close(c.sfd)
        c.cfd = c.sfd = -1
        self.pipe_put(c.pcs, c.ncs)
        self.pipe_put(c.psc, c.nsc)
        v = &self.vips[c.vip]
        if v.active > 0:
            v.active -= 1
        self.csub(v.slot, CONN_ACTIVE, 1)
        if c.mid >= 0:
            m = &self.members[c.mid]
            if m.active > 0:
                m.active -= 1
            if c.counted:
                self.csub(m.slot, CONN_ACTIVE, 1)
        c.kind = K_FREE
        self.pending[self.npending] = ci
        self.npending += 1

    cdef void expire(self, int32_t ci) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        if c.kind == K_UDP:
            self.close_conn(ci)           # an idle flow ending is the normal end of UDP
            return
        if c.state == ST_CONNECTING:
            self.cadd(self.members[c.mid].slot, TIMEOUTS, 1)
            self.connect_failed(ci)
            return
        self.cadd(self.vips[c.vip].slot, TIMEOUTS, 1)
        self.close_conn(ci)

    # ---- choosing a member ---------------------------------------------------------------------

    cdef int32_t pick(self, Conn *c, int proto) noexcept nogil:
        """Engine member id for a new flow (primaries, then backups), excluding those tried; -1: none."""
        cdef EPool *p = &self.pools[c.pool]
        cdef uint8_t key[48]
        cdef size_t klen = 0
        cdef const uint8_t *ip
        cdef int n, i, k, nex
        cdef int32_t ex[8]
        cdef sockaddr_storage loc
        cdef socklen_t ll = sizeof(sockaddr_storage)
        cdef uint16_t port
        cdef int r
        if not p.used:
            return -1
        if p.prim.algo == ALG_SOURCE_HASH or p.prim.algo == ALG_MAGLEV:
            if p.five_tuple:
                key[0] = proto
                n = addr_ip(&c.client, &ip)
                memcpy(&key[1], ip, n)
                port = addr_port(&c.client)
                key[1 + n] = port >> 8
                key[2 + n] = port & 255
                klen = 3 + n
                if c.kind == K_TCP:
                    getsockname(c.cfd, <sockaddr *> &loc, &ll)    # the VIP address the client reached
                else:
                    getsockname(self.vips[c.vip].fd, <sockaddr *> &loc, &ll)
                n = addr_ip(&loc, &ip)
                memcpy(&key[klen], ip, n)
                port = addr_port(&loc)
                key[klen + n] = port >> 8
                key[klen + n + 1] = port & 255
                klen += n + 2
            else:
                n = addr_ip(&c.client, &ip)
                memcpy(key, ip, n)
                klen = n
        nex = 0
        for i in range(p.prim.n):
            for k in range(c.ntried):
                if c.tried[k] == p.pmid[i] and nex < 8:
                    ex[nex] = i
                    nex += 1
        r = sched_pick(&p.prim, key if klen else NULL, klen, ex, nex)
        if r >= 0:
            return p.pmid[r]
        if p.back.n == 0:
            return -1
        nex = 0
        for i in range(p.back.n):
            for k in range(c.ntried):
                if c.tried[k] == p.bmid[i] and nex < 8:
                    ex[nex] = i
                    nex += 1
        r = sched_pick(&p.back, key if klen else NULL, klen, ex, nex)
        return p.bmid[r] if r >= 0 else -1

    # ---- TCP -----------------------------------------------------------------------------------

    cdef void on_listen(self, int32_t vi) noexcept nogil:
        cdef EVip *v = &self.vips[vi]
        cdef sockaddr_storage ss
        cdef socklen_t sl
        cdef int fd, k, one = 1
        cdef int32_t ci
        cdef Conn *c
        cdef epoll_event ev
        for k in range(ACCEPT_BATCH):
            if not v.accepting:
                return
            sl = sizeof(sockaddr_storage)
            fd = accept4(v.fd, <sockaddr *> &ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC)
            if fd < 0:
                if errno == EINTR or errno == ECONNABORTED:
                    continue
                if errno == EMFILE or errno == ENFILE or errno == ENOBUFS or errno == ENOMEM:
                    # out of fds: leave the clients in the accept queue for a while instead of spinning
                    self.cadd(v.slot, ERRORS, 1)
                    epoll_ctl(self.ep, EPOLL_CTL_DEL, v.fd, NULL)
                    v.paused_until = self.now + 250
                return
            if ((v.max_conn and v.active >= v.max_conn) or v.pool < 0
                    or not self.pools[v.pool].used):
                close(fd)
                self.cadd(v.slot, REFUSED, 1)
                continue
            ci = self.conn_alloc()
            if ci < 0:
                close(fd)
                self.cadd(v.slot, REFUSED, 1)
                continue
            c = &self.conns[ci]
            c.kind = K_TCP
            c.cfd = fd
            c.vip = vi
            c.pool = v.pool
            memcpy(&c.client, &ss, sizeof(sockaddr_storage))
            c.clientlen = sl
            v.active += 1
            self.cadd(v.slot, CONN_TOTAL, 1)
            self.cadd(v.slot, CONN_ACTIVE, 1)
            if v.nodelay:
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int))
            if v.keepalive:
                setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(int))
            ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
            ev.data.u64 = (<uint64_t> ci << 3) | TAG_CLIENT
            if epoll_ctl(self.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
                self.cadd(v.slot, ERRORS, 1)
                self.close_conn(ci)
                continue
            self.connect_next(ci)

    cdef void connect_next(self, int32_t ci) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        cdef EPool *p = &self.pools[c.pool]
        cdef EMember *m
        cdef int32_t mid
        cdef int fd, one = 1
        cdef epoll_event ev
        while True:
            if not p.used or c.ntried > p.retries or c.ntried >= 8:
                break
            mid = self.pick(c, IPPROTO_TCP)
            if mid < 0:
                break
            m = &self.members[mid]
            c.tried[c.ntried] = mid
            c.ntried += 1
            fd = socket(m.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
            if fd < 0:
                self.cadd(self.vips[c.vip].slot, ERRORS, 1)
                break
            if self.vips[c.vip].nodelay:
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int))
            if connect(fd, <sockaddr *> &m.addr, m.addrlen) == 0 or errno == EINPROGRESS:
                ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
                ev.data.u64 = (<uint64_t> ci << 3) | TAG_SERVER
                if epoll_ctl(self.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
                    close(fd)
                    break
                c.sfd = fd
                c.mid = mid
                c.state = ST_CONNECTING
                c.s_rd = c.s_wr = 0
                m.active += 1
                self.wheel_arm(ci, p.connect_ms)
                return
            close(fd)                                   # refused at once (ECONNREFUSED, ENETUNREACH)
            self.cadd(m.slot, ERRORS, 1)
        self.cadd(self.vips[c.vip].slot, REFUSED, 1)
        if p.used:
            self.cadd(p.slot, REFUSED, 1)
        self.close_conn(ci)

    cdef void connect_failed(self, int32_t ci) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        cdef EMember *m = &self.members[c.mid]
        close(c.sfd)
        c.sfd = -1
        if m.active > 0:
            m.active -= 1
        c.mid = -1
        self.connect_next(ci)

    cdef void on_connected(self, int32_t ci, uint32_t events) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        cdef int err = 0
        cdef socklen_t el = sizeof(int)
        cdef EMember *m
        cdef EPool *p
        cdef char hdr[232]
        cdef int hl
        if not (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)):
            return
        getsockopt(c.sfd, SOL_SOCKET, SO_ERROR, &err, &el)
        if err != 0:
            self.cadd(self.members[c.mid].slot, ERRORS, 1)
            self.connect_failed(ci)
            return
        m = &self.members[c.mid]
        p = &self.pools[c.pool]
        c.state = ST_ESTABLISHED
        c.counted = 1
        self.cadd(m.slot, CONN_TOTAL, 1)
        self.cadd(m.slot, CONN_ACTIVE, 1)
        if p.used:
            self.cadd(p.slot, CONN_TOTAL, 1)
        if p.used and p.proxy:
            hl = self.proxy_header(c, p.proxy, hdr)
            # a fresh connection's send buffer always takes the header whole
            if hl <= 0 or send(c.sfd, hdr, hl, MSG_NOSIGNAL | MSG_DONTWAIT) != hl:
                self.cadd(m.slot, ERRORS, 1)
                self.close_conn(ci)
                return
        self.wheel_arm(ci, self.vips[c.vip].idle_ms)
        c.s_wr = 1
        c.s_rd = 1          # the member may have spoken first; its edge came with the connect event
        c.c_rd = 1          # bytes the client sent while we connected; its edge is already consumed
        self.pump(ci)

    cdef int proxy_header(self, Conn *c, int version, char *buf) noexcept nogil:
        cdef sockaddr_storage loc
        cdef socklen_t ll = sizeof(sockaddr_storage)
        cdef char sa[64]
        cdef char da[64]
        cdef const uint8_t *sip
        cdef const uint8_t *dip
        cdef int n, v6
        cdef uint16_t sp, dp
        if getsockname(c.cfd, <sockaddr *> &loc, &ll) < 0:
            return -1
        v6 = c.client.ss_family == AF_INET6
        n = addr_ip(&c.client, &sip)
        addr_ip(&loc, &dip)
        sp = addr_port(&c.client)
        dp = addr_port(&loc)
        if version == 1:
            inet_ntop(c.client.ss_family, sip, sa, 64)
            inet_ntop(loc.ss_family, dip, da, 64)
            return snprintf(buf, 232, "PROXY %s %s %s %u %u\r\n", "TCP6" if v6 else "TCP4",
                            sa, da, sp, dp)
        memcpy(buf, PP2_SIG, 12)
        buf[12] = 0x21                     # version 2, command PROXY
        buf[13] = 0x21 if v6 else 0x11     # AF_INET6 / AF_INET, STREAM
        buf[14] = 0
        buf[15] = 2 * n + 4
        memcpy(&buf[16], sip, n)
        memcpy(&buf[16 + n], dip, n)
        buf[16 + 2 * n] = sp >> 8
        buf[17 + 2 * n] = sp & 255
        buf[18 + 2 * n] = dp >> 8
        buf[19 + 2 * n] = dp & 255
        return 20 + 2 * n

    cdef int64_t move(self, int src, int dst, int *pipe, uint32_t *inpipe, uint8_t *src_rd,
                      uint8_t *dst_wr, uint8_t *src_eof, uint8_t *dst_shut) noexcept nogil:
        """Splice src -> pipe -> dst until both sides would block. Bytes delivered to dst, or -1 (close)."""
        cdef int64_t moved = 0
        cdef ssize_t n
        cdef bint progress = True
        while progress:
            progress = False
            if not src_eof[0] and src_rd[0] and inpipe[0] < self.pipe_bytes:
                if pipe[0] < 0 and self.pipe_get(pipe) < 0:
                    return -1
                n = splice(src, NULL, pipe[1], NULL, self.pipe_bytes - inpipe[0],
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                if n > 0:
                    inpipe[0] += n
                    progress = True
                elif n == 0:
                    src_eof[0] = 1          # peer's FIN
                    progress = True
                elif errno == EAGAIN:
                    # with bytes in the pipe EAGAIN may mean "pipe full": keep src_rd, retry after draining
                    if inpipe[0] == 0:
                        src_rd[0] = 0
                elif errno == EINTR:
                    progress = True
                else:
                    return -1               # ECONNRESET and friends
            if inpipe[0] > 0 and dst_wr[0]:
                n = splice(pipe[0], NULL, dst, NULL, inpipe[0], SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                if n > 0:
                    inpipe[0] -= n
                    moved += n
                    progress = True
                elif n < 0 and errno == EAGAIN:
                    dst_wr[0] = 0           # back-pressure: wait for EPOLLOUT on dst
                elif n < 0 and errno == EINTR:
                    progress = True
                else:
                    return -1               # EPIPE/ECONNRESET: dst's peer is gone
        if inpipe[0] == 0 and pipe[0] >= 0:
            self.pipe_put(pipe, 0)
        if src_eof[0] and inpipe[0] == 0 and not dst_shut[0]:
            shutdown(dst, SHUT_WR)          # carry the half-close across; ENOTCONN: already gone
            dst_shut[0] = 1
        return moved

    cdef void pump(self, int32_t ci) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        cdef int64_t n
        cdef int32_t vs = self.vips[c.vip].slot
        cdef int32_t ms = self.members[c.mid].slot
        n = self.move(c.cfd, c.sfd, c.pcs, &c.ncs, &c.c_rd, &c.s_wr, &c.c_eof, &c.s_shut)
        if n < 0:
            self.close_conn(ci)
            return
        if n:
            c.bytes_in += n
            self.cadd(vs, BYTES_IN, n)
            self.cadd(ms, BYTES_IN, n)
        n = self.move(c.sfd, c.cfd, c.psc, &c.nsc, &c.s_rd, &c.c_wr, &c.s_eof, &c.c_shut)
        if n < 0:
            self.close_conn(ci)
            return
        if n:
            c.bytes_out += n
            self.cadd(vs, BYTES_OUT, n)
            self.cadd(ms, BYTES_OUT, n)
        c.last_ms = self.now
        if c.s_shut and c.c_shut:
            self.close_conn(ci)             # both directions ended

    cdef void on_tcp(self, int32_t ci, int tag, uint32_t events) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        if c.kind != K_TCP:
            return                          # freed earlier in this batch
        if tag == TAG_CLIENT:
            if events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR):
                c.c_rd = 1
            if events & (EPOLLOUT | EPOLLHUP | EPOLLERR):
                c.c_wr = 1
            if c.state == ST_CONNECTING:
                if events & (EPOLLHUP | EPOLLERR):
                    self.close_conn(ci)     # the client gave up while we connected
                return
        else:
            if c.state == ST_CONNECTING:
                self.on_connected(ci, events)
                return
            if events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR):
                c.s_rd = 1
            if events & (EPOLLOUT | EPOLLHUP | EPOLLERR):
                c.s_wr = 1
        self.pump(ci)

    # ---- UDP -----------------------------------------------------------------------------------

    cdef uint32_t flow_hash(self, int32_t vi, const sockaddr_storage *ss) noexcept nogil:
        cdef uint8_t k[24]
        cdef const uint8_t *ip
        cdef int n = addr_ip(ss, &ip)
        cdef uint16_t port = addr_port(ss)
        memcpy(k, &vi, 4)
        k[4] = port >> 8
        k[5] = port & 255
        memcpy(&k[6], ip, n)
        return <uint32_t> xxh3_64(k, 6 + n, 0) & self.bmask

    cdef int32_t flow_find(self, int32_t vi, const sockaddr_storage *ss) noexcept nogil:
        cdef int32_t ci = self.buckets[self.flow_hash(vi, ss)]
        while ci >= 0:
            if self.conns[ci].vip == vi and addr_eq(&self.conns[ci].client, ss):
                return ci
            ci = self.conns[ci].hnext
        return -1

    cdef void flow_unlink(self, int32_t ci) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        cdef int32_t *pp = &self.buckets[c.hbucket]
        while pp[0] >= 0:
            if pp[0] == ci:
                pp[0] = c.hnext
                break
            pp = &self.conns[pp[0]].hnext
        c.hnext = -1

    cdef int32_t flow_new(self, int32_t vi, const sockaddr_storage *ss, socklen_t sl) noexcept nogil:
        cdef EVip *v = &self.vips[vi]
        cdef int32_t ci, mid
        cdef Conn *c
        cdef EMember *m
        cdef int fd
        cdef epoll_event ev
        if (v.max_conn and v.active >= v.max_conn) or v.pool < 0 or not self.pools[v.pool].used:
            self.cadd(v.slot, REFUSED, 1)
            return -1
        ci = self.conn_alloc()
        if ci < 0:
            self.cadd(v.slot, REFUSED, 1)
            return -1
        c = &self.conns[ci]
        c.kind = K_UDP
        c.vip = vi
        c.pool = v.pool
        memcpy(&c.client, ss, sizeof(sockaddr_storage))
        c.clientlen = sl
        while True:
            mid = self.pick(c, IPPROTO_UDP)
            if mid < 0:
                break
            m = &self.members[mid]
            if c.ntried < 8:
                c.tried[c.ntried] = mid
                c.ntried += 1
            fd = socket(m.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
            if fd < 0:
                break
            if connect(fd, <sockaddr *> &m.addr, m.addrlen) == 0:   # UDP: no handshake, fails only locally
                ev.events = EPOLLIN
                ev.data.u64 = (<uint64_t> ci << 3) | TAG_UDP_UP
                if epoll_ctl(self.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
                    close(fd)
                    break
                c.sfd = fd
                c.mid = mid
                c.state = ST_ESTABLISHED
                c.counted = 1
                m.active += 1
                v.active += 1
                self.nflows += 1
                c.hbucket = self.flow_hash(vi, ss)
                c.hnext = self.buckets[c.hbucket]
                self.buckets[c.hbucket] = ci
                self.cadd(v.slot, CONN_TOTAL, 1)
                self.cadd(v.slot, CONN_ACTIVE, 1)
                self.cadd(m.slot, CONN_TOTAL, 1)
                self.cadd(m.slot, CONN_ACTIVE, 1)
                self.wheel_arm(ci, v.idle_ms)
                return ci
            close(fd)
            self.cadd(m.slot, ERRORS, 1)
            if c.ntried >= 8:
                break
        self.cadd(v.slot, REFUSED, 1)
        c.kind = K_FREE
        self.pending[self.npending] = ci
        self.npending += 1
        return -1

    cdef void udp_prepare(self, int with_names) noexcept nogil:
        cdef int i
        for i in range(UDP_BATCH):
            self.iovs[i].iov_base = self.bufs + i * UDP_BUF
            self.iovs[i].iov_len = UDP_BUF
            self.msgs[i].msg_hdr.msg_iov = &self.iovs[i]
            self.msgs[i].msg_hdr.msg_iovlen = 1
            self.msgs[i].msg_hdr.msg_control = NULL
            self.msgs[i].msg_hdr.msg_controllen = 0
            self.msgs[i].msg_hdr.msg_flags = 0
            if with_names:
                self.msgs[i].msg_hdr.msg_name = &self.names[i]
                self.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
            else:
                self.msgs[i].msg_hdr.msg_name = NULL
                self.msgs[i].msg_hdr.msg_namelen = 0

    cdef void on_udp_vip(self, int32_t vi) noexcept nogil:
        cdef EVip *v = &self.vips[vi]
        cdef int n, i, b
        cdef int32_t ci
        cdef Conn *c
        cdef ssize_t r
        cdef unsigned int ln
        for b in range(4):
            self.udp_prepare(1)
            n = recvmmsg(v.fd, self.msgs, UDP_BATCH, MSG_DONTWAIT, NULL)
            if n <= 0:
                return
            for i in range(n):
                ci = self.flow_find(vi, &self.names[i])
                if ci < 0:
                    ci = self.flow_new(vi, &self.names[i], self.msgs[i].msg_hdr.msg_namelen)
                    if ci < 0:
                        continue
                c = &self.conns[ci]
                ln = self.msgs[i].msg_len
                r = send(c.sfd, self.bufs + i * UDP_BUF, ln, MSG_DONTWAIT)
                if r < 0:
                    self.cadd(self.members[c.mid].slot, ERRORS, 1)   # ECONNREFUSED (ICMP) or buffer full
                    continue
                c.bytes_in += ln
                c.last_ms = self.now
                self.cadd(v.slot, BYTES_IN, ln)
                self.cadd(self.members[c.mid].slot, BYTES_IN, ln)
            if n < UDP_BATCH:
                return

    cdef void on_udp_up(self, int32_t ci) noexcept nogil:
        cdef Conn *c = &self.conns[ci]
        cdef EVip *v
        cdef int n, i, b, s, done
        cdef uint64_t total
        if c.kind != K_UDP:
            return
        v = &self.vips[c.vip]
        for b in range(4):
            self.udp_prepare(0)
            n = recvmmsg(c.sfd, self.msgs, UDP_BATCH, MSG_DONTWAIT, NULL)
            if n < 0:
                if errno == ECONNREFUSED:   # the member's port is closed (ICMP)
                    self.cadd(self.members[c.mid].slot, ERRORS, 1)
                    if v.one_shot:
                        self.close_conn(ci)
                return
            if n == 0:
                return
            total = 0
            for i in range(n):
                self.iovs[i].iov_len = self.msgs[i].msg_len
                self.msgs[i].msg_hdr.msg_name = &c.client
                self.msgs[i].msg_hdr.msg_namelen = c.clientlen
                total += self.msgs[i].msg_len
            done = 0
            while done < n:
                s = sendmmsg(v.fd, &self.msgs[done], n - done, MSG_DONTWAIT)
                if s <= 0:
                    if s < 0 and errno == EINTR:
                        continue
                    self.cadd(v.slot, ERRORS, n - done)   # VIP socket buffer full: UDP drops
                    break
                done += s
            c.bytes_out += total
            c.last_ms = self.now
            self.cadd(v.slot, BYTES_OUT, total)
            self.cadd(self.members[c.mid].slot, BYTES_OUT, total)
            if v.one_shot:
                self.close_conn(ci)         # DNS-style: the reply ends the flow
                return
            if n < UDP_BATCH:
                return

    # ---- the loop ----------------------------------------------------------------------------

    cdef void on_timer(self) noexcept nogil:
        cdef uint64_t exp
        cdef int32_t vi
        cdef epoll_event ev
        read(self.tfd, &exp, 8)             # EAGAIN: spurious wakeup; harmless
        self.now = mono_ms()
        self.wheel_advance()
        for vi in range(MAX_VIPS):
            if self.vips[vi].used and self.vips[vi].paused_until and self.vips[vi].paused_until <= self.now:
                self.vips[vi].paused_until = 0
                if self.vips[vi].accepting:
                    ev.events = EPOLLIN
                    ev.data.u64 = (<uint64_t> vi << 3) | TAG_LISTEN
                    epoll_ctl(self.ep, EPOLL_CTL_ADD, self.vips[vi].fd, &ev)

    cdef int loop_once(self, int timeout) noexcept nogil:
        cdef int n, i, it, total = 0, tag
        cdef uint64_t u
        cdef int32_t idx
        for it in range(8):
            n = epoll_wait(self.ep, self.evs, NEV, timeout if it == 0 else 0)
            if n <= 0:
                break
            self.now = mono_ms()
            for i in range(n):
                u = self.evs[i].data.u64
                tag = <int> (u & 7)
                idx = <int32_t> (u >> 3)
                if tag <= TAG_SERVER:
                    self.on_tcp(idx, tag, self.evs[i].events)
                elif tag == TAG_LISTEN:
                    if self.vips[idx].used:
                        self.on_listen(idx)
                elif tag == TAG_UDP_UP:
                    self.on_udp_up(idx)
                elif tag == TAG_UDP_VIP:
                    if self.vips[idx].used:
                        self.on_udp_vip(idx)
                else:
                    self.on_timer()
            self.flush_pending()
            total += n
            if n < NEV:
                break
        return total

    def run(self):
        """Handle every ready event without blocking (the loop's reader callback). Returns the event count."""
        cdef int n
        with nogil:
            n = self.loop_once(0)
        return n

    def wait(self, int timeout_ms):
        """Block up to timeout_ms for events, then handle them (tools and tests without a loop)."""
        cdef int n
        with nogil:
            n = self.loop_once(timeout_ms)
        return n

    def fileno(self):
        return self.ep

    # ---- configuration (Python side, on the loop's thread) ------------------------------------

    def set_member(self, int mid, int family, bytes packed, int port, int slot):
        """Member `mid`'s address (socket.AF_INET/AF_INET6, inet_pton bytes, port) and counter slot."""
        cdef EMember *m
        if not 0 <= mid < MAX_MEMBERS:
            raise ValueError("member id out of range")
        m = &self.members[mid]
        memset(&m.addr, 0, sizeof(sockaddr_storage))
        if family == AF_INET6:
            (<sockaddr_in6 *> &m.addr).sin6_family = AF_INET6
            (<sockaddr_in6 *> &m.addr).sin6_port = htons(port)
            memcpy(&(<sockaddr_in6 *> &m.addr).sin6_addr, <char *> packed, 16)
            m.addrlen = sizeof(sockaddr_in6)
        else:
            (<sockaddr_in *> &m.addr).sin_family = AF_INET
            (<sockaddr_in *> &m.addr).sin_port = htons(port)
            memcpy(&(<sockaddr_in *> &m.addr).sin_addr, <char *> packed, 4)
            m.addrlen = sizeof(sockaddr_in)
        m.slot = slot
        m.used = 1

    def member_active(self, int mid):
        return self.members[mid].active if 0 <= mid < MAX_MEMBERS else 0

    cdef void _pool_free(self, int pid):
        cdef EPool *p = &self.pools[pid]
        sched_free(&p.prim)
        sched_free(&p.back)
        free(p.pmid)
        free(p.bmid)
        p.pmid = p.bmid = NULL
        p.used = 0

    def remove_pool(self, int pid):
        if 0 <= pid < MAX_POOLS and self.pools[pid].used:
            self._pool_free(pid)

    def set_pool(self, int pid, str algorithm, list members, bint five_tuple=False, int proxy=0,
                 double connect_timeout=3.0, int retries=2, int slot=0):
        """Replace pool `pid`. members: [(mid, weight, max_conn or 0, eligible, backup, key str)].

        eligible: may take new flows (admin enabled and health up); drained members
        are not eligible but their open flows continue. Called on every apply and
        on every member state change.
        """
        cdef EPool *p
        cdef int algo = algo_code(algorithm)
        cdef int i, j, nb, np_
        cdef const uint8_t **keys
        cdef size_t *lens
        cdef Sched *s
        cdef int32_t *ids
        if not 0 <= pid < MAX_POOLS:
            raise ValueError("pool id out of range")
        for mm in members:
            if not 0 <= mm[0] < MAX_MEMBERS or not self.members[mm[0]].used:
                raise ValueError(f"member id {mm[0]} has no address")
        p = &self.pools[pid]
        if p.used:
            self._pool_free(pid)
        prim = [mm for mm in members if not mm[4]]
        back = [mm for mm in members if mm[4]]
        self._fill(&p.prim, &p.pmid, algo, prim)
        self._fill(&p.back, &p.bmid, algo, back)
        p.five_tuple = five_tuple
        p.proxy = proxy
        p.retries = retries if 0 <= retries <= 7 else 7
        p.connect_ms = <uint32_t> (connect_timeout * 1000) if connect_timeout > 0 else 3000
        p.slot = slot
        p.used = 1

    cdef _fill(self, Sched *s, int32_t **ids, int algo, list group):
        cdef int n = len(group), i
        cdef const uint8_t **keys
        cdef size_t *lens
        if sched_init(s, algo, n) < 0:
            raise MemoryError()
        ids[0] = <int32_t *> malloc((n if n else 1) * sizeof(int32_t))
        kb = [mm[5].encode()[:MAX_KEY] for mm in group]
        keys = <const uint8_t **> malloc((n if n else 1) * sizeof(void *))
        lens = <size_t *> malloc((n if n else 1) * sizeof(size_t))
        for i in range(n):
            mid, weight, maxc, elig, _b, _k = group[i]
            ids[0][i] = mid
            s.m[i].weight = weight
            s.m[i].max_conn = maxc or 0
            s.m[i].active = &self.members[mid].active
            s.m[i].eligible = 1 if elig else 0
            s.m[i].ok = s.m[i].eligible
            keys[i] = <const uint8_t *> (<bytes> kb[i])
            lens[i] = len(kb[i])
        sched_build(s, keys, lens)
        free(keys)
        free(lens)

    def add_vip(self, int vid, int fd, str kind, int pool=-1, int slot=0, int max_conn=0,
                double idle_timeout=0.0, bint nodelay=True, bint keepalive=False, bint one_shot=False):
        """Serve listening (tcp) or bound (udp) socket `fd` as VIP `vid`; max_conn is the UDP flow bound."""
        cdef EVip *v
        cdef epoll_event ev
        if not 0 <= vid < MAX_VIPS:
            raise ValueError("vip id out of range")
        v = &self.vips[vid]
        if v.used:
            raise ValueError(f"vip id {vid} in use")
        memset(v, 0, sizeof(EVip))
        v.fd = fd
        v.kind = K_UDP if kind == "udp" else K_TCP
        v.used = 1
        self.update_vip(vid, pool, slot, max_conn, idle_timeout, nodelay, keepalive, one_shot)
        ev.events = EPOLLIN
        ev.data.u64 = (<uint64_t> vid << 3) | (TAG_UDP_VIP if v.kind == K_UDP else TAG_LISTEN)
        if epoll_ctl(self.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
            v.used = 0
            raise OSError(errno, "epoll_ctl")
        v.accepting = 1

    def update_vip(self, int vid, int pool=-1, int slot=0, int max_conn=0, double idle_timeout=0.0,
                   bint nodelay=True, bint keepalive=False, bint one_shot=False):
        """What new connections of the VIP see; open connections keep their pool, member and timer."""
        cdef EVip *v = &self.vips[vid]
        v.pool = pool
        v.slot = slot
        v.max_conn = max_conn if max_conn > 0 else 0
        v.idle_ms = <uint32_t> (idle_timeout * 1000) if idle_timeout > 0 else 0
        v.nodelay = nodelay
        v.keepalive = keepalive
        v.one_shot = one_shot

    def stop_vip(self, int vid):
        """Stop reading the VIP's socket (the socket stays open: the supervisor owns it)."""
        cdef EVip *v = &self.vips[vid]
        if v.used and v.accepting:
            epoll_ctl(self.ep, EPOLL_CTL_DEL, v.fd, NULL)   # ENOENT while paused: fine
            v.accepting = 0

    def close_vip(self, int vid):
        """End every connection or flow of the VIP now."""
        cdef int32_t i
        for i in range(self.hwm):
            if self.conns[i].kind != K_FREE and self.conns[i].vip == vid:
                self.close_conn(i)
        self.flush_pending()

    def remove_vip(self, int vid):
        self.stop_vip(vid)
        self.close_vip(vid)
        self.vips[vid].used = 0

    def vip_active(self, int vid):
        return self.vips[vid].active if 0 <= vid < MAX_VIPS else 0

    def vip_accepting(self, int vid):
        return self.vips[vid].accepting if 0 <= vid < MAX_VIPS else 0

    def conn_list(self, int vid=-1, int mid=-1):
        """Open connections and flows: (id, vid, 'tcp'|'udp', family, client ip bytes, client port,
        mid, state, age seconds, bytes_in, bytes_out)."""
        cdef int32_t i
        cdef Conn *c
        cdef const uint8_t *ip
        cdef int n
        out = []
        for i in range(self.hwm):
            c = &self.conns[i]
            if c.kind == K_FREE or (vid >= 0 and c.vip != vid) or (mid >= 0 and c.mid != mid):
                continue
            n = addr_ip(&c.client, &ip)
            if c.kind == K_UDP:
                state = "flow"
            elif c.state == ST_CONNECTING:
                state = "connecting"
            elif c.c_shut or c.s_shut:
                state = "half-closed"
            else:
                state = "established"
            out.append((c.id, c.vip, "udp" if c.kind == K_UDP else "tcp", c.client.ss_family,
                        (<char *> ip)[:n], addr_port(&c.client), c.mid, state,
                        (mono_ms() - c.start_ms) / 1000.0, c.bytes_in, c.bytes_out))
        return out

    def kill(self, uint64_t conn_id):
        """Close the connection or flow with this id. True if it was open."""
        cdef int32_t i
        for i in range(self.hwm):
            if self.conns[i].kind != K_FREE and self.conns[i].id == conn_id:
                self.close_conn(i)
                self.flush_pending()
                return True
        return False

    def check(self):
        """Invariant check (tests, debugging): a list of violations, empty when the tables agree."""
        cdef int32_t i, ci, prev, s
        cdef Conn *c
        bad = []
        vip_n = {}
        mem_n = {}
        in_wheel = set()
        for s in range(WHEEL):
            prev = -1
            ci = self.wheel[s]
            n = 0
            while ci >= 0:
                c = &self.conns[ci]
                if c.tw_slot != s or c.tw_prev != prev:
                    bad.append(f"wheel slot {s}: conn {ci} has slot {c.tw_slot} prev {c.tw_prev}, want {prev}")
                if c.kind == K_FREE:
                    bad.append(f"wheel slot {s}: conn {ci} is free")
                in_wheel.add(ci)
                prev = ci
                ci = c.tw_next
                n += 1
                if n > self.cap:
                    bad.append(f"wheel slot {s}: loop")
                    break
        for i in range(self.hwm):
            c = &self.conns[i]
            if c.kind == K_FREE:
                continue
            vip_n[c.vip] = vip_n.get(c.vip, 0) + 1
            if c.mid >= 0:
                mem_n[c.mid] = mem_n.get(c.mid, 0) + 1
            if c.tw_slot >= 0 and i not in in_wheel:
                bad.append(f"conn {i}: says wheel slot {c.tw_slot} but is not linked there")
            if c.kind == K_TCP:
                if c.cfd < 0:
                    bad.append(f"conn {i}: tcp without a client fd")
                if c.state == ST_ESTABLISHED and (c.sfd < 0 or c.mid < 0):
                    bad.append(f"conn {i}: established without a member socket")
            elif c.kind == K_UDP:
                if self.flow_find(c.vip, &c.client) != i:
                    bad.append(f"conn {i}: udp flow not found in the flow table")
        for i in range(MAX_VIPS):
            if self.vips[i].used and self.vips[i].active != vip_n.get(i, 0):
                bad.append(f"vip {i}: active {self.vips[i].active}, conns {vip_n.get(i, 0)}")
        for i in range(MAX_MEMBERS):
            if self.members[i].used and self.members[i].active != mem_n.get(i, 0):
                bad.append(f"member {i}: active {self.members[i].active}, conns {mem_n.get(i, 0)}")
        return bad

    def stats(self):
        return {"conns": sum(1 for i in range(self.hwm) if self.conns[i].kind != K_FREE),
                "table_high_water": self.hwm, "pipes_pooled": self.npipes, "capacity": self.cap}

    cdef void _close_all_fds(self):
        cdef int32_t i
        if self.conns != NULL:
            for i in range(self.hwm):
                if self.conns[i].kind != K_FREE:
                    self.close_conn(i)
            self.flush_pending()
        if self.pipes != NULL:
            for i in range(2 * self.npipes):
                close(self.pipes[i])
            self.npipes = 0
        if self.tfd >= 0:
            close(self.tfd)
            self.tfd = -1
        if self.ep >= 0:
            close(self.ep)
            self.ep = -1

    def close(self):
        """Close every connection, the pipes, the timer and the epoll fd (not the VIP sockets)."""
        self._close_all_fds()
