"""adc.l7.http1: the sans-IO HTTP/1.1 core: bytes in, parsed heads and body pieces out; no sockets.

Rules (RFC 9110 / 9112), stated once here and enforced by the functions below:

  head       request-line / status-line, then field lines, each ending in CRLF,
             then an empty line. A bare CR or bare LF anywhere in a head is an error.
  field line token ":" OWS value OWS CRLF. No whitespace before the colon, no
             obsolete line folding, no NUL or other control byte except HTAB.
  framing    request:  Transfer-Encoding (codings ending in exactly one `chunked`)
                       or Content-Length (one field, digits only) or no body.
                       Both together, a duplicate Content-Length, or TE in
                       HTTP/1.0 is ambiguous: rejected, never forwarded.
             response: 1xx, 204, 304 and answers to HEAD have no body; then TE
                       chunked, then Content-Length, else the body runs until close.
  chunks     size in hex (at most 16 digits), optional extensions `;name[=value]`,
             CRLF, data, CRLF; the last chunk has size 0, then trailer fields, CRLF.

Whose fault: ClientProtocolError (answered 400 or the status it carries, then the
client connection is closed); BackendProtocolError (answered 502, the member
connection is closed).
"""
from __future__ import annotations

import re
import time
from typing import Optional


class ProtocolError(Exception):
    status = 400

    def __init__(self, reason: str, status: Optional[int] = None):
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status


class ClientProtocolError(ProtocolError):
    """The client sent something we will not forward: answer `status` (400 unless a limit) and close."""
    status = 400


class BackendProtocolError(ProtocolError):
    """The member answered something we will not forward: answer 502, close the member connection."""
    status = 502


# ------------------------------------------------------------------ grammar
_TCHAR = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]"
_VCHAR = rb"[\x21-\x7e\x80-\xff]"
_VALUE = rb"(?:" + _VCHAR + rb"+(?:[ \t]+" + _VCHAR + rb"+)*+)?"
_FIELD_LINE = _TCHAR + rb"+:[ \t]*+" + _VALUE + rb"[ \t]*\r\n"
FIELDS_BLOCK = re.compile(rb"(?:" + _FIELD_LINE + rb")*")
FIELD = re.compile(rb"(" + _TCHAR + rb"+):[ \t]*+(" + _VALUE + rb")[ \t]*\r\n")
# anchored at line starts: a bad line cannot be matched from its middle, so the head is valid
# exactly when there is one match per CRLF (bare CR/LF are refused before)
FIELD_AT_LINE = re.compile(rb"^(" + _TCHAR + rb"+):[ \t]*+(" + _VALUE + rb")[ \t]*\r\n", re.M)
FIELD_LINE_ONE = re.compile(_FIELD_LINE)
REQUEST_LINE = re.compile(rb"(" + _TCHAR + rb"+) ([\x21-\x7e\x80-\xff]+) HTTP/(\d)\.(\d)")
STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3}) ([\t \x21-\x7e\x80-\xff]*)")
CONTENT_LENGTH = re.compile(rb"[0-9]{1,18}")
HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::([0-9]*))?")
ABSOLUTE = re.compile(rb"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^#]*)")
CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"
    rb"((?:[ \t]*;[ \t]*" + _TCHAR + rb"+(?:[ \t]*=[ \t]*(?:" + _TCHAR + rb"+|\"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*\"))?)*)"
    rb"[ \t]*\r\n")
TE_CODING = re.compile(rb"[ \t]*(" + _TCHAR + rb"+)(?:[ \t]*;[^,]*)?[ \t]*")

# hop-by-hop fields: never forwarded as received (RFC 9110 7.6.1)
HOP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                 b"transfer-encoding", b"upgrade", b"content-length"))

# request fields the proxy itself writes: X-Forwarded-For is appended to, the others replaced
_REQ_SPECIAL = HOP | {b"host", b"expect", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
                      b"x-request-id"}

# phrases for the statuses we answer ourselves
REASONS = {
    100: b"Continue", 101: b"Switching Protocols", 200: b"OK", 201: b"Created", 204: b"No Content",
    301: b"Moved Permanently", 302: b"Found", 303: b"See Other", 304: b"Not Modified",
    307: b"Temporary Redirect", 308: b"Permanent Redirect", 400: b"Bad Request",
    401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
    408: b"Request Timeout", 413: b"Content Too Large", 414: b"URI Too Long",
    417: b"Expectation Failed", 429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
    500: b"Internal Server Error", 501: b"Not Implemented", 502: b"Bad Gateway",
    503: b"Service Unavailable", 504: b"Gateway Timeout", 505: b"HTTP Version Not Supported",
}


class Limits:
    """Per-VIP bounds on what a client may send before we refuse it."""
    __slots__ = ("request_line", "header_bytes", "header_count", "body")

    def __init__(self, request_line: int = 8192, header_bytes: int = 32768,
                 header_count: int = 100, body: Optional[int] = None):
        self.request_line = request_line
        self.header_bytes = header_bytes
        self.header_count = header_count
        self.body = body


DEFAULT_LIMITS = Limits()


def find_head_end(buf, start: int = 0) -> int:
    """Index just past the empty line ending a head in buf, or -1 while incomplete."""
    i = buf.find(b"\r\n\r\n", start)
    return -1 if i < 0 else i + 4


_EMPTY_LINES = re.compile(rb"(?:\r\n)*")


def skip_empty_lines(buf: bytes) -> bytes:
    """buf without the empty lines before a request line (RFC 9112 2.2): whole CRLFs only, so a
    stray CR is left for the parser to refuse, and a CRLF split across reads still pairs up."""
    return buf[_EMPTY_LINES.match(buf).end():]


def check_incomplete_head(buf, limits: Limits, start: int = 0) -> None:
    """Called while a request head is still arriving (`start`: where the new bytes begin):
    refuse early what can never become valid, without rescanning old bytes."""
    n = len(buf)
    if n > limits.request_line:
        eol = buf.find(b"\r\n", 0, limits.request_line + 2)
        if eol < 0:
            raise ClientProtocolError("request line too long", 414)
    if n > limits.header_bytes:
        raise ClientProtocolError("header block too large", 431)
    # a head that uses bare LF would never end in CRLFCRLF: refuse it now, not at the timeout
    if buf.count(b"\n", start) != buf.count(b"\r\n", start - 1 if start > 0 else 0):
        raise ClientProtocolError("bare LF in head")


def scan_fields_py(head: bytes, pos: int, special) -> tuple:
    """The field lines of head[pos:-2] -> (fields, specials); the reference of adc.l7._scan.

    fields: (name, value) of each line whose lower-cased name is not in `special`;
    specials: (lower-cased name, value) of the others. ValueError(reason) when a line
    breaks the grammar at the top of this file.
    """
    block = head[pos:len(head) - 2]
    fields: list = []
    specials: list = []
    if not block:
        return fields, specials
    n = block.count(b"\r\n")
    if block.count(b"\n") != n or block.count(b"\r") != n or not block.endswith(b"\r\n"):
        raise ValueError("bare CR or LF in head")
    pairs = FIELD_AT_LINE.findall(block)
    if len(pairs) != n:
        pos = 0
        while True:
            m = FIELD_LINE_ONE.match(block, pos)
            if m is None:
                break
            pos = m.end()
        if block[pos:pos + 1] in (b" ", b"\t"):
            raise ValueError("obsolete line folding")
        line = block[pos:block.find(b"\r", pos)][:60]
        raise ValueError(f"invalid field line {line!r}")
    for name, value in pairs:
        ln = name.lower()
        if ln in special:
            specials.append((ln, value))
        else:
            fields.append((name, value))
    return fields, specials


scan_fields = scan_fields_py     # replaced by the C scanner at the end of this module


def connection_options(conn: Optional[bytes], minor: int, msg) -> tuple:
    """(keep the connection open?, does Connection list upgrade?) for a head's joined, lower-cased
    Connection value (None: absent). Fields that other tokens name are hop-by-hop too
    (RFC 9110 7.6.1): they are dropped from msg.fields."""
    if conn is None:
        return minor == 1, False
    opts = {o.strip() for o in conn.split(b",")}
    opts.discard(b"")
    extra = opts - {b"close", b"keep-alive", b"upgrade"}
    if extra:
        msg.fields = [f for f in msg.fields if f[0].lower() not in extra]
    keep = (b"keep-alive" in opts) if minor == 0 else (b"close" not in opts)
    return keep, b"upgrade" in opts


def coding_names(te: bytes, err) -> list:
    """The lower-cased transfer codings of a joined Transfer-Encoding value; err if malformed."""
    names = []
    for c in te.split(b","):
        cm = TE_CODING.fullmatch(c)
        if cm is None:
            raise err("malformed Transfer-Encoding")
        names.append(cm.group(1).lower())
    return names


class Request:
    """A parsed request head. `fields` keeps every end-to-end field as received (name, value)."""
    __slots__ = ("method", "target", "path", "query", "minor", "fields", "host", "authority",
                 "content_length", "chunked", "keep_alive", "upgrade", "expect_continue",
                 "absolute", "te_trailers", "head_size", "xff", "request_id", "te_codings", "kept")

    def __init__(self):
        self.kept = None             # the C parser's serialized fields (see _scan.pxd); here: never
        self.upgrade = None
        self.expect_continue = False
        self.absolute = False
        self.te_trailers = False
        self.request_id = None
        self.te_codings = None       # transfer codings before chunked ("gzip"), forwarded with it

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def field(self, name: bytes) -> Optional[bytes]:
        """The value of the first field named `name` (lower case), or None."""
        for k, v in self.fields:
            if k.lower() == name:
                return v
        return None

    def __repr__(self) -> str:
        return f"<Request {self.method!r} {self.target!r} host={self.host!r}>"


def parse_request_head(head: bytes, limits: Limits = DEFAULT_LIMITS) -> Request:
    """`head` runs from the request line through the empty line (CRLFCRLF included)."""
    err = ClientProtocolError
    eol = head.find(b"\r\n")
    if eol > limits.request_line:
        raise err("request line too long", 414)
    if len(head) > limits.header_bytes:
        raise err("header block too large", 431)
    m = REQUEST_LINE.fullmatch(head, 0, eol)
    if m is None:
        raise err("malformed request line")
    method, target, major, minor = m.groups()
    if major != b"1":
        raise err("HTTP version not supported", 505)
    r = Request()
    r.head_size = len(head)
    r.method = method
    r.minor = minor = int(minor)
    try:
        fields, specials = scan_fields_py(head, eol + 2, _REQ_SPECIAL)
    except ValueError as e:
        raise err(str(e)) from None
    if len(fields) + len(specials) > limits.header_count:
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
            fields.append((b"X-Request-ID", value))
            continue
        if ln == b"x-forwarded-for":
            xff = value if xff is None else xff + b", " + value
            continue
        if ln == b"x-forwarded-proto" or ln == b"x-forwarded-host":
            continue
        if ln == b"host":
            if host is not None:
                raise err("duplicate Host")
            host = value
            continue
        if ln == b"content-length":
            if cl is not None:
                raise err("duplicate Content-Length")
            if CONTENT_LENGTH.fullmatch(value) is None:
                raise err("malformed Content-Length")
            cl = int(value)
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
    r.fields = fields
    r.xff = xff
    # connection options: Connection names more hop-by-hop fields, which we drop
    keep, upgrade = connection_options(conn, minor, r)
    if not upgrade:
        r.upgrade = None
    r.keep_alive = keep
    # framing
    if te is not None:
        if minor == 0:
            raise err("Transfer-Encoding in HTTP/1.0")
        if cl is not None:
            raise err("both Content-Length and Transfer-Encoding")
        names = coding_names(te, err)
        if names[-1] != b"chunked" or names.count(b"chunked") != 1:
            raise err("Transfer-Encoding must end in exactly one chunked")
        if len(names) > 1:
            r.te_codings = b", ".join(names[:-1])
        r.chunked = True
        r.content_length = None
    else:
        r.chunked = False
        r.content_length = cl
    if limits.body is not None and cl is not None and cl > limits.body:
        raise err("body too large", 413)
    # target forms
    if target[:1] == b"/":
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
        # absolute-form wins over Host (RFC 9112 3.2.2); Host is rewritten from it
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
    hm = HOST.fullmatch(host)
    if hm is None:
        raise err("malformed Host")
    r.authority = host
    r.host = hm.group(1).lower()
    r.target = target
    q = target.find(b"?")
    if q < 0:
        r.path = target
        r.query = None
    else:
        r.path = target[:q]
        r.query = target[q + 1:]
    return r


class Response:
    __slots__ = ("status", "reason", "minor", "fields", "content_length", "chunked",
                 "keep_alive", "no_body", "until_close", "upgrade", "te_codings", "kept")

    def __init__(self):
        self.kept = None

    def field(self, name: bytes) -> Optional[bytes]:
        for k, v in self.fields:
            if k.lower() == name:
                return v
        return None


def parse_response_head(head: bytes, method: bytes, limits: Limits = DEFAULT_LIMITS, size: int = -1) -> Response:
    """A member's response head (head[:size] when size is given). `method` of the request decides
    whether a body follows."""
    if size >= 0:
        head = head[:size]
    err = BackendProtocolError
    if len(head) > limits.header_bytes:
        raise err("response head too large")
    eol = head.find(b"\r\n")
    m = STATUS_LINE.fullmatch(head, 0, eol)
    if m is None:
        raise err("malformed status line")
    major, minor, status, reason = m.groups()
    if major != b"1":
        raise err("unsupported HTTP version")
    r = Response()
    r.status = status = int(status)
    if status < 100:
        raise err("malformed status code")
    r.reason = reason
    r.minor = minor = int(minor)
    try:
        fields, specials = scan_fields_py(head, eol + 2, HOP)
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
            if CONTENT_LENGTH.fullmatch(value) is None:
                raise err("malformed Content-Length")
            cl = int(value)
        elif ln == b"transfer-encoding":
            te = value if te is None else te + b"," + value
        elif ln == b"connection":
            conn = value.lower() if conn is None else conn + b"," + value.lower()
        elif ln == b"upgrade":
            r.upgrade = value
    r.fields = fields
    keep, _ = connection_options(conn, minor, r)
    r.chunked = False
    r.content_length = None
    r.until_close = False
    r.te_codings = None
    if status < 200 or status == 204 or status == 304 or method == b"HEAD":
        r.no_body = True
        # a HEAD answer may carry the Content-Length of the GET: pass it on
        if method == b"HEAD" and cl is not None and status >= 200:
            r.content_length = cl
    else:
        r.no_body = False
        if te is not None:
            if cl is not None:
                raise err("both Content-Length and Transfer-Encoding")
            names = coding_names(te, err)
            if names[-1] == b"chunked" and names.count(b"chunked") == 1:
                r.chunked = True
                if len(names) > 1:
                    r.te_codings = b", ".join(names[:-1])
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


# -------------------------------------------------------------- body readers
class LengthReader:
    """A Content-Length body. feed(data) -> (payload, rest); rest is not None once the body is complete."""
    __slots__ = ("remaining",)
    chunked = False

    def __init__(self, n: int):
        self.remaining = n

    def feed(self, data):
        r = self.remaining
        n = len(data)
        if n < r:
            self.remaining = r - n
            return data, None
        self.remaining = 0
        if n == r:
            return data, b""
        return data[:r], data[r:]


class UntilCloseReader:
    """A response body delimited by the member closing the connection."""
    __slots__ = ()
    chunked = False
    remaining = -1

    def feed(self, data):
        return data, None


# chunked decoder states
_SIZE, _DATA, _DATA_CRLF, _TRAILER = range(4)


class ChunkedReader:
    """A chunked body, decoded. feed(data) -> (payload, rest): payload is the data bytes
    (possibly empty); rest is not None once the last chunk and trailers are read.

    Errors are raised as `err` (ClientProtocolError for requests, BackendProtocolError
    for responses).
    """
    __slots__ = ("state", "left", "pending", "err", "max_line", "trailer_bytes", "total", "limit")
    chunked = True

    def __init__(self, err=ClientProtocolError, limit: Optional[int] = None):
        self.state = _SIZE
        self.left = 0
        self.pending = b""          # an incomplete size line or trailer section
        self.err = err
        self.max_line = 4096
        self.trailer_bytes = 0
        self.total = 0
        self.limit = limit

    def feed(self, data):
        if self.pending:
            data = self.pending + data
            self.pending = b""
        out = []
        pos = 0
        n = len(data)
        err = self.err
        while pos < n:
            st = self.state
            if st == _DATA:
                take = min(self.left, n - pos)
                out.append(data[pos:pos + take] if (pos or take != n) else data)
                pos += take
                self.left -= take
                if self.left == 0:
                    self.state = _DATA_CRLF
            elif st == _DATA_CRLF:
                if n - pos < 2:
                    if data[pos:pos + 1] != b"\r":
                        raise err("chunk data not followed by CRLF")
                    self.pending = data[pos:]
                    break
                if data[pos:pos + 2] != b"\r\n":
                    raise err("chunk data not followed by CRLF")
                pos += 2
                self.state = _SIZE
            elif st == _SIZE:
                eol = data.find(b"\n", pos)
                if eol < 0:
                    if n - pos > self.max_line:
                        raise err("chunk size line too long")
                    self.pending = data[pos:]
                    break
                m = CHUNK_LINE.fullmatch(data, pos, eol + 1)
                if m is None:
                    raise err("malformed chunk size line")
                size = int(m.group(1), 16)
                pos = eol + 1
                if size == 0:
                    self.state = _TRAILER
                else:
                    self.total += size
                    if self.limit is not None and self.total > self.limit:
                        raise ClientProtocolError("body too large", 413) if err is ClientProtocolError \
                            else err("body too large")
                    self.left = size
                    self.state = _DATA
            else:  # _TRAILER: field lines until an empty line; we drop them (we re-frame)
                eol = data.find(b"\n", pos)
                if eol < 0:
                    self.trailer_bytes += n - pos
                    if self.trailer_bytes > 32768:
                        raise err("trailer section too large")
                    self.pending = data[pos:]
                    break
                line = data[pos:eol + 1]
                pos = eol + 1
                if line == b"\r\n":
                    payload = b"".join(out) if len(out) != 1 else out[0]
                    return payload, data[pos:]
                self.trailer_bytes += len(line)
                if self.trailer_bytes > 32768:
                    raise err("trailer section too large")
                if FIELD_LINE_ONE.fullmatch(line) is None:
                    raise err("malformed trailer field")
        if not out:
            return b"", None
        return (out[0] if len(out) == 1 else b"".join(out)), None


def body_reader(msg, err, limit: Optional[int] = None):
    """The reader for a parsed Request or Response, or None when it has no body."""
    if getattr(msg, "no_body", False):
        return None
    if msg.chunked:
        return ChunkedReader(err, limit)
    if getattr(msg, "until_close", False):
        return UntilCloseReader()
    if msg.content_length:
        return LengthReader(msg.content_length)
    return None


# -------------------------------------------------------------- serializing
def chunk(payload) -> bytes:
    """One chunk of a chunked body (the caller never passes an empty payload)."""
    return b"%x\r\n%b\r\n" % (len(payload), payload)


LAST_CHUNK = b"0\r\n\r\n"


def serialize_fields(fields) -> bytes:
    """Field lines, each `name: value` CRLF (the C join_fields when built)."""
    return b"".join([b"%b: %b\r\n" % f for f in fields])


def simple_response(status: int, body: bytes = b"", close: bool = False, fields=(),
                    content_type: bytes = b"text/plain", head_only: bool = False) -> bytes:
    """A complete response we answer ourselves (errors, redirects, fixed responses)."""
    reason = REASONS.get(status, b"Unknown")
    parts = [b"HTTP/1.1 %d %b\r\n" % (status, reason)]
    for f in fields:
        parts.append(b"%b: %b\r\n" % f)
    if body or status >= 200 and status not in (204, 304):
        if content_type and body:
            parts.append(b"content-type: %b\r\n" % content_type)
        parts.append(b"content-length: %d\r\n" % len(body))
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head_only:
        parts.append(body)
    return b"".join(parts)


def error_body(status: int) -> bytes:
    return b"%d %b\n" % (status, REASONS.get(status, b"Error"))


class Kit:
    """Small per-request helpers of the proxy (the C _scan.Kit when built)."""

    def now(self) -> float:
        return time.monotonic()

    def head_end(self, buf: bytes, start: int) -> int:
        """Index just past the first CRLFCRLF that ends at or after start+4, or -1."""
        i = buf.find(b"\r\n\r\n", start if start > 0 else 0)
        return -1 if i < 0 else i + 4

    def starts_empty_line(self, buf: bytes) -> bool:
        return buf[:2] == b"\r\n"

    def length_line(self, n: int) -> bytes:
        return b"content-length: %d\r\n" % n

    def chunk_line(self, n: int) -> bytes:
        return b"%x\r\n" % n

    def request_id(self, prefix: bytes, n: int) -> bytes:
        return b"%b%x" % (prefix, n)

    def join(self, parts: list) -> bytes:
        return b"".join(parts)


# The C versions (adc/l7/_scan.pyx) of the hot functions above, when built; the Python
# definitions stay as the reference that tests run against the same cases.
parse_request_head_py = parse_request_head
parse_response_head_py = parse_response_head
RequestPy, ResponsePy, LengthReaderPy, KitPy, LimitsPy = Request, Response, LengthReader, Kit, Limits
serialize_fields_py = serialize_fields


_SCAN_ABI = 4      # adc/l7/_scan.pyx's ABI: what this file expects of the C build


def _install_c() -> None:
    """Take the C versions. Called here, and by _scan itself at the end of its import: when
    _scan is imported first (adc.l7.proxy cimports it), the import below finds it half-built.
    A build older than this file (no `make build` since an update) is left unused, whole."""
    global serialize_fields, parse_request_head, parse_response_head, scan_fields
    global LengthReader, Request, Response, Kit, Limits, DEFAULT_LIMITS
    from adc.l7 import _scan
    if getattr(_scan, "ABI", None) != _SCAN_ABI:
        raise ImportError("adc.l7._scan is an older build than adc/l7/http1.py (run `make build`)")
    new = (_scan.join_fields, _scan.parse_request_head, _scan.parse_response_head, _scan.scan_fields,
           _scan.LengthReader, _scan.Request, _scan.Response, _scan.Kit, _scan.Limits, _scan.Limits())
    (serialize_fields, parse_request_head, parse_response_head, scan_fields,
     LengthReader, Request, Response, Kit, Limits, DEFAULT_LIMITS) = new


try:
    _install_c()
except (ImportError, AttributeError):  # not built (or half-built, see above): the reference, slower
    pass
