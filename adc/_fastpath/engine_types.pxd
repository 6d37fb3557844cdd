# The engine's C types: the state of one worker's L4 data path, shared by
# engine.pyx (loop, timers, Python API), conntrack.pyx (the connection and
# flow tables), tcp.pyx and udp.pyx. Plain structs, so every function can take
# a Core* and run without the GIL.
from libc.stdint cimport uint8_t, int32_t, uint32_t, uint64_t
from adc._fastpath.includes.socket cimport sockaddr_storage, socklen_t, mmsghdr, iovec
from adc._fastpath.includes.epoll cimport epoll_event
from adc._fastpath.sched cimport Sched

cdef enum:
    K_FREE = 0
    K_TCP = 1
    K_UDP = 2

cdef enum:
    ST_CONNECTING = 1
    ST_ESTABLISHED = 2
    ST_QUEUED = 3             # accepted, waiting in its VIP's queue for a free slot (no member socket)

# epoll data word: (index << 3) | tag
cdef enum:
    TAG_CLIENT = 0
    TAG_SERVER = 1
    TAG_LISTEN = 2
    TAG_TIMER = 3
    TAG_UDP_UP = 4
    TAG_UDP_VIP = 5

cdef enum:
    NEV = 256                 # events per epoll_wait
    ACCEPT_BATCH = 64         # accepts per listener event: fairness with established traffic
    WHEEL = 4096
    WHEEL_MASK = 4095
    UDP_BATCH = 32
    UDP_BUF = 65536           # the largest datagram (65,507 bytes of IPv4 payload) fits
    MAX_MEMBERS = 65536
    MAX_POOLS = 4096
    MAX_VIPS = 1024
    MAX_TRIES = 8

cdef struct EMember:
    sockaddr_storage addr
    socklen_t addrlen
    uint32_t active           # flows of this engine to the member (the schedulers read it)
    int32_t slot              # counter slot
    uint8_t used

cdef struct EPool:
    Sched prim
    Sched back
    int32_t *pmid             # engine member id of each scheduler index
    int32_t *bmid
    uint8_t used
    uint8_t five_tuple        # hash the 5-tuple instead of the client address
    uint8_t proxy             # 0, 1 or 2: PROXY protocol version sent to members
    uint8_t retries
    uint32_t connect_ms
    int32_t slot
    uint32_t max_conn         # circuit breaker max_connections across the members; 0: no limit
    uint32_t active           # TCP connections of this engine with a member socket of the pool (kept by set_pool)

cdef struct EVip:
    int fd
    uint8_t kind              # K_TCP or K_UDP
    uint8_t used
    uint8_t accepting
    uint8_t nodelay
    uint8_t keepalive
    uint8_t one_shot
    uint8_t queue             # over a limit: 0 refuse, 1 wait in the queue
    int32_t pool
    int32_t slot
    uint32_t max_conn         # 0: no limit (UDP: the flow table bound)
    uint32_t active           # connections of the VIP, queued ones included
    uint32_t max_queue        # queue bound (queue mode)
    uint32_t queue_ms         # how long a connection may wait in the queue; 0: no limit
    uint32_t nqueued
    int32_t qhead, qtail      # FIFO of queued connections (Conn.q_prev/q_next), -1: empty
    int32_t ka_idle, ka_intvl, ka_cnt    # TCP keepalive probes (seconds, count); 0: the kernel's default
    uint32_t idle_ms          # 0: none
    uint64_t paused_until     # out of fds: accept paused until then (ms)

cdef struct Conn:
    uint64_t id
    uint8_t kind
    uint8_t state
    uint8_t c_rd, c_wr, s_rd, s_wr       # readiness learnt from edge-triggered events
    uint8_t c_eof, s_eof                 # read side saw EOF
    uint8_t c_shut, s_shut               # we shut the write side toward the server / the client
    uint8_t ntried
    uint8_t counted                      # member counters include this connection
    int cfd, sfd
    int pcs[2]                           # pipe client -> server (-1: none held)
    int psc[2]                           # pipe server -> client
    uint32_t ncs, nsc                    # bytes sitting in each pipe
    int32_t vip, pool, mid
    int32_t tried[8]                     # MAX_TRIES
    uint64_t bytes_in, bytes_out         # client -> member, member -> client
    uint64_t start_ms, last_ms
    uint32_t timeout_ms
    int32_t tw_prev, tw_next             # timer wheel list; tw_slot < 0: not in the wheel
    int32_t tw_slot
    int32_t hnext                        # UDP flow hash chain
    int32_t q_prev, q_next               # the VIP's queue (state ST_QUEUED)
    uint32_t hbucket
    sockaddr_storage client
    socklen_t clientlen

cdef struct Core:
    int ep                     # the epoll set the worker's loop watches
    int tfd                    # timerfd: the wheel's tick
    Conn *conns                # the connection table (calloc: untouched entries cost no memory)
    int32_t cap, hwm, nfree, npending
    int32_t *freelist
    int32_t *pending           # freed during this batch of events: reused only after it
    EMember *members
    EPool *pools
    EVip *vips
    int32_t *wheel             # WHEEL list heads
    uint64_t now               # ms, CLOCK_MONOTONIC, refreshed per batch
    uint64_t tick
    uint32_t tick_ms
    uint64_t next_id
    uint32_t nqueued           # queued connections of all VIPs: 0 means nothing to dispatch
    uint8_t kick               # a VIP or member slot freed (or a limit changed): dispatch the queues
    int *pipes                 # pooled empty pipe pairs
    int32_t npipes, pipecap
    uint32_t pipe_bytes        # what one pipe holds
    int pipe_size_req          # F_SETPIPE_SZ asked for new pipes, 0: the default
    uint64_t **cbase           # &CounterRegion.base (NULL: no counters)
    Py_ssize_t *cslots         # &CounterRegion.nslots
    int32_t *buckets           # UDP flow table heads
    uint32_t bmask
    mmsghdr *msgs              # UDP batch buffers
    iovec *iovs
    char *bufs
    sockaddr_storage *names
    epoll_event *evs
