"""perf.configs: equivalent configurations of adc, HAProxy and NGINX, and of the backends.

Every proxy gets the same listeners on the same ports (run one at a time),
one worker/thread, no access log, long idle timeouts (the memory scenarios
hold 10,000 idle connections), TLS 1.2+1.3 with Mozilla's intermediate
ciphers, keep-alive connections to the HTTP backend.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

HOST = "127.0.0.1"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

# Mozilla "intermediate" (TLS 1.2 part; TLS 1.3 suites are OpenSSL's defaults)
INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
SMALL_BODY = "x" * 128  # the "small response" body


@dataclass(frozen=True)
class Ports:
    base: int = 23100

    # backends (core 1)
    @property
    def be_http(self): return self.base + 1       # nginx: /small (128 B), /1m (1 MiB file)
    @property
    def be_tcp_close(self): return self.base + 2  # nginx stream: writes "x" and closes
    @property
    def be_iperf(self): return self.base + 3      # iperf3 -s
    @property
    def be_udp(self): return self.base + 4        # loadgen udpecho

    # VIPs of the proxy under test (core 0)
    @property
    def http(self): return self.base + 10
    @property
    def tcp_bulk(self): return self.base + 11
    @property
    def tcp_conn(self): return self.base + 12
    @property
    def udp(self): return self.base + 13
    @property
    def https_ecdsa(self): return self.base + 14
    @property
    def https_rsa(self): return self.base + 15
    @property
    def tcp_idle(self): return self.base + 16
    @property
    def http_idle(self): return self.base + 17  # the L7 memory test: apart from the load tests' TIME_WAITs

    def backend_tcp(self):
        return [self.be_http, self.be_tcp_close, self.be_iperf]

    def vip_tcp(self):
        return [self.http, self.tcp_bulk, self.tcp_conn, self.https_ecdsa, self.https_rsa, self.tcp_idle,
                self.http_idle]


def write(path: str, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return path


def make_certs(d: str) -> dict:
    """Self-signed ECDSA P-256 and RSA 2048 certificates (PEM), and HAProxy's cert+key bundles."""
    out = {}
    for kind, newkey in (("ecdsa", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]),
                         ("rsa", ["-newkey", "rsa:2048"])):
        cert, key = os.path.join(d, f"{kind}.pem"), os.path.join(d, f"{kind}.key")
        if not (os.path.exists(cert) and os.path.exists(key)):
            subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-days", "30",
                            "-subj", "/CN=bench.adc.test", "-addext", "subjectAltName=DNS:bench.adc.test",
                            "-keyout", key, "-out", cert], check=True, capture_output=True)
        bundle = os.path.join(d, f"{kind}.bundle.pem")
        with open(bundle, "w") as f:
            f.write(open(cert).read() + open(key).read())
        out[kind] = {"cert": cert, "key": key, "bundle": bundle}
    return out


def make_docroot(d: str) -> str:
    www = os.path.join(d, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "1m"), "wb") as f:
        f.write(os.urandom(1 << 20))
    return www


def _nginx_common(prefix: str, nofile: int) -> str:
    os.makedirs(prefix, exist_ok=True)
    return f"""daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
load_module {STREAM_MODULE};
events {{ worker_connections {nofile - 100}; use epoll; }}
"""


def _nginx_http_common(prefix: str) -> str:
    return f"""    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_header_timeout 300s;
"""


def nginx_backend(d: str, ports: Ports, www: str, nofile: int) -> str:
    prefix = os.path.join(d, "nginx-backend")
    text = _nginx_common(prefix, nofile) + f"""http {{
{_nginx_http_common(prefix)}    sendfile on;
    tcp_nopush on;
    open_file_cache max=16;
    server {{
        listen {HOST}:{ports.be_http} backlog=4096;
        root {www};
        location = /small {{ default_type text/plain; return 200 "{SMALL_BODY}"; }}
    }}
}}
stream {{
    server {{ listen {HOST}:{ports.be_tcp_close} backlog=4096; return "x"; }}
}}
"""
    return write(os.path.join(d, "nginx-backend.conf"), text)


def nginx_proxy(d: str, ports: Ports, certs: dict, nofile: int) -> str:
    prefix = os.path.join(d, "nginx-proxy")
    tls = f"""        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {INTERMEDIATE_CIPHERS};
        ssl_prefer_server_ciphers off;
        ssl_session_cache off;
"""
    proxy = """        location / {
            proxy_pass http://web;
        }
"""
    text = _nginx_common(prefix, nofile) + f"""http {{
{_nginx_http_common(prefix)}    upstream web {{ server {HOST}:{ports.be_http}; keepalive 64; }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    # stream big answers through the buffers, never to temp files on disk (as HAProxy does)
    proxy_max_temp_file_size 0;
    server {{
        listen {HOST}:{ports.http} backlog=4096;
        listen {HOST}:{ports.http_idle} backlog=4096;
{proxy}    }}
    server {{
        listen {HOST}:{ports.https_ecdsa} ssl backlog=4096;
        ssl_certificate {certs['ecdsa']['cert']};
        ssl_certificate_key {certs['ecdsa']['key']};
{tls}{proxy}    }}
    server {{
        listen {HOST}:{ports.https_rsa} ssl backlog=4096;
        ssl_certificate {certs['rsa']['cert']};
        ssl_certificate_key {certs['rsa']['key']};
{tls}{proxy}    }}
}}
stream {{
    proxy_timeout 300s;
    server {{ listen {HOST}:{ports.tcp_bulk} backlog=4096; proxy_pass {HOST}:{ports.be_iperf}; }}
    server {{ listen {HOST}:{ports.tcp_conn} backlog=4096; proxy_pass {HOST}:{ports.be_tcp_close}; }}
    server {{ listen {HOST}:{ports.tcp_idle} backlog=4096; proxy_pass {HOST}:{ports.be_http}; }}
    # a flow per client address, kept while idle for 30 s (adc's default UDP flow timeout)
    server {{ listen {HOST}:{ports.udp} udp; proxy_pass {HOST}:{ports.be_udp}; proxy_timeout 30s; }}
}}
"""
    return write(os.path.join(d, "nginx-proxy.conf"), text)


def haproxy_proxy(d: str, ports: Ports, certs: dict, nofile: int, idle_conns: int) -> str:
    # HAProxy reserves 2 fds per connection and 2 per splice pipe, and refuses to start if
    # that exceeds the open-files limit: size both to the limit the harness runs under
    maxconn = idle_conns + 200
    maxpipes = max(64, min(maxconn // 4, (nofile - 2 * maxconn - 200) // 2))
    # the L7 memory test needs maxconn above half the limit: let HAProxy start with a warning
    # (it then uses one descriptor per idle client connection, as the others do)
    strict = "" if 2 * maxconn + 2 * maxpipes + 200 <= nofile else "    no strict-limits\n"
    text = f"""global
    nbthread 1
    maxconn {maxconn}
    maxpipes {maxpipes}
{strict}    ssl-default-bind-ciphers {INTERMEDIATE_CIPHERS}
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    maxconn {maxconn}
    backlog 4096

frontend http
    mode http
    bind {HOST}:{ports.http}
    bind {HOST}:{ports.http_idle}
    default_backend web

frontend https_ecdsa
    mode http
    bind {HOST}:{ports.https_ecdsa} ssl crt {certs['ecdsa']['bundle']} alpn http/1.1
    default_backend web

frontend https_rsa
    mode http
    bind {HOST}:{ports.https_rsa} ssl crt {certs['rsa']['bundle']} alpn http/1.1
    default_backend web

backend web
    mode http
    server s1 {HOST}:{ports.be_http}

listen tcp_bulk
    mode tcp
    option splice-auto
    bind {HOST}:{ports.tcp_bulk}
    server s1 {HOST}:{ports.be_iperf}

listen tcp_conn
    mode tcp
    option splice-auto
    bind {HOST}:{ports.tcp_conn}
    server s1 {HOST}:{ports.be_tcp_close}

listen tcp_idle
    mode tcp
    option splice-auto
    bind {HOST}:{ports.tcp_idle}
    server s1 {HOST}:{ports.be_http}
"""
    return write(os.path.join(d, "haproxy.cfg"), text)


def adc_proxy(d: str, ports: Ports, certs: dict, with_tls: bool = True, with_udp: bool = True) -> str:
    """adc.yaml in the format of shared/examples/adc.yaml and tls.yaml."""
    state = os.path.join(d, "adc", "state")
    os.makedirs(state, exist_ok=True)
    lines = [
        "global:",
        "  workers: 1",
        f"  admin_socket: {d}/adc/adcd.sock",
        f"  state_dir: {state}",
        "  log_level: warning",
    ]
    if with_tls:
        lines += ["certificates:"]
        for kind in ("ecdsa", "rsa"):
            lines += [f"  - name: {kind}", f"    cert: {certs[kind]['cert']}", f"    key: {certs[kind]['key']}"]
    lines += ["pools:"]
    pools = [("web", ports.be_http), ("iperf", ports.be_iperf), ("tcpclose", ports.be_tcp_close)]
    if with_udp:
        pools.append(("udpecho", ports.be_udp))
    for name, port in pools:
        lines += [f"  - name: {name}", "    algorithm: round_robin", "    members:",
                  f"      - {{address: {HOST}, port: {port}}}"]
    vips = [("http", ports.http, "http", "web"), ("http-idle", ports.http_idle, "http", "web"),
            ("tcp-bulk", ports.tcp_bulk, "tcp", "iperf"),
            ("tcp-conn", ports.tcp_conn, "tcp", "tcpclose"), ("tcp-idle", ports.tcp_idle, "tcp", "web")]
    if with_udp:
        vips.append(("udp", ports.udp, "udp", "udpecho"))
    if with_tls:
        vips += [("https-ecdsa", ports.https_ecdsa, "https", "web"), ("https-rsa", ports.https_rsa, "https", "web")]
    lines += ["vips:"]
    for name, port, proto, pool in vips:
        lines += [f"  - name: {name}", f"    address: {HOST}", f"    port: {port}",
                  f"    protocol: {proto}", f"    default_pool: {pool}"]
        if proto != "udp":
            lines += ["    idle_timeout: 300s"]
        if proto == "https":
            lines += ["    tls:", f"      certificates: [{name.split('-')[1]}]", "      profile: intermediate"]
    return write(os.path.join(d, "adc.yaml"), "\n".join(lines) + "\n")
