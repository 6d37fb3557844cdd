# cython: language_level=3, boundscheck=False, wraparound=False
"""adc.l7._scan: the field-line scanner of the HTTP core in C (adc.l7.http1.scan_fields_py is the reference).

scan_fields(head, pos, special) -> (fields, specials)
    head[pos:len(head)-2] holds the field lines of a head, each ending in CRLF
    (the final empty line's CRLF excluded). `fields` gets (name, value) of each
    line whose lower-cased name is not in `special`; `specials` gets (lower-cased
    name, value) of the others, in order. Values lose their surrounding OWS.
    Raises ValueError(reason) on: a name that is not a token, whitespace before
    the colon, obsolete line folding, a control byte (other than HTAB) in a
    value, a bare CR or LF.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.ref cimport PyObject
from libc.stdlib cimport realloc
from libc.stdio cimport snprintf
from libc.string cimport memchr, memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

cdef unsigned char TCHAR[256]
cdef unsigned char LOWER[256]
cdef unsigned char NAMEC[256]     # field-name bytes: 0 not a tchar, 1 a tchar, 3 an upper-case letter
cdef unsigned char VALUEC[256]    # 1: may appear in a field value (VCHAR, obs-text, SP, HTAB)


cdef void _init() noexcept:
    cdef int c
    for c in range(256):
        TCHAR[c] = 0
        LOWER[c] = c
        VALUEC[c] = 1 if (c == 9 or 32 <= c <= 126 or c >= 128) else 0
    for c in b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        TCHAR[c] = 1
    for c in range(65, 91):
        LOWER[c] = c + 32
    for c in range(256):
        NAMEC[c] = (3 if 65 <= c <= 90 else 1) if TCHAR[c] else 0

_init()


cdef object _mask_a = None, _mask_b = None
cdef unsigned long long _mask_a_bits = 0, _mask_b_bits = 0


cdef unsigned long long _len_mask(special) except? 0:
    """A bit per length of the names in `special` (63: 63 or longer), cached for the two
    sets the heads pass, so that most names are never hashed nor lower-cased."""
    global _mask_a, _mask_b, _mask_a_bits, _mask_b_bits
    cdef unsigned long long m = 0
    cdef Py_ssize_t n
    if special is _mask_a:
        return _mask_a_bits
    if special is _mask_b:
        return _mask_b_bits
    for name in special:
        n = len(name)
        m |= 1ULL << (n if n < 63 else 63)
    if type(special) is not frozenset:      # could change before the next call: not cached
        return m
    _mask_b, _mask_b_bits = _mask_a, _mask_a_bits
    _mask_a, _mask_a_bits = special, m
    return m


cdef inline Py_ssize_t _put_line(char *out, Py_ssize_t k, const unsigned char *p, Py_ssize_t ns,
                                 Py_ssize_t ne, Py_ssize_t vs, Py_ssize_t ve) noexcept:
    """Write the field line p[ns:ne] ": " p[vs:ve] CRLF at out[k:]; the new end."""
    memcpy(out + k, p + ns, ne - ns)
    k += ne - ns
    out[k] = 58
    out[k + 1] = 32
    k += 2
    memcpy(out + k, p + vs, ve - vs)
    k += ve - vs
    out[k] = 13
    out[k + 1] = 10
    return k + 2


def scan_fields(bytes head, Py_ssize_t pos, special):
    fields = []
    specials = []
    _scan_fields(head, pos, special, fields, specials, NULL, NULL)
    return fields, specials


cdef Py_ssize_t _scan_fields(bytes head, Py_ssize_t pos, special, list fields, list specials,
                             char *kept, Py_ssize_t *count, Py_ssize_t size=-1) except -1:
    """The scanner. With `kept`, the lines that are not special are not made into tuples: each is
    written there as `name: value` CRLF (the canonical form the proxy forwards) and the return
    value is the number of bytes written; `kept` must hold len(head) * 5/4 bytes (a line of at
    least 4 bytes may gain the space after its colon). `count`, when given,
    gets the number of field lines. The head is head[:size] (all of it when size is -1)."""
    cdef const unsigned char *p = <const unsigned char *> PyBytes_AS_STRING(head)
    cdef Py_ssize_t end = (PyBytes_GET_SIZE(head) if size < 0 else size) - 2
    cdef Py_ssize_t ns, ne, vs, ve, i, k = 0, lines = 0
    cdef unsigned char c
    cdef bint upper
    cdef bytes lname
    cdef char *w
    cdef unsigned long long lmask = _len_mask(special)
    # the two sets of the parsers: names recognised in C, no bytes made for the name nor hashed
    cdef int known = 1 if special is REQ_SPECIAL else (2 if special is HOP else 0)
    while pos < end:
        lines += 1
        ns = pos
        c = 0
        while pos < end and NAMEC[p[pos]]:
            c |= NAMEC[p[pos]]
            pos += 1
        upper = c & 2
        if pos == ns:
            if p[pos] == 32 or p[pos] == 9:
                raise ValueError("obsolete line folding")
            raise ValueError("invalid field name")
        if pos >= end or p[pos] != 58:           # ':' right after the name
            raise ValueError("invalid field name or whitespace before the colon")
        ne = pos
        pos += 1
        while pos < end and (p[pos] == 32 or p[pos] == 9):
            pos += 1
        vs = pos
        while pos < end and VALUEC[p[pos]]:
            pos += 1
        if pos < end and p[pos] != 13:
            raise ValueError("control byte in a field value")
        if pos >= end or p[pos + 1] != 10:
            raise ValueError("bare CR in head")
        ve = pos
        while ve > vs and (p[ve - 1] == 32 or p[ve - 1] == 9):
            ve -= 1
        pos += 2
        i = ne - ns
        if (lmask >> (i if i < 63 else 63)) & 1:
            # a special name has this length: is it one?
            if known:
                i = _special_index(p + ns, ne - ns, known == 2)
                if i >= 0:
                    specials.append((<object> _SPECIAL_OBJ[i],
                                     PyBytes_FromStringAndSize(<const char *> p + vs, ve - vs)))
                    continue
            else:
                if upper:
                    # a new object to write into (a one-byte bytes made from data is a shared one)
                    lname = PyBytes_FromStringAndSize(NULL, ne - ns)
                    w = PyBytes_AS_STRING(lname)
                    for i in range(ne - ns):
                        w[i] = LOWER[p[ns + i]]
                else:
                    lname = PyBytes_FromStringAndSize(<const char *> p + ns, ne - ns)
                if lname in special:
                    specials.append((lname, PyBytes_FromStringAndSize(<const char *> p + vs, ve - vs)))
                    continue
        if kept != NULL:
            k = _put_line(kept, k, p, ns, ne, vs, ve)
        else:
            fields.append((PyBytes_FromStringAndSize(<const char *> p + ns, ne - ns),
                           PyBytes_FromStringAndSize(<const char *> p + vs, ve - vs)))
    if pos != end:
        raise ValueError("bare CR or LF in head")
    if count != NULL:
        count[0] = lines
    return k


cdef list _split_kept(bytes kept):
    """The (name, value) pairs of a canonical block of field lines (what _scan_fields wrote)."""
    cdef const char *p = PyBytes_AS_STRING(kept)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(kept), i = 0, ns, ne
    cdef const char *q
    out = []
    while i < n:
        ns = i
        q = <const char *> memchr(p + i, 58, n - i)
        ne = q - p
        q = <const char *> memchr(p + ne, 13, n - ne)
        i = q - p
        out.append((PyBytes_FromStringAndSize(p + ns, ne - ns),
                    PyBytes_FromStringAndSize(p + ne + 2, i - ne - 2)))
        i += 2
    return out


cdef object _kept_field(bytes kept, bytes name):
    """The value of the first line of a kept block whose name is `name` (lower case), or None."""
    cdef const char *p = PyBytes_AS_STRING(kept)
    cdef const char *nm = PyBytes_AS_STRING(name)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(kept), ln = PyBytes_GET_SIZE(name), i = 0, ne, j
    cdef const char *q
    while i < n:
        q = <const char *> memchr(p + i, 58, n - i)
        ne = q - p
        q = <const char *> memchr(p + ne, 13, n - ne)
        if ne - i == ln:
            j = 0
            while j < ln and LOWER[<unsigned char> p[i + j]] == <unsigned char> nm[j]:
                j += 1
            if j == ln:
                return PyBytes_FromStringAndSize(p + ne + 2, (q - p) - ne - 2)
        i = (q - p) + 2
    return None


cdef char *_kept_buf = NULL          # scratch for _kept_bytes, grown to the largest head seen
cdef Py_ssize_t _kept_cap = 0


cdef bytes _kept_bytes(bytes head, Py_ssize_t pos, special, list specials, Py_ssize_t *count,
                       Py_ssize_t size=-1):
    """_scan_fields with the kept lines as one canonical block, as bytes."""
    global _kept_buf, _kept_cap
    if size < 0:
        size = PyBytes_GET_SIZE(head)
    # a line grows by at most one byte ("a:b" CRLF becomes "a: b" CRLF) and takes at least four
    cdef Py_ssize_t n = size + size // 4 + 8, k
    cdef char *nb
    if n > _kept_cap:
        nb = <char *> realloc(_kept_buf, n)
        if nb == NULL:
            raise MemoryError()
        _kept_buf, _kept_cap = nb, n
    k = _scan_fields(head, pos, special, None, specials, _kept_buf, count, size)
    return PyBytes_FromStringAndSize(_kept_buf, k)


# ----------------------------------------------------------------------------------------
# Whole heads. These are the functions of adc.l7.http1 of the same names (the reference,
# with the rules at the top of that file), with the regular expressions of the common path
# replaced by C loops; tests/l7 runs the same cases and fuzzing against both.
from adc.l7 import http1 as _h



cdef class Head:
    """What a parsed request and response share: their end-to-end fields."""

    @property
    def fields(self):
        """(name, value) of the end-to-end fields; made from `kept` on first use, after which
        `kept` is None (the list may be changed by its user)."""
        if self._fields is None:
            self._fields = _split_kept(self.kept) if self.kept is not None else []
            self.kept = None
        return self._fields

    @fields.setter
    def fields(self, value):
        self._fields = value
        self.kept = None

    def field(self, bytes name):
        """The value of the first field named `name` (lower case), or None; read from the kept
        block when the list was never asked for (an access log reads two fields a request)."""
        if self._fields is not None or self.kept is None:
            for k, v in self.fields:
                if k.lower() == name:
                    return v
            return None
        return _kept_field(self.kept, name)


cdef class Request(Head):
    """adc.l7.http1.Request as an extension type (same attributes, same methods; _scan.pxd)."""

    def __cinit__(self):
        self.te_codings = None
        self.upgrade = None
        self.expect_continue = False
        self.absolute = False
        self.te_trailers = False
        self.request_id = None

    @property
    def has_body(self):
        return self.chunked or bool(self.content_length)

    def __repr__(self):
        return f"<Request {self.method!r} {self.target!r} host={self.host!r}>"


cdef class Response(Head):
    """adc.l7.http1.Response as an extension type (_scan.pxd)."""


cdef class LengthReader:
    """adc.l7.http1.LengthReader as an extension type."""
    chunked = False

    def __init__(self, Py_ssize_t n):
        self.remaining = n

    def feed(self, data):
        cdef Py_ssize_t r = self.remaining
        cdef Py_ssize_t n = len(data)
        if n < r:
            self.remaining = r - n
            return data, None
        self.remaining = 0
        if n == r:
            return data, b""
        return data[:r], data[r:]
cdef object ClientProtocolError = _h.ClientProtocolError
cdef object BackendProtocolError = _h.BackendProtocolError
cdef object REQ_SPECIAL = _h._REQ_SPECIAL
cdef object HOP = _h.HOP

# REQ_SPECIAL (HOP is a part of it) as C data for _special_index, made from the sets themselves
cdef tuple _SPECIAL = tuple(sorted(REQ_SPECIAL))
cdef enum:
    MAX_SPECIAL = 32
cdef int _NSPECIAL = len(_SPECIAL)
cdef PyObject *_SPECIAL_OBJ[MAX_SPECIAL]
cdef const unsigned char *_SPECIAL_NAME[MAX_SPECIAL]
cdef Py_ssize_t _SPECIAL_LEN[MAX_SPECIAL]
cdef bint _SPECIAL_HOP[MAX_SPECIAL]


def _init_special():
    if _NSPECIAL > MAX_SPECIAL or not HOP <= REQ_SPECIAL:
        raise ImportError("adc.l7._scan: http1's special field sets do not fit its tables")
    cdef int i
    for i in range(_NSPECIAL):
        b = _SPECIAL[i]
        _SPECIAL_OBJ[i] = <PyObject *> b        # the tuple keeps it
        _SPECIAL_NAME[i] = <const unsigned char *> PyBytes_AS_STRING(b)
        _SPECIAL_LEN[i] = PyBytes_GET_SIZE(b)
        _SPECIAL_HOP[i] = b in HOP

_init_special()


cdef int _special_index(const unsigned char *p, Py_ssize_t n, bint hop_only) noexcept:
    """The index in _SPECIAL of the field name p[:n] (any case), or -1 when it is not special."""
    cdef int i
    cdef Py_ssize_t j
    cdef const unsigned char *q
    for i in range(_NSPECIAL):
        if _SPECIAL_LEN[i] != n or (hop_only and not _SPECIAL_HOP[i]):
            continue
        q = _SPECIAL_NAME[i]
        j = 0
        while j < n and LOWER[p[j]] == q[j]:
            j += 1
        if j == n:
            return i
    return -1
cdef object ABSOLUTE = _h.ABSOLUTE


cdef class Limits:
    """adc.l7.http1.Limits with C fields (the parsers read them without attribute lookups)."""

    def __init__(self, request_line=8192, header_bytes=32768, header_count=100, body=None):
        self.request_line = request_line
        self.header_bytes = header_bytes
        self.header_count = header_count
        self.body = body


cdef Limits DEFAULT_LIMITS = Limits()

cdef unsigned char REGNAME[256]
cdef unsigned char IP6[256]


cdef void _init2() noexcept:
    cdef int c
    for c in range(256):
        REGNAME[c] = 0
        IP6[c] = 0
    for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~!$&'()*+,;=%-":
        REGNAME[c] = 1
    for c in b"0123456789abcdefABCDEF:.":
        IP6[c] = 1

_init2()


cdef inline bint _vchar(unsigned char c) noexcept:
    return (0x21 <= c <= 0x7e) or c >= 0x80


cdef object _content_length(bytes v):
    """int of 1..18 ASCII digits, else None."""
    cdef const unsigned char *p = <const unsigned char *> PyBytes_AS_STRING(v)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(v), i
    cdef long long x = 0
    if n < 1 or n > 18:
        return None
    for i in range(n):
        if not (48 <= p[i] <= 57):
            return None
        x = x * 10 + (p[i] - 48)
    return x


cdef object _host_name(bytes host):
    """The lower-cased host of a Host value (port dropped), or None when malformed."""
    cdef const unsigned char *p = <const unsigned char *> PyBytes_AS_STRING(host)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(host), i = 0, hend
    cdef bint upper = False
    if n > 0 and p[0] == 91:            # '[' IPv6 ']'
        i = 1
        while i < n and IP6[p[i]]:
            i += 1
        if i == 1 or i >= n or p[i] != 93:
            return None
        i += 1
    else:
        while i < n and REGNAME[p[i]]:
            if 65 <= p[i] <= 90:
                upper = True
            i += 1
    hend = i
    if i < n:
        if p[i] != 58:
            return None
        i += 1
        while i < n:
            if not (48 <= p[i] <= 57):
                return None
            i += 1
    name = host[:hend]
    return name.lower() if (upper or p[0] == 91) else name


cdef Py_ssize_t _eol(const unsigned char *p, Py_ssize_t n) noexcept:
    """Index of the first CRLF in p[:n], or -1."""
    cdef const unsigned char *q
    cdef Py_ssize_t i = 0
    while i + 1 < n:
        q = <const unsigned char *> memchr(p + i, 13, n - i - 1)
        if q == NULL:
            return -1
        i = q - p
        if p[i + 1] == 10:
            return i
        i += 1
    return -1


cdef bint _connection(conn, int minor, msg, bint *upgrade) except -1:
    """http1.connection_options, with the usual single token decided here without a set."""
    if conn is None:
        return minor == 1
    if conn == b"keep-alive" or conn == b"close":
        return conn == b"keep-alive"
    keep, up = _h.connection_options(conn, minor, msg)
    if upgrade != NULL:
        upgrade[0] = up
    return keep


def parse_request_head(bytes head, Limits limits not None=DEFAULT_LIMITS):
    cdef const unsigned char *p = <const unsigned char *> PyBytes_AS_STRING(head)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(head)
    cdef Py_ssize_t eol = _eol(p, n)
    cdef Py_ssize_t i = 0, ms, me, ts, te_
    cdef int minor
    err = ClientProtocolError
    if eol > limits.request_line:
        raise err("request line too long", 414)
    if n > limits.header_bytes:
        raise err("header block too large", 431)
    # request-line = method SP request-target SP HTTP-version
    while i < eol and TCHAR[p[i]]:
        i += 1
    if i == 0 or i >= eol or p[i] != 32:
        raise err("malformed request line")
    me = i
    i += 1
    ts = i
    while i < eol and _vchar(p[i]):
        i += 1
    if i == ts or i >= eol or p[i] != 32:
        raise err("malformed request line")
    te_ = i
    i += 1
    if (eol - i != 8 or p[i] != 72 or p[i + 1] != 84 or p[i + 2] != 84 or p[i + 3] != 80 or p[i + 4] != 47
            or not (48 <= p[i + 5] <= 57) or p[i + 6] != 46 or not (48 <= p[i + 7] <= 57)):
        raise err("malformed request line")
    if p[i + 5] != 49:
        raise err("HTTP version not supported", 505)
    minor = p[i + 7] - 48
    method = PyBytes_FromStringAndSize(<const char *> p, me)
    target = PyBytes_FromStringAndSize(<const char *> p + ts, te_ - ts)
    r = Request()
    r.head_size = n
    r.method = method
    r.minor = minor
    cdef Py_ssize_t nfields = 0
    specials = []
    try:
        kept = _kept_bytes(head, eol + 2, REQ_SPECIAL, specials, &nfields)
    except ValueError as e:
        raise err(str(e)) from None
    if nfields > limits.header_count:
        raise err("too many header fields", 431)
    host = None
    cl = None
    te = None
    conn = None
    xff = None
    for ln, value in specials:
        if ln == b"x-request-id":
            if r.request_id is None:
                r.request_id = value
            kept += b"X-Request-ID: " + value + b"\r\n"
        elif ln == b"x-forwarded-for":
            xff = value if xff is None else xff + b", " + value
        elif ln == b"x-forwarded-proto" or ln == b"x-forwarded-host":
            pass
        elif ln == b"host":
            if host is not None:
                raise err("duplicate Host")
            host = value
        elif ln == b"content-length":
            if cl is not None:
                raise err("duplicate Content-Length")
            cl = _content_length(value)
            if cl is None:
                raise err("malformed Content-Length")
        elif ln == b"transfer-encoding":
            te = value if te is None else te + b"," + value
        elif ln == b"connection":
            conn = value.lower() if conn is None else conn + b"," + value.lower()
        elif ln == b"upgrade":
            r.upgrade = value
        elif ln == b"te":
            if b"trailers" in value.lower():
                r.te_trailers = True
        elif ln == b"expect":
            if value.lower() == b"100-continue":
                r.expect_continue = True
            else:
                raise err("unsupported Expect", 417)
    r.kept = kept
    r.xff = xff
    cdef bint upgrade = False
    r.keep_alive = _connection(conn, minor, r, &upgrade)
    if not upgrade:
        r.upgrade = None
    if te is not None:
        if minor == 0:
            raise err("Transfer-Encoding in HTTP/1.0")
        if cl is not None:
            raise err("both Content-Length and Transfer-Encoding")
        names = _h.coding_names(te, err)
        if names[len(names) - 1] != b"chunked" or names.count(b"chunked") != 1:
            raise err("Transfer-Encoding must end in exactly one chunked")
        if len(names) > 1:
            r.te_codings = b", ".join(names[:len(names) - 1])
        r.chunked = True
        r.content_length = None
    else:
        r.chunked = False
        r.content_length = cl
    body = limits.body
    if body is not None and cl is not None and cl > body:
        raise err("body too large", 413)
    if p[ts] == 47:                       # origin-form
        pass
    elif target == b"*":
        if method != b"OPTIONS":
            raise err("asterisk-form only with OPTIONS")
    elif method == b"CONNECT":
        raise err("CONNECT is not served", 405)
    else:
        am = ABSOLUTE.fullmatch(target)
        if am is None:
            raise err("malformed request target")
        scheme, authority, rest = am.groups()
        if scheme.lower() not in (b"http", b"https") or b"@" in authority or not authority:
            raise err("malformed absolute-form target")
        if host is None and minor == 1:
            raise err("missing Host")
        host = authority
        target = rest or b"/"
        if target[:1] != b"/":
            target = b"/" + target
        r.absolute = True
    if host is None:
        if minor == 1:
            raise err("missing Host")
        host = b""
    hn = _host_name(host) if host else b""
    if hn is None:
        raise err("malformed Host")
    r.authority = host
    r.host = hn
    r.target = target
    cdef const char *tp = PyBytes_AS_STRING(target)
    cdef const char *qp = <const char *> memchr(tp, 63, PyBytes_GET_SIZE(target))     # '?'
    if qp == NULL:
        r.path = target
        r.query = None
    else:
        r.path = target[:qp - tp]
        r.query = target[qp - tp + 1:]
    return r


def parse_response_head(bytes head, bytes method, Limits limits not None=DEFAULT_LIMITS,
                        Py_ssize_t size=-1):
    """The head is head[:size] when size is given (the proxy parses its read buffer in place)."""
    cdef const unsigned char *p = <const unsigned char *> PyBytes_AS_STRING(head)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(head) if size < 0 else size
    cdef Py_ssize_t eol = _eol(p, n)
    cdef Py_ssize_t i
    cdef int status, minor
    err = BackendProtocolError
    if n > limits.header_bytes:
        raise err("response head too large")
    # status-line = HTTP-version SP 3DIGIT SP reason-phrase
    if (eol < 13 or p[0] != 72 or p[1] != 84 or p[2] != 84 or p[3] != 80 or p[4] != 47
            or not (48 <= p[5] <= 57) or p[6] != 46 or not (48 <= p[7] <= 57) or p[8] != 32
            or not (48 <= p[9] <= 57) or not (48 <= p[10] <= 57) or not (48 <= p[11] <= 57) or p[12] != 32):
        raise err("malformed status line")
    for i in range(13, eol):
        if not (p[i] == 9 or p[i] == 32 or _vchar(p[i])):
            raise err("malformed status line")
    if p[5] != 49:
        raise err("unsupported HTTP version")
    status = (p[9] - 48) * 100 + (p[10] - 48) * 10 + (p[11] - 48)
    if status < 100:
        raise err("malformed status code")
    minor = p[7] - 48
    r = Response()
    r.status = status
    r.reason = PyBytes_FromStringAndSize(<const char *> p + 13, eol - 13)
    r.minor = minor
    specials = []
    try:
        r.kept = _kept_bytes(head, eol + 2, HOP, specials, NULL, n)
    except ValueError as e:
        raise err(str(e)) from None
    cl = None
    te = None
    conn = None
    r.upgrade = None
    for ln, value in specials:
        if ln == b"content-length":
            if cl is not None:
                raise err("duplicate Content-Length")
            cl = _content_length(value)
            if cl is None:
                raise err("malformed Content-Length")
        elif ln == b"transfer-encoding":
            te = value if te is None else te + b"," + value
        elif ln == b"connection":
            conn = value.lower() if conn is None else conn + b"," + value.lower()
        elif ln == b"upgrade":
            r.upgrade = value
    keep = _connection(conn, minor, r, NULL)
    r.chunked = False
    r.content_length = None
    r.until_close = False
    r.te_codings = None
    if status < 200 or status == 204 or status == 304 or method == b"HEAD":
        r.no_body = True
        if method == b"HEAD" and cl is not None and status >= 200:
            r.content_length = cl
    else:
        r.no_body = False
        if te is not None:
            if cl is not None:
                raise err("both Content-Length and Transfer-Encoding")
            names = _h.coding_names(te, err)
            if names[len(names) - 1] == b"chunked" and names.count(b"chunked") == 1:
                r.chunked = True
                if len(names) > 1:
                    r.te_codings = b", ".join(names[:len(names) - 1])
            elif b"chunked" in names:
                raise err("chunked is not the last coding")
            else:
                r.until_close = True
                r.te_codings = b", ".join(names)
                keep = False
        elif cl is not None:
            r.content_length = cl
        else:
            r.until_close = True
            keep = False
    r.keep_alive = keep
    return r


def join_fields(list fields):
    """b"".join(b"%b: %b\\r\\n" % f for f in fields), in one allocation."""
    cdef Py_ssize_t total = 0, k = 0, ln, lv
    cdef tuple f
    cdef bytes name, value
    cdef char *w
    for f in fields:
        total += PyBytes_GET_SIZE(<bytes> f[0]) + PyBytes_GET_SIZE(<bytes> f[1]) + 4
    out = PyBytes_FromStringAndSize(NULL, total)
    w = PyBytes_AS_STRING(out)
    for f in fields:
        name = <bytes> f[0]
        value = <bytes> f[1]
        ln = PyBytes_GET_SIZE(name)
        lv = PyBytes_GET_SIZE(value)
        memcpy(w + k, PyBytes_AS_STRING(name), ln)
        k += ln
        w[k] = 58
        w[k + 1] = 32
        k += 2
        memcpy(w + k, PyBytes_AS_STRING(value), lv)
        k += lv
        w[k] = 13
        w[k + 1] = 10
        k += 2
    return out


cdef const char *HEX = b"0123456789abcdef"


cdef inline int _digits(char *buf, int end, unsigned long long n, int base) noexcept:
    """n in `base` (10 or 16), written to end just before buf[end]; where it starts."""
    cdef int k = end
    if n == 0:
        k -= 1
        buf[k] = 48
    while n > 0:
        k -= 1
        buf[k] = HEX[n % base]
        n //= base
    return k


cdef class Kit:
    """Small per-request helpers of adc.l7.proxy as C calls; adc.l7.http1.Kit is the reference.

    A compiled adc.l7.proxy holds one in a typed global, so each call is a C call rather than
    a Python method call (a bytes.find alone costs ~1,000 instructions in argument parsing).
    """

    cpdef double now(self):
        """Monotonic seconds: the clock uvloop's loop.time() reads, without a method call."""
        cdef timespec ts
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec + ts.tv_nsec * 1e-9

    cpdef Py_ssize_t head_end(self, bytes buf, Py_ssize_t start):
        """Index just past the first CRLFCRLF that ends at or after start+4, or -1."""
        cdef const char *p = PyBytes_AS_STRING(buf)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf), i = start if start > 0 else 0
        cdef const char *q
        while i + 3 < n:
            q = <const char *> memchr(p + i, 13, n - i - 3)
            if q == NULL:
                return -1
            i = q - p
            if p[i + 1] == 10 and p[i + 2] == 13 and p[i + 3] == 10:
                return i + 4
            i += 1
        return -1

    cpdef bint starts_empty_line(self, bytes buf):
        """Does buf start with CRLF (an empty line before a request line)?"""
        return PyBytes_GET_SIZE(buf) >= 2 and PyBytes_AS_STRING(buf)[0] == 13 and PyBytes_AS_STRING(buf)[1] == 10

    cpdef bytes length_line(self, long long n):
        """b"content-length: N\\r\\n"."""
        cdef char buf[48]
        cdef int k = _digits(buf, 40, n, 10)
        buf[40] = 13
        buf[41] = 10
        k -= 16
        memcpy(buf + k, b"content-length: ", 16)
        return PyBytes_FromStringAndSize(buf + k, 42 - k)

    cpdef bytes chunk_line(self, Py_ssize_t n):
        """The size line of a chunk of n bytes."""
        cdef char buf[24]
        cdef int k = _digits(buf, 20, n, 16)
        buf[20] = 13
        buf[21] = 10
        return PyBytes_FromStringAndSize(buf + k, 22 - k)

    cpdef bytes request_id(self, bytes prefix, unsigned long long n):
        """prefix followed by n in hex: a request id unique in this process."""
        cdef char buf[24]
        cdef int k = _digits(buf, 24, n, 16)
        return prefix + PyBytes_FromStringAndSize(buf + k, 24 - k)

    cpdef bytes join(self, list parts):
        """b"".join(parts) for a list of bytes, without the buffer protocol per item."""
        cdef Py_ssize_t total = 0, k = 0, ln
        cdef object x
        cdef char *w
        for x in parts:
            if type(x) is not bytes:
                return b"".join(parts)      # a bytearray or memoryview: the general join
            total += PyBytes_GET_SIZE(<bytes> x)
        out = PyBytes_FromStringAndSize(NULL, total)
        w = PyBytes_AS_STRING(out)
        for x in parts:
            ln = PyBytes_GET_SIZE(<bytes> x)
            memcpy(w + k, PyBytes_AS_STRING(<bytes> x), ln)
            k += ln
        return out


# what adc.l7.http1 expects of this build (http1._SCAN_ABI): a stale build is not used
ABI = 4

# last: when this module was imported before adc.l7.http1 finished, http1 kept its reference
# versions; now that every name here exists, it takes these (unless http1 is newer than this build)
try:
    _h._install_c()
except ImportError:
    pass
