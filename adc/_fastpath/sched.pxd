from libc.stdint cimport uint8_t, int32_t, uint32_t, uint64_t, int64_t

cpdef enum Algo:
    ALG_ROUND_ROBIN = 0
    ALG_WEIGHTED_ROUND_ROBIN = 1
    ALG_LEAST_CONNECTIONS = 2
    ALG_RANDOM_TWO = 3
    ALG_SOURCE_HASH = 4
    ALG_MAGLEV = 5

cdef struct SMember:
    uint32_t weight
    uint32_t max_conn        # 0: no limit
    uint32_t *active         # the caller's live count of this member's flows
    uint8_t eligible         # in the hashing tables (admin enabled, health up, weight > 0); set before build
    uint8_t ok               # may take new flows now (the engine keeps it equal to eligible)
    int64_t cur              # smooth weighted round robin state

cdef struct Sched:
    int algo
    int n
    SMember *m
    int32_t *order           # eligible members: by key for maglev, in pool order for source_hash
    int norder
    uint64_t total           # sum of eligible weights
    int32_t *table           # maglev: MAGLEV_M indices into order, or NULL
    uint32_t next
    uint64_t rng

cdef int sched_init(Sched *s, int algo, int n) noexcept nogil
cdef void sched_free(Sched *s) noexcept nogil
cdef int sched_build(Sched *s, const uint8_t **keys, const size_t *keylens) noexcept nogil
cdef int sched_pick(Sched *s, const uint8_t *key, size_t keylen,
                    const int32_t *exclude, int nexclude) noexcept nogil
cdef int algo_code(str name) except -1
