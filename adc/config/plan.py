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


class TlsPlan(msgspec.Struct, kw_only=True):
    # (name, cert path, key path, chain path or None); the first is the default
    certificates: list[tuple[str, str, str, Optional[str]]] = []
    profile: str = "intermediate"
    client_auth: str = "none"
    ca: Optional[str] = None


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
    idle_timeout: Optional[float] = None
    udp_flow_limit: int = 65536
    udp_one_shot: bool = False
    slot: int = 0


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
