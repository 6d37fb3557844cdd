# cython: language_level=3
"""UDP through the fast path: one flow per (VIP, client address), batched both ways.

A flow has a connected upstream socket to its member; datagrams from the VIP
socket are read with recvmmsg in batches and sent on the flow's socket;
replies are read in batches and sent back with sendmmsg from the VIP socket
(so they leave from the VIP's address). A flow ends after its idle timeout,
or after the first reply in one-shot mode. The table is bounded per VIP.
"""
from libc.stdint cimport uint8_t, int32_t, uint32_t, uint64_t
from libc.string cimport memcpy
from libc.errno cimport errno, EINTR, ECONNREFUSED

from adc._fastpath.includes.epoll cimport epoll_event, epoll_ctl, EPOLLIN, EPOLL_CTL_ADD
from adc._fastpath.includes.socket cimport (sockaddr, sockaddr_storage, socklen_t, socket, connect, send,
                                            recvmmsg, sendmmsg, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_CLOEXEC,
                                            MSG_DONTWAIT, IPPROTO_UDP)
from adc._fastpath.includes.splice cimport close
from adc._fastpath.counters cimport CONN_TOTAL, CONN_ACTIVE, BYTES_IN, BYTES_OUT, ERRORS, REFUSED
from adc._fastpath.engine_types cimport (Core, Conn, EVip, EMember, K_FREE, K_UDP, ST_ESTABLISHED,
                                         TAG_UDP_UP, UDP_BATCH, UDP_BUF, MAX_TRIES)
from adc._fastpath.conntrack cimport (conn_alloc, close_conn, wheel_arm, pick, flow_find, flow_link, cadd)


cdef int32_t flow_new(Core *e, int32_t vi, const sockaddr_storage *ss, socklen_t sl) noexcept nogil:
    cdef EVip *v = &e.vips[vi]
    cdef int32_t ci, mid
    cdef Conn *c
    cdef EMember *m
    cdef int fd
    cdef epoll_event ev
    if (v.max_conn and v.active >= v.max_conn) or v.pool < 0 or not e.pools[v.pool].used:
        cadd(e, v.slot, REFUSED, 1)
        return -1
    ci = conn_alloc(e)
    if ci < 0:
        cadd(e, v.slot, REFUSED, 1)
        return -1
    c = &e.conns[ci]
    c.kind = K_UDP
    c.vip = vi
    c.pool = v.pool
    memcpy(&c.client, ss, sizeof(sockaddr_storage))
    c.clientlen = sl
    while True:
        mid = pick(e, c, IPPROTO_UDP)
        if mid < 0:
            break
        m = &e.members[mid]
        if c.ntried < 8:
            c.tried[c.ntried] = mid
            c.ntried += 1
        fd = socket(m.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        if fd < 0:
            break
        if connect(fd, <sockaddr *> &m.addr, m.addrlen) == 0:   # UDP: no handshake, fails only locally
            ev.events = EPOLLIN
            ev.data.u64 = (<uint64_t> ci << 3) | TAG_UDP_UP
            if epoll_ctl(e.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
                close(fd)
                break
            c.sfd = fd
            c.mid = mid
            c.state = ST_ESTABLISHED
            c.counted = 1
            m.active += 1
            v.active += 1
            flow_link(e, ci)
            cadd(e, v.slot, CONN_TOTAL, 1)
            cadd(e, v.slot, CONN_ACTIVE, 1)
            cadd(e, m.slot, CONN_TOTAL, 1)
            cadd(e, m.slot, CONN_ACTIVE, 1)
            wheel_arm(e, ci, v.idle_ms)
            return ci
        close(fd)
        cadd(e, m.slot, ERRORS, 1)
        if c.ntried >= 8:
            break
    cadd(e, v.slot, REFUSED, 1)
    c.kind = K_FREE
    e.pending[e.npending] = ci
    e.npending += 1
    return -1


cdef void udp_prepare(Core *e, int with_names) noexcept nogil:
    cdef int i
    for i in range(UDP_BATCH):
        e.iovs[i].iov_base = e.bufs + i * UDP_BUF
        e.iovs[i].iov_len = UDP_BUF
        e.msgs[i].msg_hdr.msg_iov = &e.iovs[i]
        e.msgs[i].msg_hdr.msg_iovlen = 1
        e.msgs[i].msg_hdr.msg_control = NULL
        e.msgs[i].msg_hdr.msg_controllen = 0
        e.msgs[i].msg_hdr.msg_flags = 0
        if with_names:
            e.msgs[i].msg_hdr.msg_name = &e.names[i]
            e.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
        else:
            e.msgs[i].msg_hdr.msg_name = NULL
            e.msgs[i].msg_hdr.msg_namelen = 0


cdef void on_udp_vip(Core *e, int32_t vi) noexcept nogil:
    cdef EVip *v = &e.vips[vi]
    cdef int n, i, b
    cdef int32_t ci
    cdef Conn *c
    cdef ssize_t r
    cdef unsigned int ln
    for b in range(4):
        udp_prepare(e, 1)
        n = recvmmsg(v.fd, e.msgs, UDP_BATCH, MSG_DONTWAIT, NULL)
        if n <= 0:
            return
        for i in range(n):
            ci = flow_find(e, vi, &e.names[i])
            if ci < 0:
                ci = flow_new(e, vi, &e.names[i], e.msgs[i].msg_hdr.msg_namelen)
                if ci < 0:
                    continue
            c = &e.conns[ci]
            ln = e.msgs[i].msg_len
            r = send(c.sfd, e.bufs + i * UDP_BUF, ln, MSG_DONTWAIT)
            if r < 0:
                cadd(e, e.members[c.mid].slot, ERRORS, 1)   # ECONNREFUSED (ICMP) or buffer full
                continue
            c.bytes_in += ln
            c.last_ms = e.now
            cadd(e, v.slot, BYTES_IN, ln)
            cadd(e, e.members[c.mid].slot, BYTES_IN, ln)
        if n < UDP_BATCH:
            return


cdef void on_udp_up(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    cdef EVip *v
    cdef int n, i, b, s, done
    cdef uint64_t total
    if c.kind != K_UDP:
        return
    v = &e.vips[c.vip]
    for b in range(4):
        udp_prepare(e, 0)
        n = recvmmsg(c.sfd, e.msgs, UDP_BATCH, MSG_DONTWAIT, NULL)
        if n < 0:
            if errno == ECONNREFUSED:   # the member's port is closed (ICMP)
                cadd(e, e.members[c.mid].slot, ERRORS, 1)
                if v.one_shot:
                    close_conn(e, ci)
            return
        if n == 0:
            return
        total = 0
        for i in range(n):
            e.iovs[i].iov_len = e.msgs[i].msg_len
            e.msgs[i].msg_hdr.msg_name = &c.client
            e.msgs[i].msg_hdr.msg_namelen = c.clientlen
            total += e.msgs[i].msg_len
        done = 0
        while done < n:
            s = sendmmsg(v.fd, &e.msgs[done], n - done, MSG_DONTWAIT)
            if s <= 0:
                if s < 0 and errno == EINTR:
                    continue
                cadd(e, v.slot, ERRORS, n - done)   # VIP socket buffer full: UDP drops
                break
            done += s
        c.bytes_out += total
        c.last_ms = e.now
        cadd(e, v.slot, BYTES_OUT, total)
        cadd(e, e.members[c.mid].slot, BYTES_OUT, total)
        if v.one_shot:
            close_conn(e, ci)         # DNS-style: the reply ends the flow
            return
        if n < UDP_BATCH:
            return
