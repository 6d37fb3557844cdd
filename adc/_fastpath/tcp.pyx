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
"""
from libc.stdint cimport uint8_t, uint16_t, int32_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy
from libc.stdio cimport snprintf
from libc.errno cimport errno, EAGAIN, EINTR, EINPROGRESS, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM

from adc._fastpath.includes.epoll cimport (epoll_event, epoll_ctl, EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLERR,
                                           EPOLLHUP, EPOLLET, EPOLL_CTL_ADD, EPOLL_CTL_DEL)
from adc._fastpath.includes.socket cimport (sockaddr, sockaddr_storage, socklen_t, socket, accept4, connect,
                                            getsockopt, setsockopt, shutdown, getsockname, send, inet_ntop,
                                            AF_INET6, SOCK_STREAM, SOCK_NONBLOCK, SOCK_CLOEXEC, SOL_SOCKET,
                                            SO_ERROR, SO_KEEPALIVE, SHUT_WR, MSG_NOSIGNAL, MSG_DONTWAIT,
                                            IPPROTO_TCP, TCP_NODELAY)
from adc._fastpath.includes.splice cimport splice, close, SPLICE_F_MOVE, SPLICE_F_NONBLOCK
from adc._fastpath.counters cimport CONN_TOTAL, CONN_ACTIVE, BYTES_IN, BYTES_OUT, ERRORS, REFUSED
from adc._fastpath.engine_types cimport (Core, Conn, EVip, EMember, EPool, K_FREE, K_TCP, ST_CONNECTING,
                                         ST_ESTABLISHED, TAG_CLIENT, TAG_SERVER, ACCEPT_BATCH, MAX_TRIES)
from adc._fastpath.conntrack cimport (conn_alloc, close_conn, wheel_arm, pipe_get, pipe_put, pick, cadd,
                                      addr_ip, addr_port)

cdef uint8_t PP2_SIG[12]
_SIG = bytearray(b"\r\n\r\n\x00\r\nQUIT\n")
for _i in range(12):
    PP2_SIG[_i] = _SIG[_i]


cdef void on_listen(Core *e, int32_t vi) noexcept nogil:
    cdef EVip *v = &e.vips[vi]
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
                cadd(e, v.slot, ERRORS, 1)
                epoll_ctl(e.ep, EPOLL_CTL_DEL, v.fd, NULL)
                v.paused_until = e.now + 250
            return
        if ((v.max_conn and v.active >= v.max_conn) or v.pool < 0
                or not e.pools[v.pool].used):
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
        if v.nodelay:
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int))
        if v.keepalive:
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(int))
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
        ev.data.u64 = (<uint64_t> ci << 3) | TAG_CLIENT
        if epoll_ctl(e.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
            cadd(e, v.slot, ERRORS, 1)
            close_conn(e, ci)
            continue
        connect_next(e, ci)


cdef void connect_next(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    cdef EPool *p = &e.pools[c.pool]
    cdef EMember *m
    cdef int32_t mid
    cdef int fd, one = 1
    cdef epoll_event ev
    while True:
        if not p.used or c.ntried > p.retries or c.ntried >= 8:
            break
        mid = pick(e, c, IPPROTO_TCP)
        if mid < 0:
            break
        m = &e.members[mid]
        c.tried[c.ntried] = mid
        c.ntried += 1
        fd = socket(m.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        if fd < 0:
            cadd(e, e.vips[c.vip].slot, ERRORS, 1)
            break
        if e.vips[c.vip].nodelay:
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int))
        if connect(fd, <sockaddr *> &m.addr, m.addrlen) == 0 or errno == EINPROGRESS:
            ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
            ev.data.u64 = (<uint64_t> ci << 3) | TAG_SERVER
            if epoll_ctl(e.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
                close(fd)
                break
            c.sfd = fd
            c.mid = mid
            c.state = ST_CONNECTING
            c.s_rd = c.s_wr = 0
            m.active += 1
            wheel_arm(e, ci, p.connect_ms)
            return
        close(fd)                                   # refused at once (ECONNREFUSED, ENETUNREACH)
        cadd(e, m.slot, ERRORS, 1)
    cadd(e, e.vips[c.vip].slot, REFUSED, 1)
    if p.used:
        cadd(e, p.slot, REFUSED, 1)
    close_conn(e, ci)


cdef void connect_failed(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    cdef EMember *m = &e.members[c.mid]
    close(c.sfd)
    c.sfd = -1
    if m.active > 0:
        m.active -= 1
    c.mid = -1
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
    else:
        if c.state == ST_CONNECTING:
            on_connected(e, ci, events)
            return
        if events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR):
            c.s_rd = 1
        if events & (EPOLLOUT | EPOLLHUP | EPOLLERR):
            c.s_wr = 1
    pump(e, ci)
