# The parsed heads as C structs, so that adc.l7.proxy (compiled) reads their fields without
# an attribute lookup; adc/l7/_scan.pyx has their methods and the parsers that fill them.

cdef class Head:
    # kept: the end-to-end field lines as one canonical block (`name: value` CRLF each), as the
    # parser wrote them; None once `fields` (a property over _fields) has been asked for
    cdef public object kept
    cdef object _fields


cdef class Request(Head):
    cdef public object method, target, path, query, host, authority
    cdef public object content_length, upgrade, xff, request_id, te_codings
    cdef public int minor
    cdef public bint chunked, keep_alive, expect_continue, absolute, te_trailers
    cdef public Py_ssize_t head_size


cdef class Response(Head):
    cdef public object reason, content_length, upgrade, te_codings
    cdef public int status, minor
    cdef public bint chunked, keep_alive, no_body, until_close


cdef class LengthReader:
    cdef public Py_ssize_t remaining


cdef class Kit:
    cpdef double now(self)
    cpdef Py_ssize_t head_end(self, bytes buf, Py_ssize_t start)
    cpdef bint starts_empty_line(self, bytes buf)
    cpdef bytes length_line(self, long long n)
    cpdef bytes chunk_line(self, Py_ssize_t n)
    cpdef bytes request_id(self, bytes prefix, unsigned long long n)
    cpdef bytes join(self, list parts)


cdef class Limits:
    cdef public Py_ssize_t request_line, header_bytes, header_count
    cdef public object body
