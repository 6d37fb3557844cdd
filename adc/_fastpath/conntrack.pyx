# cython: language_level=3
"""The connection table of the fast path: TCP connections and UDP flows alike.

A Conn lives in a preallocated array; its index is its handle everywhere
(epoll data words, the timer wheel, the UDP flow index). Freed entries go to
`pending` and return to the free list only after the current batch of
events, so a stale event for a freed entry finds kind == K_FREE.

Also here, because every kind of connection uses them: the timer wheel (one
hashed wheel of WHEEL slots of tick_ms; activity only stamps last_ms, an entry
whose deadline moved is re-filed when its slot comes round), the pool of empty
pipes, the UDP flow index (chained hash on VIP and client address), the
per-VIP queue of TCP connections waiting for a slot (a FIFO linked through the
Conn entries, so it costs no memory of its own), the choice of a member for a
new connection, and closing.
"""
from libc.stdint cimport uint8_t, uint16_t, int32_t, uint32_t, uint64_t
from libc.string cimport memset, memcpy

from adc._fastpath.includes.socket cimport sockaddr, sockaddr_storage, socklen_t, getsockname
from adc._fastpath.includes.splice cimport pipe2, close, fcntl, F_SETPIPE_SZ, O_NONBLOCK, O_CLOEXEC
from adc._fastpath.counters cimport CONN_ACTIVE
from adc._fastpath.engine_types cimport (Core, Conn, EVip, EMember, EPool, K_FREE, K_TCP, K_UDP,
                                         ST_QUEUED, WHEEL_MASK, MAX_TRIES)
from adc._fastpath.sched cimport sched_pick, ALG_SOURCE_HASH, ALG_MAGLEV
from adc._fastpath.maglev cimport xxh3_64


cdef int32_t conn_alloc(Core *e) noexcept nogil:
    cdef int32_t ci
    cdef Conn *c
    if e.nfree > 0:
        e.nfree -= 1
        ci = e.freelist[e.nfree]
    elif e.hwm < e.cap:
        ci = e.hwm
        e.hwm += 1
    else:
        return -1
    c = &e.conns[ci]
    memset(c, 0, sizeof(Conn))
    c.cfd = -1
    c.sfd = -1
    c.pcs[0] = c.pcs[1] = c.psc[0] = c.psc[1] = -1
    c.mid = -1
    c.tw_slot = -1
    c.hnext = -1
    c.q_prev = c.q_next = -1
    e.next_id += 1
    c.id = e.next_id
    c.start_ms = e.now
    c.last_ms = e.now
    return ci


cdef void flush_pending(Core *e) noexcept nogil:
    cdef int32_t i
    for i in range(e.npending):
        e.freelist[e.nfree] = e.pending[i]
        e.nfree += 1
    e.npending = 0


cdef void wheel_insert(Core *e, int32_t ci, uint64_t deadline) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    cdef uint64_t t = deadline // e.tick_ms
    cdef int32_t s
    if t <= e.tick:
        t = e.tick + 1
    s = <int32_t> (t & WHEEL_MASK)
    c.tw_slot = s
    c.tw_prev = -1
    c.tw_next = e.wheel[s]
    if c.tw_next >= 0:
        e.conns[c.tw_next].tw_prev = ci
    e.wheel[s] = ci


cdef void wheel_remove(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    if c.tw_slot < 0:
        return
    if c.tw_prev >= 0:
        e.conns[c.tw_prev].tw_next = c.tw_next
    else:
        e.wheel[c.tw_slot] = c.tw_next
    if c.tw_next >= 0:
        e.conns[c.tw_next].tw_prev = c.tw_prev
    c.tw_slot = -1


cdef void wheel_arm(Core *e, int32_t ci, uint32_t timeout_ms) noexcept nogil:
    """(Re)start the connection's timer: it fires timeout_ms after its last activity."""
    cdef Conn *c = &e.conns[ci]
    c.timeout_ms = timeout_ms
    c.last_ms = e.now
    if timeout_ms == 0:
        wheel_remove(e, ci)
    elif c.tw_slot < 0:
        wheel_insert(e, ci, e.now + timeout_ms)
    # already filed earlier than the new deadline: it is re-filed when its slot comes round


cdef int pipe_get(Core *e, int *p) noexcept nogil:
    if e.npipes > 0:
        e.npipes -= 1
        p[0] = e.pipes[2 * e.npipes]
        p[1] = e.pipes[2 * e.npipes + 1]
        return 0
    if pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0:      # EMFILE/ENFILE
        p[0] = p[1] = -1
        return -1
    if e.pipe_size_req > 0:
        fcntl(p[0], F_SETPIPE_SZ, e.pipe_size_req)   # EPERM above pipe-max-size: keep the default
    return 0


cdef void pipe_put(Core *e, int *p, uint32_t nbytes) noexcept nogil:
    if p[0] < 0:
        return
    if nbytes == 0 and e.npipes < e.pipecap:
        e.pipes[2 * e.npipes] = p[0]
        e.pipes[2 * e.npipes + 1] = p[1]
        e.npipes += 1
    else:
        close(p[0])    # bytes still inside: the pipe goes with them
        close(p[1])
    p[0] = p[1] = -1


cdef void close_conn(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    cdef EVip *v
    cdef EMember *m
    if c.kind == K_FREE:
        return
    wheel_remove(e, ci)
    if c.kind == K_UDP:
        flow_unlink(e, ci)
    elif c.state == ST_QUEUED:
        queue_unlink(e, ci)
    elif e.nqueued:
        e.kick = 1                  # a VIP slot (and maybe a member slot) frees: someone may be waiting
    if c.cfd >= 0 and c.kind == K_TCP:
        close(c.cfd)
    if c.sfd >= 0:
        close(c.sfd)
    c.cfd = c.sfd = -1
    pipe_put(e, c.pcs, c.ncs)
    pipe_put(e, c.psc, c.nsc)
    v = &e.vips[c.vip]
    if v.active > 0:
        v.active -= 1
    csub(e, v.slot, CONN_ACTIVE, 1)
    if c.mid >= 0:
        m = &e.members[c.mid]
        if m.active > 0:
            m.active -= 1
        if c.kind == K_TCP and e.pools[c.pool].active > 0:
            e.pools[c.pool].active -= 1      # counted from connect_member (tcp.pyx)
        if c.counted:
            csub(e, m.slot, CONN_ACTIVE, 1)
    c.kind = K_FREE
    e.pending[e.npending] = ci
    e.npending += 1


cdef void queue_push(Core *e, int32_t ci) noexcept nogil:
    """Put a TCP connection at the tail of its VIP's queue; its timer becomes the queue timeout."""
    cdef Conn *c = &e.conns[ci]
    cdef EVip *v = &e.vips[c.vip]
    c.state = ST_QUEUED
    c.q_next = -1
    c.q_prev = v.qtail
    if v.qtail >= 0:
        e.conns[v.qtail].q_next = ci
    else:
        v.qhead = ci
    v.qtail = ci
    v.nqueued += 1
    e.nqueued += 1
    wheel_remove(e, ci)             # a connect timer may be filed: the queue timeout replaces it
    wheel_arm(e, ci, v.queue_ms)


cdef void queue_unlink(Core *e, int32_t ci) noexcept nogil:
    """Take a queued connection out of its VIP's queue (it is served, times out or goes away)."""
    cdef Conn *c = &e.conns[ci]
    cdef EVip *v = &e.vips[c.vip]
    if c.state != ST_QUEUED:
        return
    if c.q_prev >= 0:
        e.conns[c.q_prev].q_next = c.q_next
    else:
        v.qhead = c.q_next
    if c.q_next >= 0:
        e.conns[c.q_next].q_prev = c.q_prev
    else:
        v.qtail = c.q_prev
    c.q_prev = c.q_next = -1
    c.state = 0
    v.nqueued -= 1
    e.nqueued -= 1
    wheel_remove(e, ci)


cdef int32_t pick(Core *e, Conn *c, int proto) noexcept nogil:
    """Engine member id for a new flow (primaries, then backups), excluding those tried; -1: none."""
    cdef EPool *p = &e.pools[c.pool]
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
                getsockname(e.vips[c.vip].fd, <sockaddr *> &loc, &ll)
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


cdef uint32_t flow_hash(Core *e, int32_t vi, const sockaddr_storage *ss) noexcept nogil:
    cdef uint8_t k[24]
    cdef const uint8_t *ip
    cdef int n = addr_ip(ss, &ip)
    cdef uint16_t port = addr_port(ss)
    memcpy(k, &vi, 4)
    k[4] = port >> 8
    k[5] = port & 255
    memcpy(&k[6], ip, n)
    return <uint32_t> xxh3_64(k, 6 + n, 0) & e.bmask


cdef int32_t flow_find(Core *e, int32_t vi, const sockaddr_storage *ss) noexcept nogil:
    cdef int32_t ci = e.buckets[flow_hash(e, vi, ss)]
    while ci >= 0:
        if e.conns[ci].vip == vi and addr_eq(&e.conns[ci].client, ss):
            return ci
        ci = e.conns[ci].hnext
    return -1


cdef void flow_link(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    c.hbucket = flow_hash(e, c.vip, &c.client)
    c.hnext = e.buckets[c.hbucket]
    e.buckets[c.hbucket] = ci


cdef void flow_unlink(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    cdef int32_t *pp = &e.buckets[c.hbucket]
    while pp[0] >= 0:
        if pp[0] == ci:
            pp[0] = c.hnext
            break
        pp = &e.conns[pp[0]].hnext
    c.hnext = -1
