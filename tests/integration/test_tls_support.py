"""Not tests: what the tls integration tests share (start adcd, wait until its API and VIPs answer)."""
from __future__ import annotations

from harness import Adcd


def start_adcd(tmp, text: str, name: str = "tls.yaml", **kw) -> Adcd:
    """adcd on a TLS config; the harness waits until its API and every TCP VIP answer."""
    return Adcd(tmp, text, name=name, **kw)


class EchoBackend:
    """An HTTP/1.1 member that answers JSON {name, path, headers} (lower-case names), optionally over TLS."""

    def __init__(self, ip: str, port: int, name: str, ssl_context=None):
        import http.server
        import json
        import threading

        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = json.dumps({"name": name, "path": self.path,
                                   "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(self):
                sock, addr = super().get_request()
                if ssl_context is not None:
                    sock.settimeout(5)
                    try:
                        sock = ssl_context.wrap_socket(sock, server_side=True)
                    except (OSError, ValueError) as e:
                        outer.handshake_errors.append(str(e))
                        sock.close()
                        raise OSError("handshake failed") from None
                    sock.settimeout(None)
                return sock, addr

        self.handshake_errors: list[str] = []
        self.server = S((ip, port), H)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
