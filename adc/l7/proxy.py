# cython: annotation_typing=False, boundscheck=True, wraparound=True, cdivision=False
"""adc.l7.proxy: the per-connection glue of the HTTP proxy: uvloop protocols around the sans-IO core.

Plain Python that is also compiled by Cython (adc/l7/proxy.pxd makes the
classes extension types with typed attributes); adc.l7.listener loads the build
when it is current and this source otherwise, so the two never disagree.

One ClientConn per client connection serves its requests one at a time, in
order (pipelined requests wait in the buffer). Each request is routed, given a
member by its pool, and forwarded on a pooled keep-alive UpstreamConn; the
response streams back. Flow control: when one side's write buffer is full, the
other side stops reading, so a body is never buffered whole.

Counters (per VIP slot): conn_total/conn_active are client connections,
bytes_in/out client bytes, requests, errors (answers of 4xx/5xx we generate
and aborted exchanges), timeouts, refused (over max_connections or a pool circuit
breaker; the pool slot counts the latter too). Per member
and pool slot: conn_total/requests are requests sent, conn_active requests in
flight, bytes_in request bytes sent to the member, bytes_out response bytes
received from it, errors, timeouts, resp_5xx (5xx answers it sent).
"""

import asyncio
import heapq
import itertools
import os
import time
import weakref
from typing import Optional

from adc.fields import (BYTES_IN, BYTES_OUT, CONN_ACTIVE, CONN_TOTAL, ERRORS, REFUSED, REQUESTS, RESP_5XX,
                        TIMEOUTS)
from adc.config.plan import HttpPlan, VipPlan
from adc.l7 import http1
from adc.l7.http1 import (LAST_CHUNK, BackendProtocolError, ChunkedReader, ClientProtocolError, Kit,
                          LengthReader, Limits, UntilCloseReader, parse_request_head,
                          parse_response_head, serialize_fields)
from adc.l7.persist import Persistence
from adc.l7.router import A_POOL, A_REDIRECT, A_RESPOND, HeaderOps, Router
from adc.lb._common import flow_key

try:
    import cython
except ImportError:  # Cython absent: this source runs as plain Python
    class cython:
        compiled = False


# client connection states
S_HEAD, S_REQ, S_TUNNEL, S_CLOSED = range(4)
# response states
R_NONE, R_HEAD, R_BODY = range(3)
# reasons to pause reading the client (a bit each)
P_UPSTREAM = 1      # the member's write buffer is full
P_PENDING = 2       # body bytes wait for the member connection
P_PIPELINE = 4      # pipelined requests wait for the current one

PENDING_MAX = 256 * 1024
PIPELINE_MAX = 64 * 1024
IDEMPOTENT = frozenset((b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE"))
_ids = itertools.count(1)
_rids = itertools.count(1)
# request ids: a per-process random prefix and a counter, unique without a syscall per request
_RID_PREFIX = os.urandom(6).hex().encode()


# hot helpers: compiled, the C _scan.Kit in a typed global (adc/l7/proxy.pxd), so C calls
_kit = Kit()

# status lines sent to clients, by status: (reason, line); statuses are three digits, so bounded
_STATUS_LINES: dict = {}


def _status_line(status, reason):
    c = _STATUS_LINES.get(status)
    if c is not None and c[0] == reason:
        return c[1]
    line = b"HTTP/1.1 %d %b\r\n" % (status, reason)
    if len(reason) <= 64:
        _STATUS_LINES[status] = (reason, line)
    return line


# Counter updates: compiled, a C call into the CounterRegion (adc/l7/proxy.pxd types the
# arguments); as plain Python, its inc/dec methods.
def _add(ctr, slot, field, n):
    if cython.compiled:
        ctr.add(slot, field, n)
    else:
        ctr.inc(slot, field, n)


def _sub(ctr, slot, field, n):
    if cython.compiled:
        ctr.sub(slot, field, n)
    else:
        ctr.dec(slot, field, n)


class VipState:
    """What a connection needs from its VipPlan, compiled once per apply."""

    def __init__(self, vip: VipPlan):
        self.plan = vip
        self.name = vip.name
        self.slot = vip.slot
        self.default_pool = vip.default_pool
        self.scheme = b"https" if vip.protocol == "https" else b"http"
        h = vip.http if vip.http is not None else HttpPlan()
        self.http = h
        self.limits = Limits(request_line=h.max_request_line, header_bytes=h.max_header_size,
                             header_count=h.max_header_count, body=h.max_body_size)
        self.header_timeout = h.header_timeout
        # the generic VIP idle_timeout, when set, is the client keep-alive idle time
        self.keepalive_timeout = vip.idle_timeout if vip.idle_timeout is not None else h.keepalive_timeout
        self.response_timeout = h.response_timeout
        self.connect_timeout = h.connect_timeout      # None: the pool's
        self.total_timeout = h.total_timeout
        self.tunnel_timeout = h.tunnel_timeout
        ops = HeaderOps(h.request_headers)
        self.req_ops = ops if ops else None
        ops = HeaderOps(h.response_headers)
        self.resp_ops = ops if ops else None
        self.router = Router(vip.routes, h.request_headers, h.response_headers) if vip.routes else None
        self.persist = Persistence(h.persistence) if h.persistence is not None else None
        self.route_persist = {r.name: Persistence(r.persistence) for r in vip.routes
                              if r.persistence is not None}
        self.x_forwarded = h.x_forwarded
        self.forwarded = h.forwarded
        self.request_id_name = h.request_id.encode() if h.request_id else None
        self.request_id = self.request_id_name.lower() if h.request_id else None
        self.request_id_start = self.request_id_name + b": " if h.request_id else None
        self.xf_proto_host = b"\r\nx-forwarded-proto: " + self.scheme + b"\r\nx-forwarded-host: "
        self.error_pages = {int(k): v.encode() for k, v in h.error_pages.items()}
        self.retry_statuses = frozenset(int(x) for x in h.retry_on if x.isdigit())
        self.max_connections = vip.max_connections


class UpstreamConn:
    """A connection to a member; between requests it waits in the UpstreamCache."""

    def __init__(self, cache: "UpstreamCache", key):
        self.cache = cache
        self.key = key
        self.transport = None
        self.write = None
        self.client = None
        self.idle_since = 0.0
        self.closed = False
        self.paused = False

    def connection_made(self, transport):
        self.transport = transport
        self.write = transport.write     # bound once: one write per request, no lookup each time

    def data_received(self, data):
        c = self.client
        if c is not None:
            c.up_data(self, data)
        else:
            # a member must not talk while idle: this connection cannot be reused
            self.close()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        self.closed = True
        c = self.client
        if c is not None:
            self.client = None
            c.up_lost(self, exc)
        else:
            self.cache.forget(self)

    def pause_writing(self):
        c = self.client
        if c is not None:
            c.pause(P_UPSTREAM)

    def resume_writing(self):
        c = self.client
        if c is not None:
            c.resume(P_UPSTREAM)

    def pause_reading(self):
        if not self.paused and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume_reading(self):
        if self.paused and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def close(self):
        if not self.closed:
            self.closed = True
            self.client = None
            self.transport.close()
            self.cache.forget(self)


class UpstreamCache:
    """Idle keep-alive connections per member ("address:port"), newest first; swept for age."""

    def __init__(self, loop, max_idle: int = 64, idle_timeout: float = 15.0):
        self.loop = loop
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.idle: dict = {}
        self._sweeper = None

    def take(self, key) -> Optional[UpstreamConn]:
        lst = self.idle.get(key)
        while lst:
            up = lst[-1]
            del lst[-1]         # not lst.pop(): compiled, a list item delete needs no method lookup
            if not up.closed:
                return up
        return None

    def put(self, up: UpstreamConn) -> None:
        lst = self.idle.get(up.key)
        if lst is None:
            lst = self.idle[up.key] = []
        if len(lst) >= self.max_idle:
            up.close()
            return
        up.client = None
        up.resume_reading()          # so that we see the member closing it
        up.idle_since = _kit.now()
        lst.append(up)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(1.0, self._sweep)

    def forget(self, up: UpstreamConn) -> None:
        lst = self.idle.get(up.key)
        if lst:
            try:
                lst.remove(up)
            except ValueError:
                pass

    def _sweep(self) -> None:
        self._sweeper = None
        limit = _kit.now() - self.idle_timeout
        left = False
        for key, lst in list(self.idle.items()):
            old = [u for u in lst if u.idle_since <= limit]
            for u in old:
                u.close()
            if lst:
                left = True
            else:
                del self.idle[key]
        if left:
            self._sweeper = self.loop.call_later(1.0, self._sweep)

    def close_all(self) -> None:
        for lst in list(self.idle.values()):
            for u in list(lst):
                u.close()
        self.idle.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


class TimerHeap:
    """The deadlines of a listener's client connections: one heap and one loop timer.

    A loop timer per connection (created at accept, cancelled at close) cost more than the
    rest of a short connection's setup; entries here are (deadline, seq, weak reference).
    """

    def __init__(self, loop):
        self.loop = loop
        self.heap = []
        self.handle = None
        self.at = 0.0
        self.seq = 0

    def add(self, at, conn) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, weakref.ref(conn)))
        h = self.handle
        if h is None or at < self.at:
            if h is not None:
                h.cancel()
            self.at = at
            self.handle = self.loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self.handle = None
        heap = self.heap
        now = _kit.now() + 0.0005
        while heap and heap[0][0] <= now:
            at, _, ref = heapq.heappop(heap)
            c = ref()
            if c is not None:
                c._timer_due(at)
        if heap and self.handle is None:
            self.at = heap[0][0]
            self.handle = self.loop.call_at(self.at, self._fire)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.heap.clear()


class Exchange:
    """One request/response, as the access log sees it."""
    __slots__ = ("client", "client_port", "vip", "route", "pool", "member", "method", "target",
                 "minor", "status", "bytes_in", "bytes_out", "user_agent", "referer", "t_accept",
                 "t_request", "t_queue", "t_connect", "t_response", "t_total", "term")


class ClientConn:
    def __init__(self, listener):
        self.listener = listener
        self.ctx = listener.ctx
        self.ctr = listener.ctx.counters
        self.loop = listener.ctx.loop
        self.vs: VipState = listener.state
        self.upstreams = listener.upstreams      # typed when compiled: take/put are C calls
        self.tls = listener.tls                  # adc.tls.server.ServerTls (https), updated in place
        self.timers = listener.timers
        self.id = next(_ids)
        self.transport = None
        self.write = None
        self.state = S_HEAD
        self.buf = b""
        self.paused = 0
        self.wpaused = False
        self.timer = None
        self.tcb = None
        self.timer_kind = None
        self.timer_at = 0.0
        self.deadline = 0.0
        self.ttimer = None
        self.last_io = 0.0
        self.t_accept = time.time()
        self.m_accept = 0.0
        self.bytes_in = 0
        self.bytes_out = 0
        self.in_process = False
        self.mslot = 0
        self.xf_head = None
        self.client_ip = b"-"
        self.client_port = 0
        self.flow_key = None
        self._reset_request()

    def _reset_request(self):
        if self.ttimer is not None:
            self.ttimer.cancel()
            self.ttimer = None
        self.req = None
        self.route = None
        self.pool = None
        self.member = None
        self.up = None
        self.tried = None
        self.reader = None
        self.req_done = True
        self.pending = None
        self.pending_size = 0
        self.head_out = None
        self.resp = None
        self.out_head = None
        self.rstate = R_NONE
        self.rbuf = b""
        self.rreader = None
        self.out_chunked = False
        self.close_after = False
        self.reused = False
        self.retried_stale = False
        self.connect_task = None
        self.status = 0
        self.term = "--"
        self.t_req = 0.0
        self.t_connect = None
        self.t_resp = None
        self.req_bytes_in = 0
        self.resp_bytes = 0
        self.log_member = None
        self.resp_ops = None
        self.persist = None
        self.sticky = None
        self.request_id = None

    # ------------------------------------------------------------- client side
    def connection_made(self, transport):
        self.transport = transport
        self.write = transport.write     # bound once: one or more writes per request
        lst = self.listener
        vs = self.vs
        lst.conns_set.add(self)
        ctr = self.ctr
        _add(ctr, vs.slot, CONN_TOTAL, 1)
        _add(ctr, vs.slot, CONN_ACTIVE, 1)
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = peer[0].encode()
            self.client_port = peer[1]
        now = self.m_accept = _kit.now()
        self.last_io = now
        if vs.max_connections is not None and len(lst.conns_set) > vs.max_connections:
            _add(ctr, vs.slot, REFUSED, 1)
            self._local(503, close=True, term="R-")
            return
        self._arm(vs.header_timeout, self._on_header_timeout, "header")

    def data_received(self, data):
        n = len(data)
        self.bytes_in += n
        _add(self.ctr, self.vs.slot, BYTES_IN, n)
        st = self.state
        if st == S_REQ:
            self.last_io = _kit.now()
            if not self.req_done:
                self._req_body(data)
            else:
                self.buf += data
                if len(self.buf) > PIPELINE_MAX:
                    self.pause(P_PIPELINE)
        elif st == S_HEAD:
            if self.buf:
                start = len(self.buf)
                self.buf += data
            else:
                start = 0
                self.buf = data
            self._process(start)
        elif st == S_TUNNEL:
            self.last_io = _kit.now()
            up = self.up
            if up is not None:
                up.write(data)
                if self.member is not None:
                    _add(self.ctr, self.mslot, BYTES_IN, n)

    def eof_received(self):
        # a client half-close: finish the exchange in flight, then close
        if self.state == S_HEAD:
            return False
        if self.state == S_TUNNEL and self.up is not None:
            try:
                self.up.transport.write_eof()
            except (OSError, RuntimeError):
                pass
            return True
        self.close_after = True
        if self.state == S_REQ and not self.req_done:
            self._abort("CD", 400)
            return False
        return True

    def connection_lost(self, exc):
        prev = self.state
        self.state = S_CLOSED
        self._kill_timer()
        if self.ttimer is not None:
            self.ttimer.cancel()
            self.ttimer = None
        lst = self.listener
        lst.conns_set.discard(self)
        _sub(self.ctr, self.vs.slot, CONN_ACTIVE, 1)
        if self.connect_task is not None:
            self.connect_task.cancel()
            self.connect_task = None
        if prev in (S_REQ, S_TUNNEL) and self.req is not None:
            if prev == S_REQ:
                self.term = "CD" if self.rstate == R_BODY else "CH"
                _add(self.ctr, self.vs.slot, ERRORS, 1)
            self._release_member(error=False)
            up = self.up
            self.up = None
            if up is not None:
                up.close()
            self._log()
        elif self.up is not None:
            self.up.close()
            self.up = None

    def pause_writing(self):
        self.wpaused = True
        up = self.up
        if up is not None:
            up.pause_reading()

    def resume_writing(self):
        self.wpaused = False
        self.last_io = _kit.now()
        up = self.up
        if up is not None:
            up.resume_reading()

    def pause(self, bit):
        if not self.paused and self.state != S_CLOSED:
            self.transport.pause_reading()
        self.paused |= bit

    def resume(self, bit):
        if self.paused & bit:
            self.paused &= ~bit
            if not self.paused and self.state != S_CLOSED:
                self.transport.resume_reading()

    # ----------------------------------------------------------------- timers
    # One lazily re-armed deadline per connection: moving it later (the common case, once
    # per request) is an assignment; a new entry goes into the listener's TimerHeap only when
    # the deadline moves earlier, and an entry that comes due early re-arms for the deadline.
    # An entry left behind (the deadline moved, or the connection closed) is ignored when due.

    def _arm(self, delay, cb, kind=None):
        if not delay:
            self._cancel_timer()
            return
        d = _kit.now() + delay
        self.deadline = d
        self.tcb = cb
        self.timer_kind = kind
        if self.timer is None or self.timer_at > d:
            self.timer_at = d
            self.timer = True
            self.timers.add(d, self)

    def _timer_due(self, at):
        """From the TimerHeap: the entry for `at` is due."""
        if self.timer is None or at != self.timer_at:
            return      # superseded by an earlier entry, or killed
        self._on_timer()

    def _on_timer(self):
        self.timer = None
        cb = self.tcb
        if cb is None or self.state == S_CLOSED:
            return
        d = self.deadline
        if _kit.now() < d - 0.0005:
            self.timer_at = d
            self.timer = True
            self.timers.add(d, self)
            return
        self.tcb = None
        self.timer_kind = None
        cb()

    def _cancel_timer(self):
        self.tcb = None
        self.timer_kind = None

    def _kill_timer(self):
        self.tcb = None
        self.timer_kind = None
        self.timer = None

    def _on_header_timeout(self):
        if self.state != S_HEAD:
            return
        _add(self.ctr, self.vs.slot, TIMEOUTS, 1)
        if self.buf:
            self._local(408, close=True, term="cR")
        else:
            self.state = S_CLOSED
            self.transport.close()

    def _on_keepalive_timeout(self):
        if self.state == S_HEAD and not self.buf:
            self.state = S_CLOSED
            self.transport.close()

    def _on_io_timeout(self):
        """Inactivity while a request is in flight (client body or member response)."""
        if self.state != S_REQ:
            return
        idle = _kit.now() - self.last_io
        t = self.vs.response_timeout
        if idle < t:
            self._arm(t - idle, self._on_io_timeout, "io")
            return
        _add(self.ctr, self.vs.slot, TIMEOUTS, 1)
        if self.member is not None:
            _add(self.ctr, self.mslot, TIMEOUTS, 1)
        if self.wpaused:
            self._abort("cD", 408)          # the client stopped reading the response
        elif self.req_done:
            self._abort("sH" if self.rstate != R_BODY else "sD", 504)
        else:
            self._abort("cD", 408)

    def _on_total_timeout(self):
        self.ttimer = None
        if self.state == S_REQ:
            _add(self.ctr, self.vs.slot, TIMEOUTS, 1)
            self._abort("sL", 504)

    # --------------------------------------------------------------- requests
    def _process(self, start):
        if self.in_process:
            return
        self.in_process = True
        try:
            while self.state == S_HEAD:
                buf = self.buf
                if not buf:
                    return
                if _kit.starts_empty_line(buf):
                    # RFC 9112 2.2: ignore empty lines before a request line
                    buf = self.buf = http1.skip_empty_lines(buf)
                    start = 0
                    if not buf:
                        return
                end = _kit.head_end(buf, start - 3 if start > 3 else 0)
                if end < 0:
                    if self.timer_kind != "header":
                        # the head is incomplete: from now on it has header_timeout to arrive
                        self._arm(self.vs.header_timeout, self._on_header_timeout, "header")
                    try:
                        http1.check_incomplete_head(buf, self.vs.limits, start)
                    except ClientProtocolError as e:
                        self._bad_request(e)
                    return
                if end == len(buf):     # the usual read: exactly one head, no copies
                    head = buf
                    self.buf = b""
                else:
                    head = buf[:end]
                    self.buf = buf[end:]
                start = 0
                try:
                    req = parse_request_head(head, self.vs.limits)
                except ClientProtocolError as e:
                    self._bad_request(e)
                    return
                self._on_request(req)
                if self.state == S_REQ and not self.req_done and self.buf:
                    data = self.buf
                    self.buf = b""
                    self._req_body(data)
        finally:
            self.in_process = False

    def _bad_request(self, e: ClientProtocolError):
        self.listener.last_error = e.reason
        self.t_req = _kit.now()
        self._local(e.status, close=True, term="PR")

    def _on_request(self, req):
        vs = self.vs
        self.req = req
        self.state = S_REQ
        self.t_req = _kit.now()
        self.last_io = self.t_req
        _add(self.ctr, vs.slot, REQUESTS, 1)
        # http1.body_reader for a request (a request has no `no_body`/`until_close`: no getattr misses)
        if req.chunked:
            self.reader = ChunkedReader(ClientProtocolError, vs.limits.body)
        elif req.content_length:
            self.reader = LengthReader(req.content_length)
        else:
            self.reader = None
        self.req_done = self.reader is None
        if not req.keep_alive or self.listener.draining:
            self.close_after = True
        tls = self.tls
        if tls is not None and tls.identity_headers:
            tls.add_identity(self, req)      # verified client certificate: headers for routes and members
        route = vs.router.match(req) if vs.router is not None else None
        self.route = route
        if route is None:
            pool_name = vs.default_pool
            req_ops = vs.req_ops
            self.resp_ops = vs.resp_ops
            self.persist = vs.persist
        else:
            act = route.action
            if act == A_RESPOND:
                status, body, fields, ctype = route.fixed
                self._local(status, body=body, fields=fields, content_type=ctype, term="--", count=False)
                return
            if act == A_REDIRECT:
                self._local(route.redirect.status, body=b"", term="--", count=False,
                            fields=((b"location", route.location(req, vs.scheme)),))
                return
            pool_name = route.pool_name() if act != A_POOL or route.pool else vs.default_pool
            if route.strip_prefix is not None or route.rx is not None:
                route.rewrite(req)
            req_ops = route.req_ops
            self.resp_ops = route.resp_ops
            self.persist = vs.route_persist[route.name] if route.persistence is not None else vs.persist
        if pool_name is None:
            self._local(404, term="P-")
            return
        pool = self.ctx.pools.get(pool_name)
        if pool is None:
            self._local(503, term="P-")
            return
        self.pool = pool
        fields = None       # None: forward the request's fields as the parser serialized them
        authority = req.authority
        if req_ops is not None:
            fields = req_ops.apply(req.fields)
            if req_ops.host is not None:
                authority = req_ops.host
        ps = self.persist
        if ps is not None and ps.type == "cookie":
            self.sticky, app = ps.persisted(req, pool)
            if ps.mode == "insert":
                fields = ps.strip_cookie(fields if fields is not None else req.fields)
            elif ps.mode == "prefix":
                fields = ps.strip_cookie(fields if fields is not None else req.fields, app)
        self.head_out = self._upstream_head(req, fields, authority)
        self._arm(vs.response_timeout, self._on_io_timeout, "io")
        if vs.total_timeout:
            self.ttimer = self.loop.call_later(vs.total_timeout, self._on_total_timeout)
        self._dispatch(None)

    def _upstream_head(self, req, fields, authority) -> bytes:
        # one list of pieces and one join: no format string is parsed per request
        vs = self.vs
        if fields is None:
            block = req.kept if req.kept is not None else serialize_fields(req.fields)
        else:
            block = serialize_fields(fields)
        parts = [req.method, b" ", req.target, b" HTTP/1.1\r\nhost: ", authority, b"\r\n", block]
        if vs.x_forwarded:
            if req.xff is None:
                # the same for every request of the connection: built once
                xf = self.xf_head
                if xf is None:
                    xf = self.xf_head = b"x-forwarded-for: " + self.client_ip + vs.xf_proto_host
                parts.append(xf)
            else:
                parts.append(b"x-forwarded-for: ")
                parts.append(req.xff)
                parts.append(b", ")
                parts.append(self.client_ip)
                parts.append(vs.xf_proto_host)
            parts.append(req.authority)
            parts.append(b"\r\n")
        elif req.xff is not None:
            parts += (b"x-forwarded-for: ", req.xff, b"\r\n")
        if vs.forwarded:
            ip = self.client_ip
            node = b'"[%b]"' % ip if b":" in ip else ip
            parts.append(b'forwarded: for=%b;host="%b";proto=%b\r\n' % (node, req.authority, vs.scheme))
        rid = vs.request_id
        if rid is not None:
            if rid == b"x-request-id":
                have = req.request_id
            else:
                have = req.field(rid)
            if have is None:
                self.request_id = _kit.request_id(_RID_PREFIX, next(_rids))
                parts.append(vs.request_id_start)
                parts.append(self.request_id)
                parts.append(b"\r\n")
            else:
                self.request_id = have
        if req.chunked:
            if req.te_codings is None:
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                parts.append(b"transfer-encoding: %b, chunked\r\n" % req.te_codings)
        elif req.content_length is not None:
            parts.append(_kit.length_line(req.content_length))
        if req.upgrade is not None:
            parts.append(b"connection: upgrade\r\nupgrade: %b\r\n" % req.upgrade)
        if req.expect_continue:
            parts.append(b"expect: 100-continue\r\n")
        parts.append(b"\r\n")
        return _kit.join(parts)

    def _pick(self, pool, tried):
        """The member for this request: a persisted one, a hashed one, or the pool's choice."""
        ps = self.persist
        ex = tried or ()
        if ps is not None:
            if ps.type == "cookie":
                m = self.sticky
                if m is not None and m not in ex:
                    return m
            else:
                key = ps.hash_key(self.req, self.client_ip)
                if key is not None:
                    return ps.pick_hashed(pool, key, ex)
        if pool.hashing:
            if self.flow_key is None:
                try:
                    self.flow_key = flow_key(self.client_ip.decode())
                except ValueError:
                    self.flow_key = self.client_ip
            return pool.pick(self.flow_key, ex)
        rr = pool.rr        # plain round robin: one C call, not pick()'s frame
        if rr is not None and not ex:
            return rr()
        return pool.pick(None, ex)

    def _dispatch(self, last_failure, m=None):
        """Choose a member (not one tried already) and send the request to it."""
        pool = self.pool
        tried = self.tried
        if m is None:
            m = self._pick(pool, tried)
        if m is None:
            if last_failure is None:
                self._local(503, term="SC" if tried else "PQ")
            elif last_failure == "timeout":
                self._local(504, term="sC")
            else:
                self._local(502, term="SC")
            return
        key = m.key         # "address:port", its hash cached: idle connections are kept by it
        up = self.upstreams.take(key)
        cb = pool.breaker
        if cb is not None:
            # circuit breaker (adc.runtime.Breaker): over a pool limit, 503 now rather than pile on
            if cb.over(up is None) is not None:
                if up is not None:
                    self.upstreams.put(up)
                _add(self.ctr, pool.slot, REFUSED, 1)
                _add(self.ctr, self.vs.slot, REFUSED, 1)
                self._local(503, term="PQ")
                return
            cb.requests += 1
        self.member = m
        self.mslot = ms = m.slot      # the member's counter slot, read once per request
        self.log_member = m.key
        m.active += 1
        ctr = self.ctr
        _add(ctr, ms, CONN_TOTAL, 1)
        _add(ctr, ms, CONN_ACTIVE, 1)
        _add(ctr, ms, REQUESTS, 1)
        _add(ctr, pool.slot, REQUESTS, 1)
        if up is not None:
            self.t_connect = _kit.now()
            self._attach(up, True)
        else:
            self.connect_task = self.loop.create_task(self._connect(m, key))
            if cb is not None:
                cb.pending += 1
                self.connect_task.add_done_callback(cb.connect_done)

    async def _connect(self, m, key):
        lst = self.listener
        timeout = self.vs.connect_timeout or self.pool.plan.connect_timeout
        tls = self.pool.plan.tls
        try:
            if tls is not None:      # re-encryption: adc.tls.upstream
                from adc.tls.upstream import connect_kwargs
                tlskw = connect_kwargs(tls, m.address)
            else:
                tlskw = {}
            _, up = await asyncio.wait_for(
                self.loop.create_connection(lambda: UpstreamConn(lst.upstreams, key), m.address, m.port,
                                            **tlskw),
                timeout)
        except asyncio.CancelledError:
            raise
        except (OSError, asyncio.TimeoutError) as e:
            self.connect_task = None
            if tls is not None and isinstance(e, OSError):
                from adc.tls.upstream import log_failure
                log_failure(self.pool.name, m.key, e)
            if self.state != S_REQ or self.member is not m:
                return
            self._connect_failed(m, isinstance(e, asyncio.TimeoutError))
            return
        self.connect_task = None
        if self.state != S_REQ or self.member is not m:
            up.close()
            return
        if up.closed:
            # The member accepted, then closed or reset the connection before this task resumed
            # (create_connection's result reaches us loop iterations after the connection is
            # made; a member killed in between): connection_lost found no client to tell, and
            # nothing was sent. A failed connect, retried as one: attached, the request would
            # wait for a response that cannot come (uvloop raises on the write; asyncio drops it).
            self._connect_failed(m, False)
            return
        self.t_connect = _kit.now()
        self._attach(up, False)

    def _connect_failed(self, m, timed_out):
        """A connection to m failed before the request was sent: another member, within the
        pool's retries, else 502 (504 for a timeout)."""
        _add(self.ctr, m.slot, TIMEOUTS if timed_out else ERRORS, 1)
        self._release_member(error=False)
        if self.tried is None:
            self.tried = [m]
        else:
            self.tried.append(m)
        if len(self.tried) > self.pool.plan.retries:
            self._local(504 if timed_out else 502, term="sC" if timed_out else "SC")
            return
        self._dispatch("timeout" if timed_out else "refused")

    def _attach(self, up: UpstreamConn, reused: bool):
        self.up = up
        self.reused = reused
        up.client = self
        self.rstate = R_HEAD
        self.rbuf = b""
        head = self.head_out
        pend = self.pending
        t = up.transport
        n = len(head)
        if pend:
            t.writelines([head] + pend)
            n += self.pending_size
            self.pending = None
            self.pending_size = 0
            self.resume(P_PENDING)
        else:
            up.write(head)
        self.req_bytes_in += n
        _add(self.ctr, self.mslot, BYTES_IN, n)
        if self.wpaused:
            up.pause_reading()
        else:
            up.resume_reading()

    def _req_body(self, data):
        try:
            payload, rest = self.reader.feed(data)
        except ClientProtocolError as e:
            self.listener.last_error = e.reason
            self._abort("PD", e.status)
            return
        if payload:
            self._send_up(http1.chunk(payload) if self.reader.chunked else payload)
        if rest is not None:
            self.req_done = True
            if self.reader.chunked:
                self._send_up(LAST_CHUNK)
            if rest:
                self.buf = rest
                if len(rest) > PIPELINE_MAX:
                    self.pause(P_PIPELINE)

    def _send_up(self, b):
        up = self.up
        if up is not None:
            up.write(b)
            self.req_bytes_in += len(b)
            _add(self.ctr, self.mslot, BYTES_IN, len(b))
        else:
            if self.pending is None:
                self.pending = [b]
            else:
                self.pending.append(b)
            self.pending_size += len(b)
            if self.pending_size > PENDING_MAX:
                self.pause(P_PENDING)

    # --------------------------------------------------------------- responses
    def up_data(self, up, data):
        if up is not self.up:
            up.close()
            return
        n = len(data)
        _add(self.ctr, self.mslot, BYTES_OUT, n)
        self.last_io = _kit.now()
        rs = self.rstate
        if rs == R_BODY:
            self._resp_body(data)
            return
        if self.state == S_TUNNEL:
            self._to_client(data)
            return
        if self.rbuf:
            self.rbuf += data
        else:
            self.rbuf = data
        while self.rstate == R_HEAD:
            rbuf = self.rbuf
            end = _kit.head_end(rbuf, 0)
            if end < 0:
                if len(rbuf) > self.vs.limits.header_bytes:
                    self._backend_error(BackendProtocolError("response head too large"))
                elif rbuf.count(b"\n") != rbuf.count(b"\r\n"):
                    self._backend_error(BackendProtocolError("bare LF in response head"))
                return
            self.rbuf = rbuf[end:] if end < len(rbuf) else b""
            try:
                resp = parse_response_head(rbuf, self.req.method, self.vs.limits, end)
            except BackendProtocolError as e:
                self._backend_error(e)
                return
            if not self._response_head(resp):
                return
        if self.rstate == R_BODY and self.rbuf:
            data = self.rbuf
            self.rbuf = b""
            self._resp_body(data)
        if self.out_head is not None:
            head = self.out_head
            self.out_head = None
            self._to_client(head)

    def _response_head(self, resp) -> bool:
        """A complete response head from the member; False when the exchange left R_HEAD for good
        (a tunnel, a retry on another member)."""
        status = resp.status
        if status < 200:
            if status == 101:
                self._start_tunnel(resp)
                return False
            if self.req.minor == 1:
                self._to_client(b"HTTP/1.1 %d %b\r\n%b\r\n" % (
                    status, resp.reason, http1.serialize_fields(resp.fields)))
            return True
        if status >= 500:
            # per member, for passive health (adc.health.outlier), whether or not it is retried
            _add(self.ctr, self.mslot, RESP_5XX, 1)
            # an idempotent request without a body answered 502/503/504 (as configured)
            if status in self.vs.retry_statuses and self._retry_elsewhere():
                return False
        self._start_response(resp)
        return True

    def _retry_elsewhere(self) -> bool:
        """Send an idempotent request without a body that failed at this member to another one,
        within the pool's retries; False when it may not or cannot be retried."""
        req = self.req
        if req.method not in IDEMPOTENT or self.reader is not None or not self.req_done:
            return False
        m = self.member
        tried = (self.tried or []) + [m]
        if len(tried) > self.pool.plan.retries:
            return False
        other = self._pick(self.pool, tried)
        if other is None:
            return False
        up = self.up
        self.up = None
        if up is not None:
            up.close()        # its body is unread: the connection cannot be reused
        _add(self.ctr, m.slot, ERRORS, 1)
        self._release_member(False)
        self.tried = tried
        self.rstate = R_NONE
        self.rbuf = b""
        self._dispatch("status", other)
        return True

    def _start_response(self, resp):
        self.resp = resp
        self.status = resp.status
        self.t_resp = _kit.now()
        req = self.req
        parts = [_status_line(resp.status, resp.reason)]
        fields = None       # None: forward the member's fields as the parser serialized them
        if self.resp_ops is not None:
            fields = self.resp_ops.apply(resp.fields)
        ps = self.persist
        if ps is not None and ps.type == "cookie" and self.member is not None:
            if fields is None:
                fields = resp.fields
            if ps.mode == "insert":
                if self.sticky is not self.member:
                    fields = fields + [ps.set_cookie(ps.member_token(self.pool, self.member))]
            else:
                fields, _ = ps.rewrite_set_cookies(fields, ps.member_token(self.pool, self.member))
        if fields is None:
            parts.append(resp.kept if resp.kept is not None else serialize_fields(resp.fields))
        else:
            parts.append(serialize_fields(fields))
        self.out_chunked = False
        if resp.no_body:
            if resp.content_length is not None:
                parts.append(_kit.length_line(resp.content_length))
        elif resp.content_length is not None:
            parts.append(_kit.length_line(resp.content_length))
        elif req.minor == 1:
            if resp.te_codings is None:
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                # codings other than chunked (gzip, ...) stay on the body: say so
                parts.append(b"transfer-encoding: %b, chunked\r\n" % resp.te_codings)
            self.out_chunked = True
        else:
            self.close_after = True
        if not self.req_done or self.listener.draining:
            self.close_after = True
        if self.close_after:
            parts.append(b"connection: close\r\n")
        elif req.minor == 0:
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        # http1.body_reader for a response
        if resp.no_body:
            self.rreader = None
        elif resp.chunked:
            self.rreader = ChunkedReader(BackendProtocolError)
        elif resp.until_close:
            self.rreader = UntilCloseReader()
        elif resp.content_length:
            self.rreader = LengthReader(resp.content_length)
        else:
            self.rreader = None
        if self.rreader is None:
            self._to_client(_kit.join(parts))
            self._resp_done(resp.keep_alive)
        else:
            # written with the first body bytes (one send instead of two)
            self.out_head = _kit.join(parts)
            self.rstate = R_BODY

    def _resp_body(self, data):
        try:
            payload, rest = self.rreader.feed(data)
        except BackendProtocolError as e:
            if self.out_head is not None:
                # nothing reached the client yet: it gets a clean 502
                self.out_head = None
                self.rstate = R_NONE
                self._backend_error(e, term="SD")
                return
            self.listener.last_error = e.reason
            _add(self.ctr, self.mslot, ERRORS, 1)
            self._abort("SD", 502)
            return
        # one write per member read: the pending head, the payload (re-chunked when needed), the end
        head = self.out_head
        if head is not None:
            self.out_head = None
        if self.out_chunked:
            pieces = [head] if head is not None else []
            if payload:
                pieces.append(_kit.chunk_line(len(payload)))
                pieces.append(payload)
                pieces.append(b"\r\n")
            if rest is not None:
                pieces.append(LAST_CHUNK)
            if pieces:
                n = 0
                for x in pieces:
                    n += len(x)
                if n < 16384:
                    self._to_client(_kit.join(pieces))
                else:
                    self.transport.writelines(pieces)
                    self.bytes_out += n
                    self.resp_bytes += n
                    _add(self.ctr, self.vs.slot, BYTES_OUT, n)
        elif head is not None:
            if len(payload) < 16384:
                self._to_client(head + payload)
            else:
                self._to_client(head)
                self._to_client(payload)
        elif payload:
            self._to_client(payload)
        if rest is not None:
            self._resp_done(self.resp.keep_alive and not rest)

    def _to_client(self, b):
        n = len(b)
        self.write(b)
        self.bytes_out += n
        self.resp_bytes += n
        _add(self.ctr, self.vs.slot, BYTES_OUT, n)

    def _resp_done(self, reusable):
        up = self.up
        self.up = None
        if up is not None:
            if reusable and self.req_done and not up.closed:
                self.upstreams.put(up)
            else:
                up.close()
        self._release_member(error=False)
        self.term = "--"
        self._finish()

    def _release_member(self, error):
        m = self.member
        if m is not None:
            self.member = None
            m.active -= 1
            _sub(self.ctr, self.mslot, CONN_ACTIVE, 1)
            if self.pool.breaker is not None:
                self.pool.breaker.requests -= 1
            if error:
                _add(self.ctr, self.mslot, ERRORS, 1)

    def _finish(self):
        """The exchange is over: log it, then read the next request or close."""
        if self.connect_task is not None:
            self.connect_task.cancel()
            self.connect_task = None
        self._log()
        close = self.close_after or not self.req_done
        self._reset_request()
        if close or self.state == S_CLOSED:
            self.state = S_CLOSED
            self._cancel_timer()
            self.transport.close()
            return
        self.state = S_HEAD
        self.resume(P_PIPELINE | P_PENDING)
        self._arm(self.vs.keepalive_timeout, self._on_keepalive_timeout, "keepalive")
        if self.buf:
            self._process(0)

    def up_lost(self, up, exc):
        if up is not self.up:
            return
        if self.state == S_TUNNEL:
            self.up = None
            self._release_member(False)
            self.term = "--"
            self._log()
            self.state = S_CLOSED
            self.transport.close()
            return
        if self.rstate == R_BODY and self.rreader is not None and self.rreader.remaining == -1:
            # the body ran until close: that close is its end
            self.up = None
            if self.out_chunked:
                self._to_client(LAST_CHUNK)
            self._resp_done(False)
            return
        self.up = None
        if self.rstate == R_HEAD and not self.rbuf and self.reused and self.reader is None \
                and not self.retried_stale:
            # a reused connection the member had closed just before our request: try a fresh one
            self.retried_stale = True
            m = self.member
            self.connect_task = self.loop.create_task(self._connect(m, m.key))
            return
        if self.rstate == R_HEAD:
            # Closed (or reset: a member killed mid-request) before any response byte: what the
            # client would get is a 502, so where the VIP retries 502 an idempotent request goes to
            # another member (HAProxy's retry-on empty-response).
            if not self.rbuf and 502 in self.vs.retry_statuses and self._retry_elsewhere():
                return
            self._backend_error(BackendProtocolError("member closed the connection before a response"),
                                term="SH")
        else:
            _add(self.ctr, self.mslot, ERRORS, 1)
            self._abort("SD", 502)

    def _backend_error(self, e: BackendProtocolError, term="PH"):
        self.listener.last_error = e.reason
        up = self.up
        self.up = None
        if up is not None:
            up.close()
        if self.member is not None:
            _add(self.ctr, self.mslot, ERRORS, 1)
        self._release_member(False)
        self._local(502, term=term)

    def _start_tunnel(self, resp):
        req = self.req
        if req.upgrade is None:
            self._backend_error(BackendProtocolError("101 without an upgrade request"))
            return
        self.status = 101
        self.t_resp = _kit.now()
        self._cancel_timer()
        if self.ttimer is not None:
            self.ttimer.cancel()
            self.ttimer = None
        up_value = resp.upgrade or req.upgrade
        self._to_client(b"HTTP/1.1 101 %b\r\n%bconnection: upgrade\r\nupgrade: %b\r\n\r\n" % (
            resp.reason, http1.serialize_fields(resp.fields), up_value))
        self.state = S_TUNNEL
        self.rstate = R_NONE
        rest = self.rbuf
        self.rbuf = b""
        if rest:
            self._to_client(rest)
        if self.buf:
            data = self.buf
            self.buf = b""
            self.up.write(data)
        self.resume(P_PIPELINE | P_PENDING)
        if self.vs.tunnel_timeout:
            self._arm(self.vs.tunnel_timeout, self._on_tunnel_timeout, "tunnel")

    def _on_tunnel_timeout(self):
        if self.state != S_TUNNEL:
            return
        idle = _kit.now() - self.last_io
        if idle < self.vs.tunnel_timeout:
            self._arm(self.vs.tunnel_timeout - idle, self._on_tunnel_timeout, "tunnel")
            return
        _add(self.ctr, self.vs.slot, TIMEOUTS, 1)
        self.transport.close()

    # ----------------------------------------------------------- local answers
    def _local(self, status: int, close: bool = False, term: str = "P-", body: Optional[bytes] = None,
               fields=(), content_type: bytes = b"text/plain", count: bool = True):
        """Answer the current request ourselves (errors, redirects, fixed responses)."""
        if self.state == S_CLOSED:
            return
        if count and status >= 400:
            _add(self.ctr, self.vs.slot, ERRORS, 1)
            if self.pool is not None and status >= 500:
                _add(self.ctr, self.pool.slot, ERRORS, 1)
        if self.up is not None:
            self.up.close()
            self.up = None
        self._release_member(False)
        req = self.req
        if req is not None and (not self.req_done or not req.keep_alive):
            close = True
        if self.listener.draining:
            close = True
        self.close_after = self.close_after or close
        if body is None:
            page = self.vs.error_pages.get(status)
            if page is not None:
                body = page
                content_type = b"text/html; charset=utf-8"
            else:
                body = http1.error_body(status) if status >= 300 else b""
        head_only = req is not None and req.method == b"HEAD"
        self.status = status
        self.term = term
        self._to_client(http1.simple_response(status, body, self.close_after, fields,
                                              content_type=content_type, head_only=head_only))
        if self.state == S_HEAD and req is None:
            # refused before any request: nothing to log as an exchange
            self.state = S_REQ
        self._finish()

    def _abort(self, term: str, status: int):
        """End the exchange in error: answer `status` when nothing was sent yet, else cut the connection."""
        if self.rstate == R_BODY or self.state == S_TUNNEL:
            self.term = term
            _add(self.ctr, self.vs.slot, ERRORS, 1)
            up = self.up
            self.up = None
            if up is not None:
                up.close()
            self._release_member(False)
            self._log()
            self._reset_request()
            self.state = S_CLOSED
            self._cancel_timer()
            self.transport.abort()
            return
        self.close_after = True
        self._local(status, close=True, term=term)

    # ------------------------------------------------------------------- log
    def _log(self):
        al = self.ctx.access_log
        if al is None:
            return
        req = self.req
        e = Exchange()
        e.client = self.client_ip.decode()
        e.client_port = self.client_port
        e.vip = self.vs.name
        e.route = self.route.name if self.route is not None else None
        e.pool = self.pool.name if self.pool is not None else None
        e.member = self.log_member
        e.method = req.method if req is not None else None
        e.target = req.target if req is not None else None
        e.minor = req.minor if req is not None else 1
        e.status = self.status
        e.bytes_in = self.req_bytes_in
        e.bytes_out = self.resp_bytes
        e.user_agent = req.field(b"user-agent") if req is not None else None
        e.referer = req.field(b"referer") if req is not None else None
        e.t_accept = self.t_accept
        now = _kit.now()
        t0 = self.m_accept
        e.t_request = (self.t_req - t0) if self.t_req else None
        e.t_queue = 0.0
        e.t_connect = (self.t_connect - self.t_req) if self.t_connect else None
        e.t_response = (self.t_resp - self.t_req) if self.t_resp else None
        e.t_total = now - (self.t_req or t0)
        e.term = self.term
        al.log(e)
