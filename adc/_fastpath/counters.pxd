from libc.stdint cimport uint64_t

cdef class CounterRegion:
    cdef uint64_t *base
    cdef Py_ssize_t nslots
    cdef object _mm
    cdef void add(self, Py_ssize_t slot, int field, uint64_t n) noexcept nogil
    cdef void sub(self, Py_ssize_t slot, int field, uint64_t n) noexcept nogil
