from libc.stdint cimport uint8_t, int32_t, uint32_t, uint64_t

cdef enum:
    MAGLEV_M = 65537
    MAX_KEY = 128

cdef uint64_t xxh3_64(const uint8_t *p, size_t n, uint64_t seed) noexcept nogil
cdef int maglev_fill(int32_t *table, int n, const uint64_t *offset, const uint64_t *skip,
                     const uint32_t *weight) noexcept nogil
