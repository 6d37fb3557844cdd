"""adc.control.metrics: Prometheus exposition of the counters the workers keep in shared memory.

Read at scrape time from the same regions `adcctl stats` reads, so the data
path sends nothing for accounting. Other parts of the supervisor (health,
certificates) add their families through `extra` collectors.
"""
from __future__ import annotations

from typing import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.exposition import generate_latest

# counter field -> (metric suffix, help, gauge?); _VIP_ONLY fields have no member series
_FIELDS = {
    "conn_total": ("connections", "connections (TCP) or flows (UDP) accepted", False),
    "conn_active": ("connections_active", "connections or flows open now", True),
    "bytes_in": ("bytes_in", "bytes received from clients", False),
    "bytes_out": ("bytes_out", "bytes sent to clients", False),
    "requests": ("requests", "HTTP requests", False),
    "errors": ("errors", "failures (connect failures, 5xx made by adc, protocol errors)", False),
    "refused": ("refused", "connections or flows refused at a limit", False),
    "timeouts": ("timeouts", "connections closed by a timeout", False),
    "resp_5xx": ("responses_5xx", "HTTP responses with a 5xx status from members", False),
    "tls_handshakes": ("tls_handshakes", "TLS handshakes completed (https)", False),
    "tls_resumed": ("tls_resumed", "TLS handshakes that resumed a session (https)", False),
    "tls_handshake_failures": ("tls_handshake_failures",
                               "TLS handshakes failed by the client: an alert or protocol error, "
                               "or not done within the header timeout (https)", False),
}
_VIP_ONLY = frozenset(("tls_handshakes", "tls_resumed", "tls_handshake_failures"))


class _Collector:
    def __init__(self, sup, extra: list[Callable[[], Iterable[Metric]]]):
        self.sup = sup
        self.extra = extra

    def collect(self):
        stats = self.sup.stats()
        for scope, labels in (("vip", ("vip",)), ("member", ("pool", "member"))):
            rows = stats["vips"] if scope == "vip" else stats["members"]
            for field, (suffix, helptext, gauge) in _FIELDS.items():
                if scope == "member" and field in _VIP_ONLY:
                    continue
                name = f"adc_{scope}_{suffix}"
                fam = (GaugeMetricFamily(name, f"{scope}: {helptext}", labels=labels) if gauge
                       else CounterMetricFamily(name, f"{scope}: {helptext}", labels=labels))
                for key, counters in rows.items():
                    fam.add_metric(key.split("/", 1) if scope == "member" else [key], counters[field])
                yield fam
        up = GaugeMetricFamily("adc_member_up", "1 when the member may take new flows", labels=("pool", "member"))
        for p in self.sup.plan.pools if self.sup.plan else []:
            for mp in p.members:
                up.add_metric([p.name, mp.key], 1.0 if mp.admin == "enabled" and mp.health == "up" else 0.0)
        yield up
        rev = GaugeMetricFamily("adc_config_revision", "the running config revision")
        rev.add_metric([], self.sup.revision)
        yield rev
        workers = GaugeMetricFamily("adc_workers_alive", "worker processes running")
        workers.add_metric([], sum(1 for w in self.sup.workers if w.alive))
        yield workers
        restarts = CounterMetricFamily("adc_worker_restarts", "worker respawns", labels=("slot",))
        for w in self.sup.workers:
            restarts.add_metric([str(w.slot)], w.restarts)
        yield restarts
        for fn in self.extra:
            yield from fn()


class Metrics:
    def __init__(self, sup):
        self.extra: list[Callable[[], Iterable[Metric]]] = []
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(sup, self.extra))

    def add(self, fn: Callable[[], Iterable[Metric]]) -> None:
        """Another family source, e.g. certificates' days left."""
        self.extra.append(fn)

    def render(self) -> bytes:
        return generate_latest(self.registry)
