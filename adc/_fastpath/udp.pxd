from libc.stdint cimport int32_t
from adc._fastpath.engine_types cimport Core

cdef void on_udp_vip(Core *e, int32_t vi) noexcept nogil
cdef void on_udp_up(Core *e, int32_t ci) noexcept nogil
