# C declarations only: sockets, addresses, multi-message I/O.
from libc.stdint cimport uint16_t, uint32_t

from posix.time cimport timespec

cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t

    struct sockaddr:
        sa_family_t sa_family

    struct sockaddr_storage:
        sa_family_t ss_family

    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags

    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len

    struct linger:
        int l_onoff
        int l_linger

    enum:
        AF_INET
        AF_INET6
        SOCK_STREAM
        SOCK_DGRAM
        SOCK_NONBLOCK
        SOCK_CLOEXEC
        SOL_SOCKET
        SO_ERROR
        SO_KEEPALIVE
        SO_LINGER
        SHUT_WR
        SHUT_RDWR
        MSG_NOSIGNAL
        MSG_DONTWAIT
        MSG_TRUNC
        MSG_PEEK

    # fd, or -1: EMFILE/ENFILE (out of fds), ENOBUFS/ENOMEM
    int socket(int domain, int type, int protocol)
    # fd, or -1: EAGAIN (queue empty), ECONNABORTED (client gone; try the next), EMFILE/ENFILE, EINTR
    int accept4(int fd, sockaddr *addr, socklen_t *addrlen, int flags)
    # 0, or -1: EINPROGRESS (non-blocking: wait for EPOLLOUT, then SO_ERROR), ECONNREFUSED, ENETUNREACH, EADDRNOTAVAIL
    int connect(int fd, const sockaddr *addr, socklen_t addrlen)
    # 0, or -1: EBADF, ENOPROTOOPT
    int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen)
    int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen)
    # 0, or -1: ENOTCONN (peer already gone; harmless here)
    int shutdown(int fd, int how)
    # 0, or -1: EBADF
    int getsockname(int fd, sockaddr *addr, socklen_t *addrlen)
    # bytes sent, or -1: EAGAIN (buffer full), EPIPE/ECONNRESET (peer gone), ECONNREFUSED (UDP: an earlier ICMP)
    ssize_t send(int fd, const void *buf, size_t n, int flags)
    # bytes received (0: peer's FIN), or -1: EAGAIN (nothing queued), ECONNRESET, EINTR
    ssize_t recv(int fd, void *buf, size_t n, int flags)
    # messages received (>= 1), or -1: EAGAIN (nothing queued), ECONNREFUSED (UDP: ICMP port unreachable), EINTR
    int recvmmsg(int fd, mmsghdr *msgs, unsigned int vlen, int flags, timespec *timeout)
    # messages sent (may be fewer than vlen), or -1: EAGAIN (first one would block), EINTR
    int sendmmsg(int fd, mmsghdr *msgs, unsigned int vlen, int flags)

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr

    struct sockaddr_in:
        sa_family_t sin_family
        uint16_t sin_port
        in_addr sin_addr

    struct in6_addr:
        unsigned char s6_addr[16]

    struct sockaddr_in6:
        sa_family_t sin6_family
        uint16_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id

    enum:
        IPPROTO_TCP
        IPPROTO_UDP

    uint16_t htons(uint16_t)     # void; no errors
    uint16_t ntohs(uint16_t)     # void; no errors

cdef extern from "<netinet/tcp.h>" nogil:
    enum:
        TCP_NODELAY
        TCP_KEEPIDLE        # seconds idle before the first probe (1..32767)
        TCP_KEEPINTVL       # seconds between probes (1..32767)
        TCP_KEEPCNT         # unanswered probes before the connection is dropped (1..127)

cdef extern from "<arpa/inet.h>" nogil:
    # dst, or NULL: ENOSPC (buffer too small)
    const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)
