# C declarations only: pipes and splice(2), the zero-copy path between two sockets.
from posix.types cimport off_t

cdef extern from "<fcntl.h>" nogil:
    enum:
        SPLICE_F_MOVE
        SPLICE_F_NONBLOCK
        F_SETPIPE_SZ
        F_GETPIPE_SZ
        O_NONBLOCK
        O_CLOEXEC

    # bytes moved; 0: the input socket's peer closed (EOF);
    # -1: EAGAIN (input empty, or the pipe full, or the output socket full: wait for the matching epoll event),
    #     EPIPE/ECONNRESET (the output's peer is gone), EINTR
    ssize_t splice(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len, unsigned int flags)
    # returns the new capacity, or -1: EPERM (above /proc/sys/fs/pipe-max-size), EBUSY
    int fcntl(int fd, int cmd, ...)

cdef extern from "<unistd.h>" nogil:
    # 0, or -1: EMFILE/ENFILE
    int pipe2(int pipefd[2], int flags)
    # 0, or -1: EBADF; EINTR still closes the fd on Linux, never retry
    int close(int fd)
    # bytes read, 0 at EOF, -1: EAGAIN, EINTR
    ssize_t read(int fd, void *buf, size_t n)
