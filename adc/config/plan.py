"""adc.config.plan: the compiled form of a config that workers run, plain data only.

The supervisor compiles a validated Config into a Plan; workers never see YAML
or pydantic. Every object that has counters carries the index of its slot in
the shared-memory counter region (adc.control.counters), stable across
revisions for the same object, so counters survive an apply.
"""
from __future__ import annotations

from typing import Optional

import msgspec


class MemberPlan(msgspec.Struct, kw_only=True):
    key: str                      # "127.0.0.1:9001": how operators and the API name a member
    address: str
    port: int
    weight: int = 1
    backup: bool = False
    admin: str = "enabled"        # enabled | drain | maint (operator's choice)
    health: str = "up"            # up | down (monitors' verdict); no monitor: up
    max_connections: Optional[int] = None
    slot: int = 0


class UpstreamTlsPlan(msgspec.Struct, kw_only=True):
    """TLS to a pool's members (adc.tls.upstream); paths absolute."""
    verify: bool = True
    ca: Optional[str] = None
    name: Optional[str] = None
    sni: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    min_version: str = "1.2"
    version: str = ""                 # sha256 of the files: a renewed CA or client certificate is a change


class CircuitBreakerPlan(msgspec.Struct, kw_only=True):
    """Per-worker pool limits; None: no limit."""
    max_connections: Optional[int] = None
    max_pending: Optional[int] = None
    max_requests: Optional[int] = None


class PoolPlan(msgspec.Struct, kw_only=True):
    name: str
    algorithm: str = "round_robin"
    members: list[MemberPlan] = []
    hash_key: str = "source"
    proxy_protocol: Optional[str] = None
    slow_start: float = 0.0
    connect_timeout: float = 3.0
    retries: int = 2
    slot: int = 0
    tls: Optional[UpstreamTlsPlan] = None
    circuit_breaker: Optional[CircuitBreakerPlan] = None


class HeaderOpsPlan(msgspec.Struct, kw_only=True):
    add: list[tuple[str, str]] = []
    set: list[tuple[str, str]] = []
    remove: list[str] = []


class RedirectPlan(msgspec.Struct, kw_only=True):
    status: int = 302
    scheme: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None
    path: Optional[str] = None
    prefix: Optional[str] = None
    keep_query: bool = True


class FixedResponsePlan(msgspec.Struct, kw_only=True):
    status: int = 200
    body: str = ""
    content_type: str = "text/plain"
    headers: list[tuple[str, str]] = []


class RewritePlan(msgspec.Struct, kw_only=True):
    strip_prefix: Optional[str] = None
    path_regex: Optional[str] = None
    path_replace: str = ""


class PersistencePlan(msgspec.Struct, kw_only=True):
    type: str                     # cookie | source | header | cookie_hash
    cookie: str = "ADCSRV"
    mode: str = "insert"          # insert | rewrite | prefix
    header: Optional[str] = None
    secret: str = ""              # HMAC key of cookie persistence
    max_age: Optional[float] = None


class RoutePlan(msgspec.Struct, kw_only=True):
    name: str
    pool: Optional[str] = None
    host: Optional[str] = None
    path: Optional[str] = None
    path_prefix: Optional[str] = None
    path_regex: Optional[str] = None
    methods: Optional[list[str]] = None
    headers: Optional[dict[str, Optional[str]]] = None
    query: Optional[dict[str, Optional[str]]] = None
    # L7 actions and edits (adc.l7); a route with none of pool/split/redirect/respond uses default_pool
    split: Optional[list[tuple[str, int]]] = None          # (pool, weight)
    redirect: Optional[RedirectPlan] = None
    respond: Optional[FixedResponsePlan] = None
    rewrite: Optional[RewritePlan] = None
    request_headers: Optional[HeaderOpsPlan] = None
    response_headers: Optional[HeaderOpsPlan] = None
    persistence: Optional[PersistencePlan] = None


class TlsPlan(msgspec.Struct, kw_only=True):
    # (name, cert path, key path, chain path or None); the first is the default
    certificates: list[tuple[str, str, str, Optional[str]]] = []
    profile: str = "intermediate"
    client_auth: str = "none"
    ca: Optional[str] = None
    # adc.tls: custom profile settings, ALPN, tickets, client-certificate headers
    min_version: Optional[str] = None
    ciphers: Optional[str] = None
    groups: Optional[list[str]] = None
    alpn: list[str] = msgspec.field(default_factory=lambda: ["http/1.1"])
    session_tickets: bool = True
    ticket_rotation: float = 3600.0
    ticket_secret: bytes = b""        # this adcd's, so every worker encrypts tickets alike
    client_headers: bool = True
    version: str = ""                 # sha256 of the files' contents: a re-imported file is a change


class HttpPlan(msgspec.Struct, kw_only=True):
    """L7 settings of an http/https VIP (adc.l7); defaults are the schema's."""
    header_timeout: float = 10.0
    keepalive_timeout: float = 60.0
    connect_timeout: Optional[float] = None
    response_timeout: float = 60.0
    total_timeout: Optional[float] = None
    tunnel_timeout: float = 3600.0
    max_request_line: int = 8192
    max_header_size: int = 32768
    max_header_count: int = 100
    max_body_size: Optional[int] = None
    x_forwarded: bool = True
    forwarded: bool = False
    request_id: Optional[str] = "X-Request-ID"
    request_headers: Optional[HeaderOpsPlan] = None
    response_headers: Optional[HeaderOpsPlan] = None
    error_pages: dict[int, str] = {}       # status -> body (read from the file at compile time)
    persistence: Optional[PersistencePlan] = None
    retry_on: list[str] = msgspec.field(default_factory=lambda: ["connect"])
    max_idle_per_member: int = 64
    member_idle_timeout: float = 15.0


class KeepalivePlan(msgspec.Struct, kw_only=True):
    idle: int = 0           # seconds; 0: the kernel's default
    interval: int = 0
    count: int = 0


class VipPlan(msgspec.Struct, kw_only=True):
    name: str
    protocol: str                 # tcp | udp | http | https
    address: str
    port: int
    listener: str                 # key of the listening sockets: "tcp:127.0.0.1:8080"
    default_pool: Optional[str] = None
    routes: list[RoutePlan] = []
    tls: Optional[TlsPlan] = None
    max_connections: Optional[int] = None
    limit_action: str = "refuse"                # tcp: refuse | queue (over max_connections of VIP or members)
    max_queue: int = 1024
    queue_timeout: float = 30.0                 # 0: no limit
    tcp_nodelay: bool = True
    tcp_keepalive: Optional[KeepalivePlan] = None   # None: off
    idle_timeout: Optional[float] = None
    udp_flow_limit: int = 65536
    udp_one_shot: bool = False
    http: Optional[HttpPlan] = None
    slot: int = 0
    sni_routes: list[tuple[str, str]] = []     # tcp VIPs: (server name or *.domain, pool), adc.tls.passthrough


class AccessLogPlan(msgspec.Struct, kw_only=True):
    path: str = "stderr"
    format: str = "haproxy"


class Plan(msgspec.Struct, kw_only=True):
    revision: int
    vips: list[VipPlan] = []
    pools: list[PoolPlan] = []
    drain_timeout: float = 30.0
    access_log: Optional[AccessLogPlan] = None


def listener_key(protocol: str, address: str, port: int) -> str:
    """Sockets are shared by protocol family, not VIP name: http and https are TCP."""
    transport = "udp" if protocol == "udp" else "tcp"
    return f"{transport}:{address}:{port}"
