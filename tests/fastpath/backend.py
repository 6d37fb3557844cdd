"""Test backends, each its own process: tcp echo (optionally greeting with its name first) and udp echo.

usage: backend.py tcp|udp NAME [--greet] ; prints the bound port on stdout.
A tcp echo carries half-close: after the client's EOF it sends what is left and shuts its write side.
"""
import asyncio
import socket
import sys


class Echo(asyncio.Protocol):
    def __init__(self, greet):
        self.greet = greet

    def connection_made(self, t):
        self.t = t
        if self.greet:
            t.write(self.greet)

    def data_received(self, data):
        self.t.write(data)

    def pause_writing(self):
        self.t.pause_reading()        # flow control: never buffer more than the transport's high-water mark

    def resume_writing(self):
        self.t.resume_reading()

    def eof_received(self):
        return False          # close after the buffered bytes are written, i.e. carry the FIN back


async def main():
    _kind, name = sys.argv[1], sys.argv[2]
    greet = f"{name}\n".encode() if "--greet" in sys.argv else None
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: Echo(greet), "127.0.0.1", 0, backlog=4096)
    port = srv.sockets[0].getsockname()[1]
    print(port, flush=True)
    await asyncio.Event().wait()


def udp_echo():
    # a plain loop, not uvloop: uvloop drops zero-length datagrams, which the tests send
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1], flush=True)
    while True:
        data, addr = s.recvfrom(65536)
        s.sendto(data, addr)


if __name__ == "__main__":
    if sys.argv[1] == "udp":
        udp_echo()
    else:
        import uvloop
        uvloop.run(main())
