# cython: language_level=3
"""Per-worker counters in shared memory: one fixed-layout region per worker.

Layout: NSLOTS slots of NFIELDS little-endian uint64, slot-major. The owner
(one worker) writes without locks; aligned 64-bit stores are atomic on the
architectures we run on, so the supervisor may read at any time and sum the
regions of all workers. A region outlives its worker: the supervisor creates
it (memfd) and hands it to each incarnation of the worker slot.
"""
import mmap

from libc.stdint cimport uint64_t

DEFAULT_SLOTS = 4096


cdef class CounterRegion:
    """A view of one region. `fd` is a memfd of at least nslots*NFIELDS*8 bytes."""

    def __cinit__(self, int fd, Py_ssize_t nslots=DEFAULT_SLOTS):
        cdef const unsigned char[:] view
        self.nslots = nslots
        self._mm = mmap.mmap(fd, nslots * NFIELDS * 8, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        view = memoryview(self._mm).cast("B")
        self.base = <uint64_t *> &view[0]

    @staticmethod
    def size(Py_ssize_t nslots=DEFAULT_SLOTS):
        return nslots * NFIELDS * 8

    cdef void add(self, Py_ssize_t slot, int field, uint64_t n) noexcept nogil:
        if 0 <= slot < self.nslots:
            self.base[slot * NFIELDS + field] += n

    cdef void sub(self, Py_ssize_t slot, int field, uint64_t n) noexcept nogil:
        cdef uint64_t *p
        if 0 <= slot < self.nslots:
            p = &self.base[slot * NFIELDS + field]
            p[0] = p[0] - n if p[0] >= n else 0

    def inc(self, Py_ssize_t slot, int field, uint64_t n=1):
        self.add(slot, field, n)

    def dec(self, Py_ssize_t slot, int field, uint64_t n=1):
        self.sub(slot, field, n)

    def get(self, Py_ssize_t slot, int field):
        if 0 <= slot < self.nslots:
            return self.base[slot * NFIELDS + field]
        return 0

    def read_slot(self, Py_ssize_t slot):
        """All fields of one slot, as a list (the reader's snapshot)."""
        cdef int f
        if not 0 <= slot < self.nslots:
            return [0] * NFIELDS
        return [self.base[slot * NFIELDS + f] for f in range(<int> NFIELDS)]

    def reset_slot(self, Py_ssize_t slot):
        """Zero a slot that is being given to a new object."""
        cdef int f
        if 0 <= slot < self.nslots:
            for f in range(<int> NFIELDS):
                self.base[slot * NFIELDS + f] = 0

    def zero_active(self):
        """A worker died: the connections it counted as active are gone with it."""
        cdef Py_ssize_t s
        for s in range(self.nslots):
            self.base[s * NFIELDS + CONN_ACTIVE] = 0

    def close(self):
        self.base = NULL
        self.nslots = 0
        self._mm.close()


# API names of the fields, in slot order
FIELD_NAMES = ("conn_total", "conn_active", "bytes_in", "bytes_out",
               "requests", "errors", "refused", "timeouts", "resp_5xx",
               "tls_handshakes", "tls_resumed", "tls_handshake_failures")
