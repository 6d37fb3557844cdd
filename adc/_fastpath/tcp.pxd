from libc.stdint cimport int32_t, uint32_t
from adc._fastpath.engine_types cimport Core

cdef void on_listen(Core *e, int32_t vi) noexcept nogil
cdef void on_tcp(Core *e, int32_t ci, int tag, uint32_t events) noexcept nogil
cdef void connect_failed(Core *e, int32_t ci) noexcept nogil
cdef void queue_drain(Core *e) noexcept nogil
