# Declarations that make the classes of adc/l7/proxy.py extension types when Cython
# compiles it (attributes become C fields); proxy.py stays plain Python without them.

from adc._fastpath.counters cimport CounterRegion
from adc.l7._scan cimport Kit as CKit, Request, Response
from libc.stdint cimport uint64_t


cdef CKit _kit
cdef dict _STATUS_LINES


cdef void _add(CounterRegion ctr, Py_ssize_t slot, int field, uint64_t n)
cdef void _sub(CounterRegion ctr, Py_ssize_t slot, int field, uint64_t n)
cdef object _status_line(int status, bytes reason)


cdef class VipState:
    cdef public object plan, name, scheme, http, limits, router, default_pool, max_connections
    cdef public object header_timeout, keepalive_timeout, response_timeout, connect_timeout
    cdef public object total_timeout, tunnel_timeout, req_ops, resp_ops, persist, route_persist
    cdef public object x_forwarded, forwarded, request_id_name, request_id, error_pages, retry_statuses
    cdef public object request_id_start, xf_proto_host
    cdef public Py_ssize_t slot


cdef class ClientConn


cdef class UpstreamConn:
    cdef public object cache, key, transport, write
    cdef public ClientConn client
    cdef public double idle_since
    cdef public bint closed, paused

    cpdef pause_reading(self)
    cpdef resume_reading(self)
    cpdef close(self)


cdef class UpstreamCache:
    cdef public object loop, _sweeper
    cdef public dict idle
    cdef public Py_ssize_t max_idle
    cdef public double idle_timeout

    cpdef UpstreamConn take(self, key)
    cpdef put(self, UpstreamConn up)


cdef class TimerHeap:
    cdef public object loop, heap, handle
    cdef public double at
    cdef public long long seq

    cpdef add(self, double at, conn)


cdef class ClientConn:
    cdef object __weakref__
    cdef public TimerHeap timers
    cdef public object listener, ctx, loop, transport, write, buf, timer, ttimer, tcb, timer_kind
    cdef public VipState vs
    cdef public CounterRegion ctr
    cdef public UpstreamCache upstreams
    cdef public UpstreamConn up
    cdef public Request req
    cdef public Response resp
    cdef public object client_ip, flow_key, route, pool, member, tried, reader, pending
    cdef public object head_out, out_head, rbuf, rreader, connect_task, term, t_connect, t_resp
    cdef public object log_member, resp_ops, persist, sticky, request_id, xf_head, tls
    cdef public double last_io, deadline, timer_at, t_accept, m_accept, t_req
    cdef public long long id, bytes_in, bytes_out, req_bytes_in, resp_bytes, pending_size
    cdef public Py_ssize_t mslot
    cdef public int state, paused, rstate, client_port, status
    cdef public bint wpaused, in_process, req_done, close_after, out_chunked, reused, retried_stale

    # the per-request path: C calls between these (Python can still call them)
    cpdef _reset_request(self)
    cpdef _timer_due(self, double at)
    cpdef pause(self, bit)
    cpdef resume(self, bit)
    cpdef _process(self, start)
    cpdef _on_request(self, Request req)
    cpdef _upstream_head(self, Request req, fields, authority)
    cpdef _pick(self, pool, tried)
    cpdef _dispatch(self, last_failure, m=*)
    cpdef _attach(self, UpstreamConn up, reused)
    cpdef _req_body(self, data)
    cpdef _send_up(self, b)
    cpdef up_data(self, UpstreamConn up, data)
    cpdef bint _response_head(self, Response resp) except -1
    cpdef _start_response(self, Response resp)
    cpdef _resp_body(self, data)
    cpdef _to_client(self, b)
    cpdef _resp_done(self, reusable)
    cpdef _release_member(self, error)
    cpdef _finish(self)
    cpdef _arm(self, delay, cb, kind=*)
    cpdef _cancel_timer(self)
    cpdef _log(self)
