# C declarations only: epoll(7).
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64

    struct epoll_event:
        uint32_t events
        epoll_data_t data

    enum:
        EPOLLIN
        EPOLLOUT
        EPOLLRDHUP
        EPOLLERR
        EPOLLHUP
        EPOLLET
        EPOLL_CTL_ADD
        EPOLL_CTL_MOD
        EPOLL_CTL_DEL
        EPOLL_CLOEXEC

    # fd, or -1: EMFILE/ENFILE/ENOMEM
    int epoll_create1(int flags)
    # 0, or -1: EEXIST (ADD twice), ENOENT (MOD/DEL unknown fd), ENOMEM, ENOSPC (max_user_watches)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    # number of ready events (0 on timeout), or -1: EINTR (signal; retry), EBADF
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
