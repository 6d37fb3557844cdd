# cython: language_level=3
"""The load-balancing algorithms of adc.lb, in C for the fast path.

A Sched holds a pool's members (weight, limit, a pointer to the caller's
active count, eligibility) and the algorithm's state. sched_pick returns a
member index or -1; it never allocates. The rules are those of the Python
reference modules (adc/lb/*.py), which document each algorithm; the same case
table (tests/unit/test_lb_cases.py) runs against both, through CScheduler.
"""
from libc.stdint cimport uint8_t, int32_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcmp

from adc._fastpath.maglev cimport MAGLEV_M, MAX_KEY, xxh3_64, maglev_fill

ALGORITHMS = {
    "round_robin": ALG_ROUND_ROBIN,
    "weighted_round_robin": ALG_WEIGHTED_ROUND_ROBIN,
    "least_connections": ALG_LEAST_CONNECTIONS,
    "random_two": ALG_RANDOM_TWO,
    "source_hash": ALG_SOURCE_HASH,
    "maglev": ALG_MAGLEV,
}


cdef int algo_code(str name) except -1:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown load-balancing algorithm {name!r}") from None


cdef int sched_init(Sched *s, int algo, int n) noexcept nogil:
    """Zeroed members for n entries; the caller fills s.m[i] then calls sched_build. -1: no memory."""
    s.algo = algo
    s.n = n
    s.m = <SMember *> calloc(n if n > 0 else 1, sizeof(SMember))
    s.order = <int32_t *> calloc(n if n > 0 else 1, sizeof(int32_t))
    s.norder = 0
    s.total = 0
    s.table = NULL
    s.next = 0
    s.rng = 0x9E3779B97F4A7C15ULL
    if s.m == NULL or s.order == NULL:
        return -1
    return 0


cdef void sched_free(Sched *s) noexcept nogil:
    free(s.m)
    free(s.order)
    free(s.table)
    s.m = NULL
    s.order = NULL
    s.table = NULL
    s.n = 0
    s.norder = 0


cdef inline int key_less(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) noexcept nogil:
    cdef size_t k = al if al < bl else bl
    cdef int c = memcmp(a, b, k)
    if c != 0:
        return c < 0
    return al < bl


cdef int sched_build(Sched *s, const uint8_t **keys, const size_t *keylens) noexcept nogil:
    """Compute the eligible order and (maglev) the table from s.m[*].eligible/weight and the member keys."""
    cdef int i, j, t
    cdef uint64_t *off
    cdef uint64_t *sk
    cdef uint32_t *w
    s.norder = 0
    s.total = 0
    for i in range(s.n):
        if s.m[i].eligible and s.m[i].weight > 0:
            s.order[s.norder] = i
            s.norder += 1
            s.total += s.m[i].weight
    free(s.table)
    s.table = NULL
    if s.algo != ALG_MAGLEV or s.norder == 0:
        return 0
    # maglev: eligible members sorted by key, so the table never depends on pool order
    for i in range(1, s.norder):
        t = s.order[i]
        j = i - 1
        while j >= 0 and key_less(keys[t], keylens[t], keys[s.order[j]], keylens[s.order[j]]):
            s.order[j + 1] = s.order[j]
            j -= 1
        s.order[j + 1] = t
    off = <uint64_t *> malloc(s.norder * sizeof(uint64_t))
    sk = <uint64_t *> malloc(s.norder * sizeof(uint64_t))
    w = <uint32_t *> malloc(s.norder * sizeof(uint32_t))
    s.table = <int32_t *> malloc(MAGLEV_M * sizeof(int32_t))
    if off == NULL or sk == NULL or w == NULL or s.table == NULL:
        free(off); free(sk); free(w); free(s.table)
        s.table = NULL
        return -1
    for i in range(s.norder):
        t = s.order[i]
        off[i] = xxh3_64(keys[t], keylens[t], 0) % MAGLEV_M
        sk[i] = xxh3_64(keys[t], keylens[t], 1) % (MAGLEV_M - 1) + 1
        w[i] = s.m[t].weight
    maglev_fill(s.table, s.norder, off, sk, w)
    free(off); free(sk); free(w)
    return 0


cdef inline bint usable(Sched *s, int i, const int32_t *ex, int nex) noexcept nogil:
    cdef SMember *m = &s.m[i]
    cdef int k
    if not m.ok or m.weight == 0:
        return False
    if m.max_conn and m.active != NULL and m.active[0] >= m.max_conn:
        return False
    for k in range(nex):
        if ex[k] == i:
            return False
    return True


cdef inline uint64_t act(SMember *m) noexcept nogil:
    return m.active[0] if m.active != NULL else 0


cdef inline uint64_t rand64(Sched *s) noexcept nogil:
    # xorshift64*: quality enough to spread draws, no shared state between workers
    cdef uint64_t x = s.rng
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    s.rng = x
    return x * 0x2545F4914F6CDD1DULL


cdef int pick_rr(Sched *s, const int32_t *ex, int nex) noexcept nogil:
    cdef int k, i
    for k in range(s.n):
        i = (s.next + k) % s.n
        if usable(s, i, ex, nex):
            s.next = (i + 1) % s.n
            return i
    return -1


cdef int pick_swrr(Sched *s, const int32_t *ex, int nex) noexcept nogil:
    cdef int i, best = -1
    cdef int64_t total = 0
    for i in range(s.n):
        if not usable(s, i, ex, nex):
            continue
        s.m[i].cur += s.m[i].weight
        total += s.m[i].weight
        if best < 0 or s.m[i].cur > s.m[best].cur:
            best = i
    if best >= 0:
        s.m[best].cur -= total
    return best


cdef int pick_lc(Sched *s, const int32_t *ex, int nex) noexcept nogil:
    cdef int k, i, best = -1
    for k in range(s.n):
        i = (s.next + k) % s.n
        if not usable(s, i, ex, nex):
            continue
        if best < 0 or act(&s.m[i]) * s.m[best].weight < act(&s.m[best]) * s.m[i].weight:
            best = i
    if best >= 0:
        s.next = (best + 1) % s.n
    return best


cdef int draw(Sched *s, uint64_t total, const int32_t *ex, int nex) noexcept nogil:
    cdef int64_t r = <int64_t> (rand64(s) % total)
    cdef int i, last = -1
    for i in range(s.n):
        if usable(s, i, ex, nex):
            last = i
            r -= s.m[i].weight
            if r < 0:
                return i
    return last


cdef int pick_r2(Sched *s, const int32_t *ex, int nex) noexcept nogil:
    cdef int i, a, b, cnt = 0, only = -1
    cdef uint64_t total = 0
    for i in range(s.n):
        if usable(s, i, ex, nex):
            total += s.m[i].weight
            cnt += 1
            only = i
    if cnt <= 1:
        return only
    a = draw(s, total, ex, nex)
    b = draw(s, total, ex, nex)
    if act(&s.m[b]) * s.m[a].weight < act(&s.m[a]) * s.m[b].weight:
        return b
    return a


cdef int pick_sh(Sched *s, const uint8_t *key, size_t keylen, const int32_t *ex, int nex) noexcept nogil:
    cdef int64_t r
    cdef int k, i, start = 0
    if s.total == 0:
        return pick_rr(s, ex, nex)
    r = <int64_t> (xxh3_64(key, keylen, 0) % s.total)
    for k in range(s.norder):
        r -= s.m[s.order[k]].weight
        if r < 0:
            start = k
            break
    for k in range(s.norder):
        i = s.order[(start + k) % s.norder]
        if usable(s, i, ex, nex):
            return i
    return -1


cdef int pick_maglev(Sched *s, const uint8_t *key, size_t keylen, const int32_t *ex, int nex) noexcept nogil:
    cdef int k, i, any_ok = 0
    cdef uint64_t slot
    if s.table == NULL:
        return -1
    for k in range(s.norder):
        if usable(s, s.order[k], ex, nex):
            any_ok = 1
            break
    if not any_ok:
        return -1
    slot = xxh3_64(key, keylen, 0) % MAGLEV_M
    for k in range(MAGLEV_M):
        i = s.order[s.table[slot]]
        if usable(s, i, ex, nex):
            return i
        slot += 1
        if slot == MAGLEV_M:
            slot = 0
    return -1


cdef int sched_pick(Sched *s, const uint8_t *key, size_t keylen,
                    const int32_t *exclude, int nexclude) noexcept nogil:
    """A member index for a new flow, or -1 when none may take it. key may be NULL (no hash input)."""
    if s.n == 0:
        return -1
    if s.algo == ALG_ROUND_ROBIN:
        return pick_rr(s, exclude, nexclude)
    if s.algo == ALG_WEIGHTED_ROUND_ROBIN:
        return pick_swrr(s, exclude, nexclude)
    if s.algo == ALG_LEAST_CONNECTIONS:
        return pick_lc(s, exclude, nexclude)
    if s.algo == ALG_RANDOM_TWO:
        return pick_r2(s, exclude, nexclude)
    if key == NULL:
        return pick_rr(s, exclude, nexclude)
    if s.algo == ALG_SOURCE_HASH:
        return pick_sh(s, key, keylen, exclude, nexclude)
    return pick_maglev(s, key, keylen, exclude, nexclude)


def _eligible(m):
    return (getattr(m, "admin", "enabled") == "enabled" and getattr(m, "health", "up") == "up"
            and m.weight > 0)


cdef class CScheduler:
    """The C algorithms behind adc.lb's interface: pick(key, exclude) over Python members.

    For tests and tools; the engine drives Sched directly. Live state (usable,
    active, weight) is read from the members at each pick, as the reference does.
    """
    cdef Sched s
    cdef list members
    cdef uint32_t *active
    cdef readonly str name

    def __cinit__(self, str algorithm, list members, seed=None):
        cdef int n = len(members)
        cdef int i
        cdef const uint8_t **keys
        cdef size_t *lens
        self.name = algorithm
        self.members = members
        if sched_init(&self.s, algo_code(algorithm), n) < 0:
            raise MemoryError()
        self.active = <uint32_t *> calloc(n if n > 0 else 1, sizeof(uint32_t))
        if seed is not None:
            self.s.rng = (<uint64_t> seed) | 1
        kb = [m.key.encode()[:MAX_KEY] for m in members]
        keys = <const uint8_t **> malloc((n if n > 0 else 1) * sizeof(void *))
        lens = <size_t *> malloc((n if n > 0 else 1) * sizeof(size_t))
        for i in range(n):
            self.s.m[i].weight = members[i].weight
            self.s.m[i].eligible = _eligible(members[i])
            self.s.m[i].active = &self.active[i]
            keys[i] = <const uint8_t *> (<bytes> kb[i])
            lens[i] = len(kb[i])
        sched_build(&self.s, keys, lens)
        free(keys)
        free(lens)

    def __dealloc__(self):
        sched_free(&self.s)
        free(self.active)

    def pick(self, key=None, exclude=()):
        cdef int i, n = self.s.n, nex = 0
        cdef int32_t ex[64]
        cdef const uint8_t *kp = NULL
        cdef size_t kl = 0
        for i in range(n):
            m = self.members[i]
            self.s.m[i].ok = m.usable
            self.s.m[i].weight = m.weight
            self.active[i] = m.active
            if nex < 64 and m in exclude:
                ex[nex] = i
                nex += 1
        if key is not None:
            kp = <const uint8_t *> (<bytes> key)
            kl = len(key)
        i = sched_pick(&self.s, kp, kl, ex, nex)
        return self.members[i] if i >= 0 else None

    def table(self):
        """The maglev table as indices into the members list (pool order), or None."""
        if self.s.table == NULL:
            return None
        return [self.s.order[self.s.table[i]] for i in range(MAGLEV_M)]


def make_scheduler(str algorithm, list members):
    return CScheduler(algorithm, members)
