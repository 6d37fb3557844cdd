# cython: language_level=3
"""TCP through the fast path: accept, connect with timeout and retry, splice both ways.

Per connection:
    accept4 -> pick a member -> non-blocking connect (timer: the pool's connect
    timeout) -> refused or timed out: pick another member, excluding those
    tried, up to `retries` times, then close the client -> established: send the
    PROXY header if the pool asks, then splice both ways through pipes from the
    pool (a pipe is held only while it has bytes in it, so an idle connection
    holds none). Sockets are edge-triggered for in and out from the start; the
    readiness flags remember what the kernel said until a call returns EAGAIN,
    so back-pressure needs no epoll_ctl: a full output stops reading its input
    until EPOLLOUT. One side's EOF becomes shutdown(SHUT_WR) on the other once
    its pipe is empty; the connection ends when both directions have ended, on
    an error, on the idle timeout, or by kill.

Limits (max_connections of the VIP, of each member, and the pool's circuit
breaker max_connections across its members): over a limit a client is
refused (closed at once, counted `refused`) or, when the VIP queues, accepted
and put in the VIP's FIFO queue (state ST_QUEUED: no member socket, the timer
is the queue timeout). A queued connection waits while the VIP is at its limit
or its pool, or every member that could take it, is at its own; it is refused when the queue
is full or no member could ever take it. Whenever a slot frees (a connection
closes, a connect fails, a limit or member changes) the engine sets `kick`,
and queue_drain serves the heads of the queues after the batch of events.
Clients keep their place: a new client waits behind those already queued.
"""
from libc.stdint cimport uint8_t, uint16_t, int32_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy
from libc.stdio cimport snprintf
from libc.errno cimport errno, EAGAIN, EINTR, EINPROGRESS, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM

from adc._fastpath.includes.epoll cimport (epoll_event, epoll_ctl, EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLERR,
                                           EPOLLHUP, EPOLLET, EPOLL_CTL_ADD, EPOLL_CTL_DEL)
from adc._fastpath.includes.socket cimport (sockaddr, sockaddr_storage, socklen_t, socket, accept4, connect,
                                            getsockopt, setsockopt, shutdown, getsockname, send, recv, inet_ntop,
                                            AF_INET6, SOCK_STREAM, SOCK_NONBLOCK, SOCK_CLOEXEC, SOL_SOCKET,
                                            SO_ERROR, SO_KEEPALIVE, SHUT_WR, MSG_NOSIGNAL, MSG_DONTWAIT, MSG_PEEK,
                                            IPPROTO_TCP, TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT)
from adc._fastpath.includes.splice cimport splice, close, SPLICE_F_MOVE, SPLICE_F_NONBLOCK
from adc._fastpath.counters cimport CONN_TOTAL, CONN_ACTIVE, BYTES_IN, BYTES_OUT, ERRORS, REFUSED
from adc._fastpath.engine_types cimport (Core, Conn, EVip, EMember, EPool, K_FREE, K_TCP, ST_CONNECTING,
                                         ST_ESTABLISHED, ST_QUEUED, TAG_CLIENT, TAG_SERVER, ACCEPT_BATCH,
                                         MAX_TRIES, MAX_VIPS)
from adc._fastpath.sched cimport Sched
from adc._fastpath.conntrack cimport (conn_alloc, close_conn, wheel_arm, pipe_get, pipe_put, pick, cadd,
                                      addr_ip, addr_port, queue_push, queue_unlink)

cdef uint8_t PP2_SIG[12]
_SIG = bytearray(b"\r\n\r\n\x00\r\nQUIT\n")
for _i in range(12):
    PP2_SIG[_i] = _SIG[_i]


cdef inline void tcp_options(EVip *v, int fd) noexcept nogil:
    """The VIP's TCP options on a client or member socket (setsockopt: 0, or -1 EBADF/ENOPROTOOPT; ignored)."""
    cdef int one = 1
    if v.nodelay:
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int))
    if v.keepalive:
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(int))
        if v.ka_idle > 0:
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v.ka_idle, sizeof(int))
        if v.ka_intvl > 0:
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v.ka_intvl, sizeof(int))
        if v.ka_cnt > 0:
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v.ka_cnt, sizeof(int))


cdef inline bint vip_full(EVip *v) noexcept nogil:
    """The VIP serves max_conn connections already (queued ones hold no slot)."""
    return v.max_conn != 0 and v.active - v.nqueued >= v.max_conn


cdef inline bint pool_full(EPool *p) noexcept nogil:
    """The pool's circuit breaker: its members hold max_conn connections of this engine already."""
    return p.max_conn != 0 and p.active >= p.max_conn


cdef void refuse(Core *e, int32_t ci) noexcept nogil:
    """Turn the client away: counted `refused` on the VIP and its pool, then closed."""
    cdef Conn *c = &e.conns[ci]
    cadd(e, e.vips[c.vip].slot, REFUSED, 1)
    if e.pools[c.pool].used:
        cadd(e, e.pools[c.pool].slot, REFUSED, 1)
    close_conn(e, ci)


cdef void on_listen(Core *e, int32_t vi) noexcept nogil:
    cdef EVip *v = &e.vips[vi]
    cdef sockaddr_storage ss
    cdef socklen_t sl
    cdef int fd, k
    cdef int32_t ci
    cdef Conn *c
    cdef epoll_event ev
    cdef bint wait
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
                cadd(e, v.slot, ERRORS, 1)
                epoll_ctl(e.ep, EPOLL_CTL_DEL, v.fd, NULL)
                v.paused_until = e.now + 250
            return
        # over the limit, or (queue mode) others already waiting: nobody overtakes the queue
        wait = vip_full(v) or (v.queue and v.nqueued > 0)
        if (v.pool < 0 or not e.pools[v.pool].used
                or (wait and not (v.queue and v.nqueued < v.max_queue))):
            close(fd)
            cadd(e, v.slot, REFUSED, 1)
            continue
        ci = conn_alloc(e)
        if ci < 0:
            close(fd)
            cadd(e, v.slot, REFUSED, 1)
            continue
        c = &e.conns[ci]
        c.kind = K_TCP
        c.cfd = fd
        c.vip = vi
        c.pool = v.pool
        memcpy(&c.client, &ss, sizeof(sockaddr_storage))
        c.clientlen = sl
        v.active += 1
        cadd(e, v.slot, CONN_TOTAL, 1)
        cadd(e, v.slot, CONN_ACTIVE, 1)
        tcp_options(v, fd)
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
        ev.data.u64 = (<uint64_t> ci << 3) | TAG_CLIENT
        if epoll_ctl(e.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
            cadd(e, v.slot, ERRORS, 1)
            close_conn(e, ci)
            continue
        if wait:
            queue_push(e, ci)
            if not vip_full(v):
                e.kick = 1            # the VIP has room: the head may be servable after this batch
            continue
        connect_next(e, ci)


cdef bint was_tried(Conn *c, int32_t mid) noexcept nogil:
    cdef int k
    for k in range(c.ntried):
        if c.tried[k] == mid:
            return True
    return False


cdef bint members_full(Core *e, Conn *c) noexcept nogil:
    """Some member the connection has not tried would take it but for its max_connections."""
    cdef EPool *p = &e.pools[c.pool]
    cdef Sched *s
    cdef int32_t *ids
    cdef int g, i
    if not p.used:
        return False
    for g in range(2):
        s = &p.prim if g == 0 else &p.back
        ids = p.pmid if g == 0 else p.bmid
        for i in range(s.n):
            if (s.m[i].ok and s.m[i].weight > 0 and s.m[i].max_conn and s.m[i].active != NULL
                    and s.m[i].active[0] >= s.m[i].max_conn and not was_tried(c, ids[i])):
                return True
    return False


cdef int connect_member(Core *e, int32_t ci, int32_t mid) noexcept nogil:
    """Start a non-blocking connect to member mid. 0: connecting; 1: refused at once (try
    another); -1: cannot (no socket, epoll refused)."""
    cdef Conn *c = &e.conns[ci]
    cdef EMember *m = &e.members[mid]
    cdef int fd
    cdef epoll_event ev
    c.tried[c.ntried] = mid
    c.ntried += 1
    fd = socket(m.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
    if fd < 0:
        cadd(e, e.vips[c.vip].slot, ERRORS, 1)
        return -1
    tcp_options(&e.vips[c.vip], fd)
    if connect(fd, <sockaddr *> &m.addr, m.addrlen) == 0 or errno == EINPROGRESS:
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
        ev.data.u64 = (<uint64_t> ci << 3) | TAG_SERVER
        if epoll_ctl(e.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
            close(fd)
            return -1
        c.sfd = fd
        c.mid = mid
        c.state = ST_CONNECTING
        c.s_rd = c.s_wr = 0
        m.active += 1
        e.pools[c.pool].active += 1
        wheel_arm(e, ci, e.pools[c.pool].connect_ms)
        return 0
    close(fd)                                   # refused at once (ECONNREFUSED, ENETUNREACH)
    cadd(e, m.slot, ERRORS, 1)
    return 1


cdef void connect_next(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    cdef EPool *p = &e.pools[c.pool]
    cdef EVip *v = &e.vips[c.vip]
    cdef int32_t mid
    cdef int r
    while True:
        if not p.used or c.ntried > p.retries or c.ntried >= MAX_TRIES:
            break
        if pool_full(p):
            if v.queue and v.nqueued < v.max_queue:
                queue_push(e, ci)               # wait for the pool to have room
                return
            break                               # refused: counted on the VIP and the pool
        mid = pick(e, c, IPPROTO_TCP)
        if mid < 0:
            if v.queue and v.nqueued < v.max_queue and members_full(e, c):
                queue_push(e, ci)               # wait for a member slot instead of refusing
                return
            break
        r = connect_member(e, ci, mid)
        if r == 0:
            return
        if r < 0:
            break
    refuse(e, ci)


cdef void queue_drain(Core *e) noexcept nogil:
    """Serve queued connections while their VIP and a member have room (after a batch of events)."""
    cdef int rnd, r
    cdef int32_t vi, ci, mid
    cdef EVip *v
    cdef Conn *c
    cdef EPool *p
    for rnd in range(4):            # a connect refused at once while draining frees a slot: go round again
        if not e.kick or not e.nqueued:
            break
        e.kick = 0
        for vi in range(MAX_VIPS):
            if not e.nqueued:
                break
            v = &e.vips[vi]
            while v.used and v.nqueued:
                if vip_full(v):
                    break
                ci = v.qhead
                c = &e.conns[ci]
                p = &e.pools[c.pool]
                if not p.used or c.ntried > p.retries or c.ntried >= MAX_TRIES:
                    queue_unlink(e, ci)
                    refuse(e, ci)
                    continue
                if pool_full(p):
                    break                   # the pool's circuit breaker: wait for a member connection to end
                mid = pick(e, c, IPPROTO_TCP)
                if mid < 0:
                    if members_full(e, c):
                        break               # still waiting for a member slot; keep the order
                    queue_unlink(e, ci)     # no member could ever take it now (all down, drained)
                    refuse(e, ci)
                    continue
                queue_unlink(e, ci)
                r = connect_member(e, ci, mid)
                if r == 1:
                    connect_next(e, ci)
                elif r < 0:
                    refuse(e, ci)


cdef void connect_failed(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    cdef EMember *m = &e.members[c.mid]
    close(c.sfd)
    c.sfd = -1
    if m.active > 0:
        m.active -= 1
    if e.pools[c.pool].active > 0:
        e.pools[c.pool].active -= 1
    c.mid = -1
    if e.nqueued:
        e.kick = 1                      # the member's slot frees for whoever waits
    connect_next(e, ci)


cdef void on_connected(Core *e, int32_t ci, uint32_t events) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
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
        cadd(e, e.members[c.mid].slot, ERRORS, 1)
        connect_failed(e, ci)
        return
    m = &e.members[c.mid]
    p = &e.pools[c.pool]
    c.state = ST_ESTABLISHED
    c.counted = 1
    cadd(e, m.slot, CONN_TOTAL, 1)
    cadd(e, m.slot, CONN_ACTIVE, 1)
    if p.used:
        cadd(e, p.slot, CONN_TOTAL, 1)
    if p.used and p.proxy:
        hl = proxy_header(e, c, p.proxy, hdr)
        # a fresh connection's send buffer always takes the header whole
        if hl <= 0 or send(c.sfd, hdr, hl, MSG_NOSIGNAL | MSG_DONTWAIT) != hl:
            cadd(e, m.slot, ERRORS, 1)
            close_conn(e, ci)
            return
    wheel_arm(e, ci, e.vips[c.vip].idle_ms)
    c.s_wr = 1
    c.s_rd = 1          # the member may have spoken first; its edge came with the connect event
    c.c_rd = 1          # bytes the client sent while we connected; its edge is already consumed
    pump(e, ci)


cdef int proxy_header(Core *e, Conn *c, int version, char *buf) noexcept nogil:
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


cdef int64_t move(Core *e, int src, int dst, int *pipe, uint32_t *inpipe, uint8_t *src_rd,
                  uint8_t *dst_wr, uint8_t *src_eof, uint8_t *dst_shut) noexcept nogil:
    """Splice src -> pipe -> dst until both sides would block. Bytes delivered to dst, or -1 (close)."""
    cdef int64_t moved = 0
    cdef ssize_t n
    cdef bint progress = True
    while progress:
        progress = False
        if not src_eof[0] and src_rd[0] and inpipe[0] < e.pipe_bytes:
            if pipe[0] < 0 and pipe_get(e, pipe) < 0:
                return -1
            n = splice(src, NULL, pipe[1], NULL, e.pipe_bytes - inpipe[0],
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
        pipe_put(e, pipe, 0)
    if src_eof[0] and inpipe[0] == 0 and not dst_shut[0]:
        shutdown(dst, SHUT_WR)          # carry the half-close across; ENOTCONN: already gone
        dst_shut[0] = 1
    return moved


cdef void pump(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    cdef int64_t n
    cdef int32_t vs = e.vips[c.vip].slot
    cdef int32_t ms = e.members[c.mid].slot
    n = move(e, c.cfd, c.sfd, c.pcs, &c.ncs, &c.c_rd, &c.s_wr, &c.c_eof, &c.s_shut)
    if n < 0:
        close_conn(e, ci)
        return
    if n:
        c.bytes_in += n
        cadd(e, vs, BYTES_IN, n)
        cadd(e, ms, BYTES_IN, n)
    n = move(e, c.sfd, c.cfd, c.psc, &c.nsc, &c.s_rd, &c.c_wr, &c.s_eof, &c.c_shut)
    if n < 0:
        close_conn(e, ci)
        return
    if n:
        c.bytes_out += n
        cadd(e, vs, BYTES_OUT, n)
        cadd(e, ms, BYTES_OUT, n)
    c.last_ms = e.now
    if c.s_shut and c.c_shut:
        close_conn(e, ci)             # both directions ended


cdef void on_tcp(Core *e, int32_t ci, int tag, uint32_t events) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    cdef char peek
    if c.kind != K_TCP:
        return                          # freed earlier in this batch
    if tag == TAG_CLIENT:
        if events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR):
            c.c_rd = 1
        if events & (EPOLLOUT | EPOLLHUP | EPOLLERR):
            c.c_wr = 1
        if c.state == ST_CONNECTING:
            if events & (EPOLLHUP | EPOLLERR):
                close_conn(e, ci)     # the client gave up while we connected
            return
        if c.state == ST_QUEUED:
            # a client that left the queue (reset, or closed without sending a byte) frees its place;
            # one that sent its request and half-closed keeps it and is served
            if (events & (EPOLLHUP | EPOLLERR)
                    or (events & EPOLLRDHUP and recv(c.cfd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 0)):
                close_conn(e, ci)
            return
    else:
        if c.state == ST_CONNECTING:
            on_connected(e, ci, events)
            return
        if events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR):
            c.s_rd = 1
        if events & (EPOLLOUT | EPOLLHUP | EPOLLERR):
            c.s_wr = 1
    pump(e, ci)
