# C declarations only: timerfd(2) (the engine's clock tick inside its epoll set) and the monotonic clock.
from posix.time cimport timespec

cdef extern from "<sys/timerfd.h>" nogil:
    struct itimerspec:
        timespec it_interval
        timespec it_value

    enum:
        TFD_NONBLOCK
        TFD_CLOEXEC

    # fd, or -1: EMFILE/ENFILE, ENOMEM
    int timerfd_create(int clockid, int flags)
    # 0, or -1: EINVAL (bad interval)
    int timerfd_settime(int fd, int flags, const itimerspec *new_value, itimerspec *old_value)

cdef extern from "<time.h>" nogil:
    enum:
        CLOCK_MONOTONIC
    # 0; no errors for CLOCK_MONOTONIC (served by the vDSO, no system call)
    int clock_gettime(int clk, timespec *tp)
