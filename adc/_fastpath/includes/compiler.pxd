# C declarations only: compiler builtins and the one 128-bit helper XXH3 needs.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from *:
    """
    static inline unsigned long long adc_mul128_fold64(unsigned long long a, unsigned long long b) {
        unsigned __int128 p = (unsigned __int128)a * b;
        return (unsigned long long)p ^ (unsigned long long)(p >> 64);
    }
    """
    # the 128-bit product of a and b, its halves xor-ed; no errors
    uint64_t adc_mul128_fold64(uint64_t a, uint64_t b) noexcept nogil
    uint32_t __builtin_bswap32(uint32_t) noexcept nogil     # no errors
    uint64_t __builtin_bswap64(uint64_t) noexcept nogil     # no errors
