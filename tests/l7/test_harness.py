"""The test harness itself: a member left for the garbage collector closes fds it no longer owns."""

import errno
import gc
import socket

from l7harness import FastBackend


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError as e:
        return e.errno == errno.ECONNREFUSED
    return False


def test_fast_backend_releases_its_listening_fd_at_exit():
    # Left to the garbage collector, the listening fd is closed twice (by the loop's server
    # handle and by the socket object), and the second close hits whatever socket another
    # test opened with that number in between: EBADF far from the cause.
    with FastBackend("A") as a:
        with socket.create_connection(("127.0.0.1", a.port), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            assert c.recv(4096).endswith(b"\r\n\r\nA")
    assert a.sock.fileno() == -1
    assert a.loop.is_closed()
    assert _refused(a.port)
    t = socket.socket()
    try:
        del a
        gc.collect()
        t.getsockname()             # still ours
    finally:
        t.close()
