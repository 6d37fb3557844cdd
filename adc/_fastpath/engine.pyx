# cython: language_level=3
"""The L4 fast path: one epoll loop in C for the TCP connections and UDP flows of one worker.

Where it runs: the engine's epoll fd is registered in the worker's uvloop loop
(loop.add_reader(engine.fileno(), engine.run)), so L4 and L7 share one thread
and need no locks; `run` handles what is ready and returns without blocking
(docs/fastpath.md has the reasons and the numbers).

All state is one C struct, Core (engine_types.pxd): the connection table,
members, pools (with their C schedulers, adc._fastpath.sched) and VIPs,
indexed by small ints that adc/l4/fast.py assigns. epoll data words carry
(index << 3 | tag), so an event finds its connection without a lookup.
The work is split by concept: conntrack.pyx (the table, timers, pipes, member
choice), tcp.pyx (accept, connect, splice), udp.pyx (flows); this module
owns the loop, the timer tick, and the Python API used on the loop's thread.
"""
from libc.stdint cimport uint8_t, uint16_t, int32_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset, memcpy
from libc.errno cimport errno

from adc._fastpath.includes.epoll cimport (epoll_event, epoll_create1, epoll_ctl, epoll_wait, EPOLLIN,
                                           EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CLOEXEC)
from adc._fastpath.includes.socket cimport (sockaddr_storage, sockaddr_in, sockaddr_in6, mmsghdr, iovec,
                                            htons, AF_INET, AF_INET6)
from adc._fastpath.includes.splice cimport close, read
from adc._fastpath.includes.timerfd cimport (itimerspec, timerfd_create, timerfd_settime, TFD_NONBLOCK,
                                             TFD_CLOEXEC, CLOCK_MONOTONIC)
from adc._fastpath.counters cimport CounterRegion, TIMEOUTS
from adc._fastpath.sched cimport Sched, sched_init, sched_free, sched_build, algo_code
from adc._fastpath.maglev cimport MAX_KEY
from adc._fastpath.engine_types cimport (Core, Conn, EMember, EPool, EVip, K_FREE, K_TCP, K_UDP,
                                         ST_CONNECTING, ST_ESTABLISHED, ST_QUEUED, TAG_CLIENT, TAG_SERVER, TAG_LISTEN,
                                         TAG_TIMER, TAG_UDP_UP, TAG_UDP_VIP, NEV, WHEEL, WHEEL_MASK,
                                         UDP_BATCH, UDP_BUF, MAX_MEMBERS, MAX_POOLS, MAX_VIPS)
from adc._fastpath.conntrack cimport (conn_alloc, flush_pending, wheel_insert, close_conn, flow_find,
                                      mono_ms, cadd, addr_ip, addr_port)
from adc._fastpath.tcp cimport on_listen, on_tcp, connect_failed, queue_drain
from adc._fastpath.udp cimport on_udp_vip, on_udp_up


cdef void wheel_advance(Core *e) noexcept nogil:
    cdef uint64_t cur = e.now // e.tick_ms
    cdef int32_t ci, nxt, s
    cdef Conn *c
    cdef uint64_t dl
    if cur > e.tick + WHEEL:
        e.tick = cur - WHEEL
    while e.tick < cur:
        e.tick += 1
        s = <int32_t> (e.tick & WHEEL_MASK)
        ci = e.wheel[s]
        e.wheel[s] = -1
        while ci >= 0:
            c = &e.conns[ci]
            nxt = c.tw_next
            c.tw_slot = -1
            if c.kind != K_FREE and c.timeout_ms:
                dl = c.last_ms + c.timeout_ms
                if dl <= e.now:
                    expire(e, ci)
                else:
                    wheel_insert(e, ci, dl)
            ci = nxt


cdef void expire(Core *e, int32_t ci) noexcept nogil:
    cdef Conn *c = &e.conns[ci]
    if c.kind == K_UDP:
        close_conn(e, ci)           # an idle flow ending is the normal end of UDP
        return
    if c.state == ST_QUEUED:
        cadd(e, e.vips[c.vip].slot, TIMEOUTS, 1)   # waited queue_timeout for a slot: the client is closed
        close_conn(e, ci)
        return
    if c.state == ST_CONNECTING:
        cadd(e, e.members[c.mid].slot, TIMEOUTS, 1)
        connect_failed(e, ci)
        return
    cadd(e, e.vips[c.vip].slot, TIMEOUTS, 1)
    close_conn(e, ci)


cdef void on_timer(Core *e) noexcept nogil:
    cdef uint64_t exp
    cdef int32_t vi
    cdef epoll_event ev
    read(e.tfd, &exp, 8)             # EAGAIN: spurious wakeup; harmless
    e.now = mono_ms()
    wheel_advance(e)
    for vi in range(MAX_VIPS):
        if e.vips[vi].used and e.vips[vi].paused_until and e.vips[vi].paused_until <= e.now:
            e.vips[vi].paused_until = 0
            if e.vips[vi].accepting:
                ev.events = EPOLLIN
                ev.data.u64 = (<uint64_t> vi << 3) | TAG_LISTEN
                epoll_ctl(e.ep, EPOLL_CTL_ADD, e.vips[vi].fd, &ev)


cdef int loop_once(Core *e, int timeout) noexcept nogil:
    cdef int n, i, it, total = 0, tag
    cdef uint64_t u
    cdef int32_t idx
    for it in range(8):
        n = epoll_wait(e.ep, e.evs, NEV, timeout if it == 0 else 0)
        if n <= 0:
            break
        e.now = mono_ms()
        for i in range(n):
            u = e.evs[i].data.u64
            tag = <int> (u & 7)
            idx = <int32_t> (u >> 3)
            if tag <= TAG_SERVER:
                on_tcp(e, idx, tag, e.evs[i].events)
            elif tag == TAG_LISTEN:
                if e.vips[idx].used:
                    on_listen(e, idx)
            elif tag == TAG_UDP_UP:
                on_udp_up(e, idx)
            elif tag == TAG_UDP_VIP:
                if e.vips[idx].used:
                    on_udp_vip(e, idx)
            else:
                on_timer(e)
        if e.kick:
            queue_drain(e)
        flush_pending(e)
        total += n
        if n < NEV:
            break
    return total


cdef class Engine:
    """One worker's L4 data path. All methods run on the loop's thread."""
    cdef Core *e
    cdef CounterRegion counters       # kept alive: Core points into it

    def __cinit__(self, CounterRegion counters=None, int capacity=65536, int tick_ms=100,
                  int pipe_size=0, int pipe_pool=1024):
        cdef int i
        cdef epoll_event ev
        cdef itimerspec its
        cdef Core *e = <Core *> calloc(1, sizeof(Core))
        if e == NULL:
            raise MemoryError()
        self.e = e
        e.ep = -1
        e.tfd = -1
        e.cap = capacity
        e.tick_ms = tick_ms
        e.conns = <Conn *> calloc(capacity, sizeof(Conn))      # untouched pages cost no memory
        e.freelist = <int32_t *> malloc(capacity * sizeof(int32_t))
        e.pending = <int32_t *> malloc(capacity * sizeof(int32_t))
        e.members = <EMember *> calloc(MAX_MEMBERS, sizeof(EMember))
        e.pools = <EPool *> calloc(MAX_POOLS, sizeof(EPool))
        e.vips = <EVip *> calloc(MAX_VIPS, sizeof(EVip))
        e.wheel = <int32_t *> malloc(WHEEL * sizeof(int32_t))
        e.evs = <epoll_event *> calloc(NEV, sizeof(epoll_event))
        e.pipecap = pipe_pool
        e.pipes = <int *> malloc(2 * pipe_pool * sizeof(int))
        e.bmask = 1
        while e.bmask < <uint32_t> capacity:
            e.bmask <<= 1
        e.buckets = <int32_t *> malloc(e.bmask * sizeof(int32_t))
        e.bmask -= 1
        e.msgs = <mmsghdr *> calloc(UDP_BATCH, sizeof(mmsghdr))
        e.iovs = <iovec *> calloc(UDP_BATCH, sizeof(iovec))
        e.names = <sockaddr_storage *> calloc(UDP_BATCH, sizeof(sockaddr_storage))
        e.bufs = <char *> malloc(UDP_BATCH * UDP_BUF)
        if (e.conns == NULL or e.freelist == NULL or e.pending == NULL or e.members == NULL
                or e.pools == NULL or e.vips == NULL or e.pipes == NULL or e.buckets == NULL
                or e.wheel == NULL or e.evs == NULL
                or e.msgs == NULL or e.iovs == NULL or e.names == NULL or e.bufs == NULL):
            raise MemoryError()
        for i in range(e.bmask + 1):
            e.buckets[i] = -1
        for i in range(WHEEL):
            e.wheel[i] = -1
        e.pipe_bytes = pipe_size if pipe_size > 0 else 65536
        e.pipe_size_req = pipe_size
        self.counters = counters
        if counters is not None:
            e.cbase = &counters.base
            e.cslots = &counters.nslots
        e.now = mono_ms()
        e.tick = e.now // tick_ms
        e.ep = epoll_create1(EPOLL_CLOEXEC)
        if e.ep < 0:
            raise OSError(errno, "epoll_create1")
        e.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if e.tfd < 0:
            raise OSError(errno, "timerfd_create")
        its.it_interval.tv_sec = tick_ms // 1000
        its.it_interval.tv_nsec = (tick_ms % 1000) * 1000000
        its.it_value = its.it_interval
        timerfd_settime(e.tfd, 0, &its, NULL)
        ev.events = EPOLLIN
        ev.data.u64 = TAG_TIMER
        epoll_ctl(e.ep, EPOLL_CTL_ADD, e.tfd, &ev)

    def __dealloc__(self):
        cdef Core *e = self.e
        cdef int i
        if e == NULL:
            return
        self._close_all_fds()
        if e.pools != NULL:
            for i in range(MAX_POOLS):
                if e.pools[i].used:
                    self._pool_free(i)
        free(e.conns); free(e.freelist); free(e.pending); free(e.members); free(e.pools)
        free(e.pipes); free(e.buckets); free(e.msgs); free(e.iovs); free(e.wheel); free(e.evs)
        free(e.names); free(e.bufs); free(e.vips)
        free(e)
        self.e = NULL

    # ---- the loop's entry points -------------------------------------------------------------

    def run(self):
        """Handle every ready event without blocking (the loop's reader callback). Returns the event count."""
        cdef int n
        with nogil:
            n = loop_once(self.e, 0)
        return n

    def wait(self, int timeout_ms):
        """Block up to timeout_ms for events, then handle them (tools and tests without a loop)."""
        cdef int n
        with nogil:
            n = loop_once(self.e, timeout_ms)
        return n

    def fileno(self):
        return self.e.ep

    # ---- configuration (Python side, on the loop's thread) ------------------------------------

    def set_member(self, int mid, int family, bytes packed, int port, int slot):
        """Member `mid`'s address (socket.AF_INET/AF_INET6, inet_pton bytes, port) and counter slot."""
        cdef EMember *m
        if not 0 <= mid < MAX_MEMBERS:
            raise ValueError("member id out of range")
        m = &self.e.members[mid]
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

    def pool_active(self, int pid):
        """TCP connections of this engine with a member socket in pool pid (its circuit breaker's count)."""
        return self.e.pools[pid].active if 0 <= pid < MAX_POOLS else 0

    def member_active(self, int mid):
        return self.e.members[mid].active if 0 <= mid < MAX_MEMBERS else 0

    cdef void _pool_free(self, int pid):
        cdef EPool *p = &self.e.pools[pid]
        sched_free(&p.prim)
        sched_free(&p.back)
        free(p.pmid)
        free(p.bmid)
        p.pmid = p.bmid = NULL
        p.used = 0

    def remove_pool(self, int pid):
        if 0 <= pid < MAX_POOLS and self.e.pools[pid].used:
            self._pool_free(pid)

    def set_pool(self, int pid, str algorithm, list members, bint five_tuple=False, int proxy=0,
                 double connect_timeout=3.0, int retries=2, int slot=0, int max_conn=0):
        """Replace pool `pid`. members: [(mid, weight, max_conn or 0, eligible, backup, key str)].
        max_conn: the circuit breaker's max_connections across the members (0: none); the
        count of open member connections survives the replacement.

        eligible: may take new flows (admin enabled and health up); drained members
        are not eligible but their open flows continue. Called on every apply and
        on every member state change.
        """
        cdef EPool *p
        cdef int algo = algo_code(algorithm)
        if not 0 <= pid < MAX_POOLS:
            raise ValueError("pool id out of range")
        for mm in members:
            if not 0 <= mm[0] < MAX_MEMBERS or not self.e.members[mm[0]].used:
                raise ValueError(f"member id {mm[0]} has no address")
        p = &self.e.pools[pid]
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
        p.max_conn = max_conn if max_conn > 0 else 0
        p.used = 1
        self._dispatch()            # members may have come up or had their limits raised

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
            s.m[i].active = &self.e.members[mid].active
            s.m[i].eligible = 1 if elig else 0
            s.m[i].ok = s.m[i].eligible
            keys[i] = <const uint8_t *> (<bytes> kb[i])
            lens[i] = len(kb[i])
        sched_build(s, keys, lens)
        free(keys)
        free(lens)

    def add_vip(self, int vid, int fd, str kind, int pool=-1, int slot=0, int max_conn=0,
                double idle_timeout=0.0, bint nodelay=True, bint keepalive=False, bint one_shot=False,
                bint queue=False, int max_queue=0, double queue_timeout=0.0,
                int keepalive_idle=0, int keepalive_interval=0, int keepalive_count=0):
        """Serve listening (tcp) or bound (udp) socket `fd` as VIP `vid`; max_conn is the UDP flow bound.

        The other arguments are those of update_vip.
        """
        cdef EVip *v
        cdef epoll_event ev
        if not 0 <= vid < MAX_VIPS:
            raise ValueError("vip id out of range")
        v = &self.e.vips[vid]
        if v.used:
            raise ValueError(f"vip id {vid} in use")
        memset(v, 0, sizeof(EVip))
        v.fd = fd
        v.kind = K_UDP if kind == "udp" else K_TCP
        v.used = 1
        v.qhead = v.qtail = -1
        self.update_vip(vid, pool, slot, max_conn, idle_timeout, nodelay, keepalive, one_shot,
                        queue, max_queue, queue_timeout, keepalive_idle, keepalive_interval, keepalive_count)
        ev.events = EPOLLIN
        ev.data.u64 = (<uint64_t> vid << 3) | (TAG_UDP_VIP if v.kind == K_UDP else TAG_LISTEN)
        if epoll_ctl(self.e.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
            v.used = 0
            raise OSError(errno, "epoll_ctl")
        v.accepting = 1

    def update_vip(self, int vid, int pool=-1, int slot=0, int max_conn=0, double idle_timeout=0.0,
                   bint nodelay=True, bint keepalive=False, bint one_shot=False,
                   bint queue=False, int max_queue=0, double queue_timeout=0.0,
                   int keepalive_idle=0, int keepalive_interval=0, int keepalive_count=0):
        """What new connections of the VIP see; open connections keep their pool, member and timer.

        tcp: max_conn is the VIP's limit (0: none). Over it, or when every member that could take
        a client is at its own limit, the client is refused, or with `queue` waits in the VIP's
        queue (at most max_queue clients, each at most queue_timeout seconds; 0: no limit) until
        a slot frees. nodelay sets TCP_NODELAY and keepalive SO_KEEPALIVE on client and member
        sockets; keepalive_idle/interval (seconds) and count set the probes (0: kernel default).
        Queued connections keep their place and timer when this changes.
        """
        cdef EVip *v = &self.e.vips[vid]
        v.pool = pool
        v.slot = slot
        v.max_conn = max_conn if max_conn > 0 else 0
        v.idle_ms = <uint32_t> (idle_timeout * 1000) if idle_timeout > 0 else 0
        v.nodelay = nodelay
        v.keepalive = keepalive
        v.one_shot = one_shot
        v.queue = queue
        v.max_queue = max_queue if max_queue > 0 else 0
        v.queue_ms = <uint32_t> (queue_timeout * 1000) if queue_timeout > 0 else 0
        v.ka_idle = keepalive_idle if keepalive_idle > 0 else 0
        v.ka_intvl = keepalive_interval if keepalive_interval > 0 else 0
        v.ka_cnt = keepalive_count if keepalive_count > 0 else 0
        self._dispatch()            # a raised limit lets queued clients in now

    cdef void _dispatch(self):
        """Serve what waits in the queues now (a limit or a member changed)."""
        if self.e.nqueued:
            self.e.kick = 1
            self.e.now = mono_ms()
            queue_drain(self.e)
            flush_pending(self.e)

    def vip_queued(self, int vid):
        """Connections of the VIP waiting in its queue."""
        return self.e.vips[vid].nqueued if 0 <= vid < MAX_VIPS and self.e.vips[vid].used else 0

    def stop_vip(self, int vid):
        """Stop reading the VIP's socket (the socket stays open: the supervisor owns it)."""
        cdef EVip *v = &self.e.vips[vid]
        if v.used and v.accepting:
            epoll_ctl(self.e.ep, EPOLL_CTL_DEL, v.fd, NULL)   # ENOENT while paused: fine
            v.accepting = 0

    def close_vip(self, int vid):
        """End every connection or flow of the VIP now."""
        cdef int32_t i
        for i in range(self.e.hwm):
            if self.e.conns[i].kind != K_FREE and self.e.conns[i].vip == vid:
                close_conn(self.e, i)
        flush_pending(self.e)

    def remove_vip(self, int vid):
        self.stop_vip(vid)
        self.close_vip(vid)
        self.e.vips[vid].used = 0

    def vip_active(self, int vid):
        return self.e.vips[vid].active if 0 <= vid < MAX_VIPS else 0

    def vip_accepting(self, int vid):
        return self.e.vips[vid].accepting if 0 <= vid < MAX_VIPS else 0

    def conn_list(self, int vid=-1, int mid=-1):
        """Open connections and flows: (id, vid, 'tcp'|'udp', family, client ip bytes, client port,
        mid, state, age seconds, bytes_in, bytes_out)."""
        cdef int32_t i
        cdef Conn *c
        cdef const uint8_t *ip
        cdef int n
        out = []
        for i in range(self.e.hwm):
            c = &self.e.conns[i]
            if c.kind == K_FREE or (vid >= 0 and c.vip != vid) or (mid >= 0 and c.mid != mid):
                continue
            n = addr_ip(&c.client, &ip)
            if c.kind == K_UDP:
                state = "flow"
            elif c.state == ST_QUEUED:
                state = "queued"
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
        for i in range(self.e.hwm):
            if self.e.conns[i].kind != K_FREE and self.e.conns[i].id == conn_id:
                close_conn(self.e, i)
                flush_pending(self.e)
                self._dispatch()
                return True
        return False

    def check(self):
        """Invariant check (tests, debugging): a list of violations, empty when the tables agree."""
        cdef int32_t i, ci, prev, s
        cdef Conn *c
        bad = []
        vip_n = {}
        mem_n = {}
        pool_n = {}
        in_wheel = set()
        for s in range(WHEEL):
            prev = -1
            ci = self.e.wheel[s]
            n = 0
            while ci >= 0:
                c = &self.e.conns[ci]
                if c.tw_slot != s or c.tw_prev != prev:
                    bad.append(f"wheel slot {s}: conn {ci} has slot {c.tw_slot} prev {c.tw_prev}, want {prev}")
                if c.kind == K_FREE:
                    bad.append(f"wheel slot {s}: conn {ci} is free")
                in_wheel.add(ci)
                prev = ci
                ci = c.tw_next
                n += 1
                if n > self.e.cap:
                    bad.append(f"wheel slot {s}: loop")
                    break
        for i in range(self.e.hwm):
            c = &self.e.conns[i]
            if c.kind == K_FREE:
                continue
            vip_n[c.vip] = vip_n.get(c.vip, 0) + 1
            if c.mid >= 0:
                mem_n[c.mid] = mem_n.get(c.mid, 0) + 1
                if c.kind == K_TCP:
                    pool_n[c.pool] = pool_n.get(c.pool, 0) + 1
            if c.tw_slot >= 0 and i not in in_wheel:
                bad.append(f"conn {i}: says wheel slot {c.tw_slot} but is not linked there")
            if c.kind == K_TCP:
                if c.cfd < 0:
                    bad.append(f"conn {i}: tcp without a client fd")
                if c.state == ST_ESTABLISHED and (c.sfd < 0 or c.mid < 0):
                    bad.append(f"conn {i}: established without a member socket")
            elif c.kind == K_UDP:
                if flow_find(self.e, c.vip, &c.client) != i:
                    bad.append(f"conn {i}: udp flow not found in the flow table")
        for i in range(MAX_VIPS):
            if self.e.vips[i].used and self.e.vips[i].active != vip_n.get(i, 0):
                bad.append(f"vip {i}: active {self.e.vips[i].active}, conns {vip_n.get(i, 0)}")
        queued_total = 0
        for i in range(MAX_VIPS):
            if not self.e.vips[i].used:
                continue
            n = 0
            prev = -1
            ci = self.e.vips[i].qhead
            while ci >= 0 and n <= self.e.cap:
                c = &self.e.conns[ci]
                if c.kind != K_TCP or c.state != ST_QUEUED or c.vip != i or c.q_prev != prev:
                    bad.append(f"vip {i} queue: conn {ci} is not a queued conn of this vip linked after {prev}")
                prev = ci
                ci = c.q_next
                n += 1
            if prev != self.e.vips[i].qtail:
                bad.append(f"vip {i} queue: tail {self.e.vips[i].qtail}, last linked {prev}")
            if n != self.e.vips[i].nqueued:
                bad.append(f"vip {i} queue: nqueued {self.e.vips[i].nqueued}, linked {n}")
            queued_total += n
        if queued_total != self.e.nqueued:
            bad.append(f"engine: nqueued {self.e.nqueued}, queued in vips {queued_total}")
        for i in range(self.e.hwm):
            c = &self.e.conns[i]
            if c.kind == K_TCP and c.state == ST_QUEUED and (c.sfd >= 0 or c.mid >= 0):
                bad.append(f"conn {i}: queued with a member socket")
        for i in range(MAX_MEMBERS):
            if self.e.members[i].used and self.e.members[i].active != mem_n.get(i, 0):
                bad.append(f"member {i}: active {self.e.members[i].active}, conns {mem_n.get(i, 0)}")
        for i in range(MAX_POOLS):
            if self.e.pools[i].used and self.e.pools[i].active != pool_n.get(i, 0):
                bad.append(f"pool {i}: active {self.e.pools[i].active}, tcp conns {pool_n.get(i, 0)}")
        return bad

    def stats(self):
        return {"conns": sum(1 for i in range(self.e.hwm) if self.e.conns[i].kind != K_FREE),
                "queued": self.e.nqueued,
                "table_high_water": self.e.hwm, "pipes_pooled": self.e.npipes, "capacity": self.e.cap}

    cdef void _close_all_fds(self):
        cdef int32_t i
        if self.e.conns != NULL:
            for i in range(self.e.hwm):
                if self.e.conns[i].kind != K_FREE:
                    close_conn(self.e, i)
            flush_pending(self.e)
        if self.e.pipes != NULL:
            for i in range(2 * self.e.npipes):
                close(self.e.pipes[i])
            self.e.npipes = 0
        if self.e.tfd >= 0:
            close(self.e.tfd)
            self.e.tfd = -1
        if self.e.ep >= 0:
            close(self.e.ep)
            self.e.ep = -1

    def close(self):
        """Close every connection, the pipes, the timer and the epoll fd (not the VIP sockets)."""
        self._close_all_fds()
