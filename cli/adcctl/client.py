"""adcctl.client: a small HTTP/1.1 + JSON client for adcd's control API on its Unix socket."""
from __future__ import annotations

import errno
import http.client
import json
import socket
from typing import Any, Iterable, Optional
from urllib.parse import quote, urlencode

import click

DEFAULT_SOCKET = "/run/adc/adcd.sock"
API_PREFIX = "/api/v1"

# Exit codes, documented in `adcctl --help` and docs/adcctl.md.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INVALID = 3
EXIT_UNREACHABLE = 4


class AdcctlError(click.ClickException):
    """A failure the operator can act on: one line, then optional detail lines, no traceback."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, details: Iterable[str] = (), exit_code: Optional[int] = None):
        super().__init__(message)
        self.details = list(details)
        if exit_code is not None:
            self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"adcctl: {self.message}", err=True)
        for line in self.details:
            click.echo(line, err=True)


class DaemonUnreachable(AdcctlError):
    """Nothing answered on the socket: no request reached adcd, so nothing changed."""

    exit_code = EXIT_UNREACHABLE


class ApiError(AdcctlError):
    """adcd answered with a non-2xx status; `error` is its one line, `errors` the 422 list."""

    def __init__(self, status: int, error: str, kind: str = "", errors: Iterable[str] = ()):
        self.status = status
        self.kind = kind
        self.errors = [str(e) for e in errors]
        super().__init__(error, self.errors, EXIT_INVALID if status == 422 else EXIT_FAILED)


def _why(path: str, exc: OSError) -> str:
    # Name the socket and what to check, in one line.
    hint = "check that adcd is running and that --socket or ADC_SOCKET names its global.admin_socket"
    if isinstance(exc, FileNotFoundError):
        reason = "no such socket"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused (adcd is not running, or the socket file is stale)"
    elif isinstance(exc, PermissionError):
        reason = "permission denied"
        hint = "run as root or as a member of the socket's group (mode 0660)"
    elif exc.errno == errno.ENOTSOCK:
        reason = "not a socket"
    elif isinstance(exc, (socket.timeout, TimeoutError)):
        reason = "timed out connecting"
    else:
        reason = exc.strerror or str(exc)
    return f"cannot reach adcd at {path}: {reason}; {hint}"


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over AF_UNIX: the host name only fills the Host header."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except BaseException:
            s.close()
            raise
        self.sock = s


def member_key(address: str, port: int) -> str:
    """The member key of the API: 10.0.1.5:8080, or [2001:db8::5]:8080."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def seg(value: str) -> str:
    """One path segment, percent-encoded (':' stays readable: member keys carry one)."""
    return quote(str(value), safe=":")


class Client:
    """One request per connection; adcd is local, so keep-alive buys nothing."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = 60.0):
        self.socket_path = socket_path
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, query: Optional[dict] = None) -> Any:
        url = API_PREFIX + path
        if query:
            q = {k: v for k, v in query.items() if v is not None}
            if q:
                url += "?" + urlencode(q)
        headers = {"Accept": "application/json", "Connection": "close"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            try:
                conn.connect()
            except OSError as e:
                raise DaemonUnreachable(_why(self.socket_path, e)) from None
            try:
                conn.request(method, url, body=payload, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (socket.timeout, TimeoutError):
                raise AdcctlError(
                    f"adcd at {self.socket_path} did not answer {method} {url} within {self.timeout:g}s "
                    "(raise --timeout; the request may still complete)"
                ) from None
            except (OSError, http.client.HTTPException) as e:
                raise AdcctlError(
                    f"adcd at {self.socket_path} dropped {method} {url} before answering ({e.__class__.__name__}); "
                    "check its log"
                ) from None
        finally:
            conn.close()
        data: Any = None
        if raw:
            try:
                data = json.loads(raw)
            except ValueError:
                if 200 <= resp.status < 300:
                    raise AdcctlError(f"adcd answered {method} {url} with something that is not JSON") from None
        if not 200 <= resp.status < 300:
            if isinstance(data, dict) and data.get("error"):
                raise ApiError(resp.status, str(data["error"]), str(data.get("kind", "")), data.get("errors") or ())
            text = raw.decode("utf-8", "replace").strip().splitlines()
            raise ApiError(resp.status, f"adcd: {resp.status} {resp.reason}" + (f": {text[0]}" if text else ""))
        return data

    def get(self, path: str, query: Optional[dict] = None) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)
