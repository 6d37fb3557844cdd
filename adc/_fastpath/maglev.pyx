# cython: language_level=3
"""XXH3-64 (inputs of 0..128 bytes) and the weighted Maglev table fill, in C.

The algorithm is explained in docs/maglev.md; adc/lb/maglev.py is the
reference and must build the identical table. The hash follows the XXH3
specification for short inputs (the only ones we hash: member keys and flow
keys are at most MAX_KEY bytes); tests compare it with python-xxhash.
Assumes a little-endian host (x86-64, aarch64).
"""
from libc.stdint cimport uint8_t, int32_t, uint32_t, uint64_t
from libc.string cimport memcpy
from libc.stdlib cimport malloc, free

from adc._fastpath.includes.compiler cimport adc_mul128_fold64, __builtin_bswap32, __builtin_bswap64

# XXH3's default secret (first 136 of its 192 bytes are used for inputs up to 128 bytes)
cdef uint8_t SECRET[192]
_S = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e")
for _i in range(192):
    SECRET[_i] = _S[_i]

cdef enum:
    P32_1 = 0x9E3779B1
cdef uint64_t P64_1 = 0x9E3779B185EBCA87ULL
cdef uint64_t P64_2 = 0xC2B2AE3D27D4EB4FULL
cdef uint64_t P64_3 = 0x165667B19E3779F9ULL
cdef uint64_t MX1 = 0x165667919E3779F9ULL
cdef uint64_t MX2 = 0x9FB21C651E98DF25ULL


cdef inline uint64_t rd64(const uint8_t *p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


cdef inline uint32_t rd32(const uint8_t *p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline uint64_t rotl64(uint64_t x, int r) noexcept nogil:
    return (x << r) | (x >> (64 - r))


cdef inline uint64_t avalanche64(uint64_t h) noexcept nogil:
    h ^= h >> 33
    h *= P64_2
    h ^= h >> 29
    h *= P64_3
    h ^= h >> 32
    return h


cdef inline uint64_t avalanche3(uint64_t h) noexcept nogil:
    h ^= h >> 37
    h *= MX1
    h ^= h >> 32
    return h


cdef inline uint64_t rrmxmx(uint64_t h, uint64_t n) noexcept nogil:
    h ^= rotl64(h, 49) ^ rotl64(h, 24)
    h *= MX2
    h ^= (h >> 35) + n
    h *= MX2
    h ^= h >> 28
    return h


cdef inline uint64_t mix16(const uint8_t *p, const uint8_t *s, uint64_t seed) noexcept nogil:
    return adc_mul128_fold64(rd64(p) ^ (rd64(s) + seed), rd64(p + 8) ^ (rd64(s + 8) - seed))


cdef uint64_t xxh3_64(const uint8_t *p, size_t n, uint64_t seed) noexcept nogil:
    """XXH3-64 of n <= MAX_KEY bytes (longer inputs are cut to MAX_KEY, as the reference does)."""
    cdef uint64_t acc, lo, hi, keyed, bitflip, bf2
    cdef uint32_t c1, c2, c3, combined
    cdef const uint8_t *s = SECRET
    if n > MAX_KEY:
        n = MAX_KEY
    if n == 0:
        return avalanche64(seed ^ (rd64(s + 56) ^ rd64(s + 64)))
    if n <= 3:
        c1 = p[0]
        c2 = p[n >> 1]
        c3 = p[n - 1]
        combined = (c1 << 16) | (c2 << 24) | c3 | (<uint32_t> n << 8)
        bitflip = <uint64_t> (rd32(s) ^ rd32(s + 4)) + seed
        return avalanche64(<uint64_t> combined ^ bitflip)
    if n <= 8:
        seed ^= <uint64_t> __builtin_bswap32(<uint32_t> seed) << 32
        bitflip = (rd64(s + 8) ^ rd64(s + 16)) - seed
        keyed = (<uint64_t> rd32(p + n - 4) + (<uint64_t> rd32(p) << 32)) ^ bitflip
        return rrmxmx(keyed, n)
    if n <= 16:
        bitflip = (rd64(s + 24) ^ rd64(s + 32)) + seed
        bf2 = (rd64(s + 40) ^ rd64(s + 48)) - seed
        lo = rd64(p) ^ bitflip
        hi = rd64(p + n - 8) ^ bf2
        acc = n + __builtin_bswap64(lo) + hi + adc_mul128_fold64(lo, hi)
        return avalanche3(acc)
    acc = n * P64_1
    if n > 32:
        if n > 64:
            if n > 96:
                acc += mix16(p + 48, s + 96, seed)
                acc += mix16(p + n - 64, s + 112, seed)
            acc += mix16(p + 32, s + 64, seed)
            acc += mix16(p + n - 48, s + 80, seed)
        acc += mix16(p + 16, s + 32, seed)
        acc += mix16(p + n - 32, s + 48, seed)
    acc += mix16(p, s, seed)
    acc += mix16(p + n - 16, s + 16, seed)
    return avalanche3(acc)


cdef int maglev_fill(int32_t *table, int n, const uint64_t *offset, const uint64_t *skip,
                     const uint32_t *weight) noexcept nogil:
    """Fill table[MAGLEV_M] with member indices 0..n-1 (members already sorted by key).

    offset[i] < M and 1 <= skip[i] < M; weights > 0. Returns 0, or -1 when n == 0.
    Scratch space lives on the caller's table: pos/credit are small stack-free arrays.
    """
    cdef uint64_t filled = 0
    cdef uint32_t wmax = 0
    cdef int i
    cdef uint64_t c
    cdef uint64_t *pos
    cdef uint64_t *credit
    if n <= 0:
        return -1

    pos = <uint64_t *> malloc(n * sizeof(uint64_t))
    credit = <uint64_t *> malloc(n * sizeof(uint64_t))
    if pos == NULL or credit == NULL:
        free(pos)
        free(credit)
        return -1
    for i in range(n):
        pos[i] = offset[i]
        credit[i] = 0
        if weight[i] > wmax:
            wmax = weight[i]
    for i in range(MAGLEV_M):
        table[i] = -1
    while filled < MAGLEV_M:
        for i in range(n):
            credit[i] += weight[i]
            if credit[i] < wmax:
                continue
            credit[i] -= wmax
            c = pos[i]
            while table[c] >= 0:
                c += skip[i]
                if c >= MAGLEV_M:
                    c -= MAGLEV_M
            table[c] = i
            c += skip[i]
            pos[i] = c - MAGLEV_M if c >= MAGLEV_M else c
            filled += 1
            if filled == MAGLEV_M:
                break
    free(pos)
    free(credit)
    return 0


def hash64(bytes data, uint64_t seed=0):
    """XXH3-64 as the C fast path computes it (for tests and `adcctl lookup`)."""
    return xxh3_64(<const uint8_t *> data, len(data), seed)


def build_table(members):
    """The Maglev table for ((key bytes, weight), ...) sorted by key: a tuple of MAGLEV_M indices."""

    cdef int n = len(members)
    cdef int i
    if n == 0:
        return ()
    cdef uint64_t *off = <uint64_t *> malloc(n * 8)
    cdef uint64_t *sk = <uint64_t *> malloc(n * 8)
    cdef uint32_t *w = <uint32_t *> malloc(n * 4)
    cdef int32_t *t = <int32_t *> malloc(MAGLEV_M * 4)
    try:
        for i, (k, wt) in enumerate(members):
            off[i] = xxh3_64(<const uint8_t *> k, len(k), 0) % MAGLEV_M
            sk[i] = xxh3_64(<const uint8_t *> k, len(k), 1) % (MAGLEV_M - 1) + 1
            w[i] = wt
        maglev_fill(t, n, off, sk, w)
        return tuple(t[i] for i in range(MAGLEV_M))
    finally:
        free(off); free(sk); free(w); free(t)
