"""adcctl against a fake adcd: a small HTTP/1.1 server on a Unix socket that answers as docs/api.md says.

The fake records every request, so each test checks both sides: what adcctl asked
(method, path, body) and what the operator sees (stdout, stderr, exit code).
Integration tests against the real adcd live in tests/integration/.
"""
from __future__ import annotations

import json
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from click.testing import CliRunner

from adcctl.main import cli

RUNNING_YAML = "global:\n  workers: 2\npools:\n- name: web\n  members:\n  - address: 10.0.1.5\n    port: 8080\n"

MEMBERS = [
    {"key": "10.0.1.5:8080", "address": "10.0.1.5", "port": 8080, "weight": 1, "backup": False,
     "admin": "enabled", "health": "up", "state": "up",
     "stats": {"conn_total": 120, "conn_active": 3, "bytes_in": 1536, "bytes_out": 3 * 1024 * 1024,
               "requests": 118, "errors": 2}},
    {"key": "10.0.1.6:8080", "address": "10.0.1.6", "port": 8080, "weight": 2, "backup": True,
     "admin": "drain", "health": "up", "state": "drain",
     "stats": {"conn_total": 7, "conn_active": 0, "bytes_in": 10, "bytes_out": 20, "requests": 7, "errors": 0}},
]
VIPS = [{"name": "www", "protocol": "http", "address": "192.0.2.10", "port": 80, "default_pool": "web",
         "routes": [{"name": "api", "match": {"path_prefix": "/api"}, "pool": "api"}],
         "stats": {"conn_total": 900, "conn_active": 12, "bytes_in": 2048, "bytes_out": 4096,
                   "requests": 880, "errors": 1}}]


# ---------------------------------------------------------------- fake adcd
class FakeAdcd:
    """Routes are (METHOD, path under /api/v1) -> (status, body) or a function of the request."""

    def __init__(self, path: str):
        self.path = path
        self.routes: dict = {}
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet: the test reads adcctl's output, not ours
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                u = urlsplit(self.path)
                req = {"method": self.command, "path": u.path, "query": parse_qs(u.query),
                       "body": json.loads(raw) if raw else None}
                fake.requests.append(req)
                route = unquote(u.path[len("/api/v1"):]) if u.path.startswith("/api/v1/") else None
                ans = fake.routes.get((self.command, route))
                if callable(ans):
                    ans = ans(req)
                if ans is None:
                    ans = (404, {"error": f"no such object: {u.path}", "kind": "client"})
                status, body = ans
                out = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_DELETE = _serve

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def on(self, method: str, path: str, body, status: int = 200):
        """body: the JSON answer (or raw bytes), a (status, body) pair, or a function of the request."""
        self.routes[(method, path)] = body if callable(body) or isinstance(body, tuple) else (status, body)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sockdir():
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    d = tempfile.mkdtemp(prefix="adcctl-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def api(sockdir):
    fake = FakeAdcd(os.path.join(sockdir, "adcd.sock"))
    fake.on("GET", "/status", {"version": "0.1.0", "pid": 4242, "uptime": 3725.0, "revision": 7,
                               "workers": [{"slot": 0, "pid": 4243, "alive": True, "restarts": 0},
                                           {"slot": 1, "pid": 4244, "alive": True, "restarts": 1}],
                               "vips": 1, "pools": 2})
    fake.on("GET", "/config", {"revision": 7, "config": {"global": {"workers": 2}}, "yaml": RUNNING_YAML})
    fake.on("GET", "/vips", VIPS)
    fake.on("GET", "/vips/www", VIPS[0])
    fake.on("GET", "/pools", [{"name": "web", "algorithm": "maglev", "monitor": "http-ok", "members": MEMBERS}])
    fake.on("GET", "/pools/web", {"name": "web", "algorithm": "maglev", "monitor": "http-ok", "members": MEMBERS})
    fake.on("GET", "/pools/web/members", MEMBERS)
    yield fake
    fake.close()


def run(api, *args, env=None):
    """adcctl in-process (click's runner): stdout is not a terminal, as in a pipe."""
    e = {"ADC_DEBUG": None, "ADC_SOCKET": None, **(env or {})}
    return CliRunner(env=e).invoke(cli, ["--socket", api.path, *args], prog_name="adcctl")


def adcctl_exe() -> list[str]:
    exe = Path(sys.executable).parent / "adcctl"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "adcctl"]


def sh(*args, env=None, **kw):
    """The installed adcctl as a process, for exit codes and stderr exactly as a shell sees them."""
    e = {k: v for k, v in os.environ.items() if k not in ("ADC_DEBUG", "ADC_SOCKET")}
    e.update(env or {})
    return subprocess.run(adcctl_exe() + list(args), capture_output=True, text=True, env=e, timeout=60, **kw)


def write(tmp_path: Path, text: str, name="adc.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------ output
def test_vip_list_table_shows_each_vip_with_its_counters(api):
    r = run(api, "-o", "table", "vip", "list")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert all(l == l.rstrip() for l in lines)  # piped tables carry no trailing padding
    head = next(l for l in lines if "NAME" in l).split()
    assert head == ["NAME", "PROTO", "ADDRESS", "PORT", "POOL", "ROUTES", "ACTIVE", "CONNS", "IN", "OUT",
                    "REQS", "ERRS"]
    row = next(l for l in lines if l.strip().startswith("www")).split()
    assert row == ["www", "http", "192.0.2.10", "80", "web", "1", "12", "900", "2.0KiB", "4.0KiB", "880", "1"]


def test_default_output_off_a_terminal_is_the_api_answer_as_json(api):
    r = run(api, "vip", "list")
    assert r.exit_code == 0
    assert json.loads(r.stdout) == VIPS


def test_output_yaml(api):
    r = run(api, "-o", "yaml", "pool", "list")
    assert r.exit_code == 0
    assert "- name: web\n  algorithm: maglev\n" in r.stdout
    assert "key: 10.0.1.5:8080" in r.stdout


def test_o_after_the_verb_works_like_the_global_option(api):
    r = run(api, "pool", "list", "-o", "json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)[0]["name"] == "web"


def test_status_table_summarises_workers_and_uptime(api):
    r = run(api, "-o", "table", "status")
    assert r.exit_code == 0
    out = {l.split(None, 1)[0]: l.split(None, 1)[1].strip() for l in r.stdout.splitlines() if l.strip()}
    assert out["version"] == "0.1.0"
    assert out["pid"] == "4242"
    assert out["uptime"] == "1h2m"
    assert out["revision"] == "7"
    assert out["workers"] == "2/2 alive, 1 restarts"
    assert out["pools"] == "2"


def test_pool_show_lists_members_with_state_and_counters(api):
    r = run(api, "-o", "table", "pool", "show", "web")
    assert r.exit_code == 0
    assert "algorithm" in r.stdout and "maglev" in r.stdout
    assert "members up" in r.stdout and "1/2" in r.stdout
    row = next(l for l in r.stdout.splitlines() if "10.0.1.6:8080" in l).split()
    assert row[:6] == ["10.0.1.6:8080", "2", "yes", "drain", "up", "drain"]
    assert api.requests[-1]["path"] == "/api/v1/pools/web"


def test_member_list_table(api):
    r = run(api, "-o", "table", "member", "list", "web")
    assert r.exit_code == 0
    row = next(l for l in r.stdout.splitlines() if "10.0.1.5:8080" in l).split()
    assert row == ["10.0.1.5:8080", "1", "no", "enabled", "up", "up", "3", "120", "1.5KiB", "3.0MiB", "118", "2"]


def test_vip_show_lists_routes_in_order(api):
    r = run(api, "-o", "table", "vip", "show", "www")
    assert r.exit_code == 0
    assert "default pool" in r.stdout
    route = next(l for l in r.stdout.splitlines() if "path_prefix=/api" in l).split()
    assert route == ["1", "api", "path_prefix=/api", "api", "-"]


def test_vip_show_reads_flat_routes_with_actions(api):
    flat = {**VIPS[0], "routes": [{"name": "#1", "pool": None, "host": "old.example.com", "path_prefix": None,
                                   "redirect": "https://new.example.com/", "respond": None}]}
    api.on("GET", "/vips/www", flat)
    r = run(api, "-o", "table", "vip", "show", "www")
    route = next(l for l in r.stdout.splitlines() if l.startswith("1 ")).split()
    assert route == ["1", "#1", "host=old.example.com", "-", "redirect=https://new.example.com/"]


def test_stats_one_row_per_vip_pool_and_member(api):
    c = {"conn_total": 5, "conn_active": 1, "bytes_in": 0, "bytes_out": 0, "requests": 5, "errors": 0}
    api.on("GET", "/stats", {"vips": {"www": c}, "pools": {"web": c}, "members": {"web/10.0.1.5:8080": c}})
    r = run(api, "-o", "table", "stats")
    assert r.exit_code == 0
    rows = [l.split() for l in r.stdout.splitlines() if l.strip()]
    assert ["vip", "www", "1", "5", "0B", "0B", "5", "0"] in rows
    assert ["member", "web/10.0.1.5:8080", "1", "5", "0B", "0B", "5", "0"] in rows


def test_worker_list(api):
    api.on("GET", "/workers", [{"slot": 0, "pid": 11, "alive": True, "restarts": 0, "started": None},
                               {"slot": 1, "pid": 12, "alive": False, "restarts": 3, "started": None}])
    r = run(api, "-o", "table", "worker", "list")
    assert r.exit_code == 0
    rows = [l.split() for l in r.stdout.splitlines() if l.strip()]
    assert ["1", "12", "no", "3", "-"] in rows


# ----------------------------------------------------------- member changes
@pytest.mark.parametrize("verb,admin", [("enable", "enabled"), ("drain", "drain"), ("maint", "maint"),
                                        ("disable", "drain")])
def test_member_admin_verbs_post_the_admin_state(api, verb, admin):
    api.on("POST", "/pools/web/members/10.0.1.5:8080", lambda req: (200, {**MEMBERS[0], **req["body"]}))
    r = run(api, "member", verb, "web", "10.0.1.5:8080")
    assert r.exit_code == 0, r.output
    req = api.requests[-1]
    assert (req["method"], req["path"], req["body"]) == (
        "POST", "/api/v1/pools/web/members/10.0.1.5:8080", {"admin": admin})
    assert json.loads(r.stdout)["admin"] == admin


def test_member_weight_posts_the_weight(api):
    api.on("POST", "/pools/web/members/10.0.1.5:8080", lambda req: (200, {**MEMBERS[0], **req["body"]}))
    r = run(api, "-o", "table", "member", "weight", "web", "10.0.1.5:8080", "40")
    assert r.exit_code == 0
    assert api.requests[-1]["body"] == {"weight": 40}
    assert any(l.split() == ["weight", "40"] for l in r.stdout.splitlines())


def test_ipv6_member_key_is_bracketed_and_percent_encoded(api):
    api.on("POST", "/pools/web/members/[2001:db8::5]:8080", (200, {}))
    r = run(api, "member", "drain", "web", "[2001:DB8:0::5]:8080")
    assert r.exit_code == 0
    raw = api.requests[-1]
    assert raw["path"] == "/api/v1/pools/web/members/%5B2001:db8::5%5D:8080"


def test_member_show_picks_the_member_from_the_pool(api):
    r = run(api, "member", "show", "web", "10.0.1.6:8080")
    assert r.exit_code == 0
    assert json.loads(r.stdout) == MEMBERS[1]


def test_member_show_of_an_unknown_member_names_it_and_exits_1(api):
    r = run(api, "member", "show", "web", "10.0.1.9:8080")
    assert r.exit_code == 1
    assert r.stderr.strip() == "adcctl: pool 'web' has no member 10.0.1.9:8080 (see: adcctl member list web)"


def test_unknown_pool_prints_the_daemons_error_and_exits_1(api):
    api.on("GET", "/pools/nope/members", (404, {"error": "no pool 'nope'", "kind": "client"}))
    r = run(api, "member", "list", "nope")
    assert r.exit_code == 1
    assert r.stderr == "adcctl: no pool 'nope'\n"
    assert r.stdout == ""


# ----------------------------------------------------------- config
def test_config_show_prints_the_running_yaml_exactly(api):
    api.on("GET", "/config", {"revision": 7, "config": {}, "yaml": "pools: []"})  # no final newline
    r = run(api, "config", "show")
    assert r.exit_code == 0
    assert r.stdout == "pools: []"
    r = run(api, "config", "show", "-o", "json")
    assert json.loads(r.stdout)["revision"] == 7


def test_config_show_revision_prints_that_revisions_file(api):
    api.on("GET", "/config/history/3", {"revision": 3, "time": "2026-01-01T00:00:00Z", "text": "vips: []\n"})
    r = run(api, "config", "show", "--revision", "3")
    assert (r.exit_code, r.stdout) == (0, "vips: []\n")


def test_config_show_then_diff_reports_no_change(api, tmp_path):
    def diff(req):
        same = req["body"]["yaml"] == RUNNING_YAML
        return 200, {"changed": not same, "changes": [] if same else [{"op": "change", "path": "?"}], "text": ""}

    api.on("POST", "/config/diff", diff)
    shown = run(api, "config", "show", "-o", "yaml")
    f = write(tmp_path, shown.stdout)
    r = run(api, "-o", "table", "diff", "-f", str(f))
    assert r.exit_code == 0, r.output
    assert r.stdout == f"no change: {f} matches the running config\n"


def test_diff_prints_the_changes_and_exits_1(api, tmp_path):
    f = write(tmp_path, "pools: []\n")
    api.on("POST", "/config/diff", {"changed": True, "text": "", "changes": [
        {"op": "change", "path": "pools.web.algorithm", "old": "round_robin", "new": "maglev"},
        {"op": "add", "path": "pools.web.members.10.0.1.7:8080", "old": None, "new": {"weight": 1}},
        {"op": "remove", "path": "vips.old", "old": {"port": 81}, "new": None}]})
    r = run(api, "-o", "table", "diff", "-f", str(f))
    assert r.exit_code == 1
    assert r.stdout.splitlines() == [
        "~ pools.web.algorithm: round_robin -> maglev",
        "+ pools.web.members.10.0.1.7:8080: weight=1",
        "- vips.old: port=81",
    ]
    req = api.requests[-1]
    assert req["body"] == {"yaml": "pools: []\n", "path": str(f.resolve())}


def test_diff_prefers_the_daemons_text(api, tmp_path):
    f = write(tmp_path, "pools: []\n")
    api.on("POST", "/config/diff", {"changed": True, "changes": [{"op": "add", "path": "x"}],
                                    "text": "+ pool web: maglev table remaps 12% of flows\n"})
    r = run(api, "-o", "table", "diff", "-f", str(f))
    assert (r.exit_code, r.stdout) == (1, "+ pool web: maglev table remaps 12% of flows\n")


def test_diff_json_is_the_answer_and_keeps_the_exit_code(api, tmp_path):
    f = write(tmp_path, "pools: []\n")
    ans = {"changed": True, "changes": [{"op": "add", "path": "pools.api", "old": None, "new": {}}], "text": ""}
    api.on("POST", "/config/diff", ans)
    r = run(api, "diff", "-f", str(f))
    assert (r.exit_code, json.loads(r.stdout)) == (1, ans)


def test_apply_sends_the_file_its_absolute_path_and_comment(api, tmp_path, monkeypatch):
    f = write(tmp_path, RUNNING_YAML)
    api.on("POST", "/config/apply", {"revision": 8, "changed": True})
    monkeypatch.chdir(tmp_path)
    r = run(api, "-o", "table", "apply", "-f", "adc.yaml", "--comment", "add api pool")
    assert r.exit_code == 0
    assert r.stdout == "applied adc.yaml as revision 8\n"
    assert api.requests[-1]["body"] == {"yaml": RUNNING_YAML, "path": str(f.resolve()), "dry_run": False,
                                        "comment": "add api pool"}


def test_apply_dry_run(api, tmp_path):
    f = write(tmp_path, RUNNING_YAML)
    api.on("POST", "/config/apply", {"revision": 7, "changed": True})
    r = run(api, "-o", "table", "apply", "-f", str(f), "--dry-run")
    assert r.exit_code == 0
    assert api.requests[-1]["body"]["dry_run"] is True
    assert r.stdout.startswith(f"dry run: {f} is valid and compiles; it would change the running config")


INVALID = (422, {"error": "adc.yaml is invalid: 2 errors", "kind": "config", "errors": [
    "/etc/adc/adc.yaml:14: pool 'web' member 10.0.1.5:8080: weight: must be 0..256 (got 900)",
    "/etc/adc/adc.yaml:20: vip 'www': default_pool: no pool 'wbe' (did you mean 'web'?)"]})


def test_apply_of_an_invalid_config_exits_3_and_lists_every_error(api, tmp_path):
    f = write(tmp_path, "pools: []\n")
    api.on("POST", "/config/apply", INVALID)
    r = run(api, "apply", "-f", str(f))
    assert r.exit_code == 3
    assert r.stderr.splitlines() == ["adcctl: adc.yaml is invalid: 2 errors"] + INVALID[1]["errors"]
    assert r.stdout == ""


def test_apply_refused_by_the_data_plane_exits_1(api, tmp_path):
    f = write(tmp_path, "pools: []\n")
    api.on("POST", "/config/apply", (409, {"error": "worker 1 refused the plan: cannot bind 192.0.2.10:80: "
                                                    "address in use; nothing changed", "kind": "daemon"}))
    r = run(api, "apply", "-f", str(f))
    assert r.exit_code == 1
    assert "cannot bind 192.0.2.10:80" in r.stderr


def test_config_check_via_the_daemon(api, tmp_path):
    f = write(tmp_path, "pools: []\n")
    api.on("POST", "/config/validate", {"ok": True})
    r = run(api, "-o", "table", "config", "check", "-f", str(f))
    assert (r.exit_code, r.stdout) == (0, f"{f}: valid\n")
    api.on("POST", "/config/validate", INVALID)
    r = run(api, "config", "check", "-f", str(f))
    assert r.exit_code == 3
    assert INVALID[1]["errors"][0] in r.stderr


def test_config_check_without_a_daemon_validates_locally(sockdir, tmp_path):
    good = write(tmp_path, "pools:\n- name: web\n  members:\n  - {address: 10.0.1.5, port: 8080}\n", "good.yaml")
    bad = write(tmp_path, "pools:\n- name: web\n  members:\n  - {address: 10.0.1.5, port: 8080, weight: 900}\n",
                "bad.yaml")
    gone = os.path.join(sockdir, "gone.sock")
    r = sh("--socket", gone, "-o", "table", "config", "check", "-f", str(good))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{good}: valid (checked locally)\n"
    assert f"cannot reach adcd at {gone}" in r.stderr
    r = sh("--socket", gone, "config", "check", "-f", str(bad))
    assert r.returncode == 3, r.stderr
    assert f"{bad}:4:" in r.stderr and "weight" in r.stderr
    assert "Traceback" not in r.stderr


def test_config_history_marks_the_running_revision(api):
    api.on("GET", "/config/history", {"current": 8, "revisions": [
        {"revision": 8, "time": "2026-01-02T03:04:05+00:00", "source": "/etc/adc/adc.yaml", "comment": "api"},
        {"revision": 7, "time": "2026-01-01T00:00:00+00:00", "source": "rollback", "comment": ""}]})
    r = run(api, "-o", "table", "config", "history")
    assert r.exit_code == 0
    rows = [l.split() for l in r.stdout.splitlines() if l.strip() and "REV" not in l and "─" not in l]
    assert rows[0][0] == "*" and rows[0][1] == "8" and rows[0][-2:] == ["/etc/adc/adc.yaml", "api"]
    assert rows[1][0] == "7" and rows[1][-2:] == ["rollback", "-"]


def test_config_rollback_posts_the_revision(api):
    api.on("POST", "/config/rollback", {"revision": 9})
    r = run(api, "-o", "table", "config", "rollback", "7")
    assert r.exit_code == 0
    assert api.requests[-1]["body"] == {"revision": 7}
    assert r.stdout == "rolled back: revision 7's config is running as revision 9\n"


def test_config_schema_needs_no_daemon(sockdir):
    r = CliRunner().invoke(cli, ["--socket", os.path.join(sockdir, "none.sock"), "config", "schema"])
    assert r.exit_code == 0
    s = json.loads(r.stdout)
    assert "vips" in s["properties"] and "pools" in s["properties"]


# ------------------------------------------------------- conn, lookup
def test_conn_list_passes_the_filters(api):
    api.on("GET", "/conns", [{"id": "c1", "vip": "www", "protocol": "tcp", "client": "198.51.100.7:51000",
                              "member": "10.0.1.5:8080", "state": "established", "age": 75.0,
                              "bytes_in": 100, "bytes_out": 2048}])
    r = run(api, "-o", "table", "conn", "list", "--vip", "www", "--member", "10.0.1.5:8080")
    assert r.exit_code == 0
    assert api.requests[-1]["query"] == {"vip": ["www"], "member": ["10.0.1.5:8080"]}
    row = next(l for l in r.stdout.splitlines() if "c1" in l).split()
    assert row == ["c1", "www", "tcp", "198.51.100.7:51000", "10.0.1.5:8080", "established", "1m15s", "100B",
                   "2.0KiB"]
    run(api, "conn", "list")
    assert api.requests[-1]["query"] == {}


def test_conn_kill(api):
    api.on("DELETE", "/conns/c1", {"killed": True})
    r = run(api, "-o", "table", "conn", "kill", "c1")
    assert (r.exit_code, r.stdout) == (0, "killed connection c1\n")
    r = run(api, "conn", "kill", "c2")
    assert r.exit_code == 1 and "no such object" in r.stderr


def test_lookup_asks_which_member_a_client_gets(api):
    api.on("GET", "/lookup", {"vip": "www", "client": "198.51.100.7:5555", "route": None, "pool": "web",
                              "member": "10.0.1.5:8080", "reason": "maglev hash of source"})
    r = run(api, "-o", "table", "lookup", "www", "198.51.100.7:5555")
    assert r.exit_code == 0
    assert api.requests[-1]["query"] == {"vip": ["www"], "client": ["198.51.100.7:5555"]}
    assert any(l.split() == ["member", "10.0.1.5:8080"] for l in r.stdout.splitlines())
    run(api, "lookup", "www", "2001:db8::7")
    assert api.requests[-1]["query"]["client"] == ["2001:db8::7"]


# ------------------------------------------------- failures, as a shell sees them
def test_unreachable_daemon_exits_4_naming_the_socket(sockdir):
    path = os.path.join(sockdir, "adcd.sock")
    r = sh("--socket", path, "status")
    assert r.returncode == 4
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"adcctl: cannot reach adcd at {path}: no such socket; check that adcd is running")
    assert r.stdout == ""


def test_socket_comes_from_ADC_SOCKET(api):
    r = sh("vip", "list", env={"ADC_SOCKET": api.path})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == VIPS


def test_a_stale_socket_file_exits_4_connection_refused(sockdir):
    import socket
    path = os.path.join(sockdir, "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()  # bound, never listening: what a crashed daemon leaves behind
    r = sh("--socket", path, "pool", "list")
    assert r.returncode == 4
    assert "connection refused" in r.stderr


@pytest.mark.parametrize("args", [
    ["member", "weight", "web", "10.0.1.5:8080", "257"],
    ["member", "weight", "web", "10.0.1.5:8080", "-1"],
    ["member", "drain", "web", "10.0.1.5"],
    ["member", "drain", "web", "10.0.1.999:80"],
    ["member", "drain", "web", "10.0.1.5:70000"],
    ["member", "enable", "web", "[2001:db8::5:80"],
    ["-o", "xml", "status"],
    ["vip", "list", "-o", "csv"],
    ["lookup", "www", "not-an-ip"],
    ["config", "rollback", "seven"],
    ["apply"],
    ["frobnicate"],
])
def test_bad_arguments_are_usage_errors_exit_2(api, args):
    r = run(api, *args)
    assert r.exit_code == 2, (args, r.output)
    assert sum(1 for l in r.stderr.splitlines() if l.startswith("Error:")) == 1
    assert r.stdout == ""
    assert api.requests == []  # nothing reached the daemon


def test_a_usage_error_in_a_shell_is_exit_2_one_message_no_traceback(api):
    r = sh("--socket", api.path, "member", "weight", "web", "10.0.1.5:8080", "900")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert [l for l in r.stderr.splitlines() if l.startswith("Error:")] == [
        "Error: Invalid value for 'W': 900 is not in the range 0<=x<=256."]


def test_a_malformed_answer_is_one_line_and_exit_1_not_a_traceback(api):
    api.on("GET", "/status", (200, b"[not json"))
    r = sh("--socket", api.path, "status")
    assert r.returncode == 1
    assert r.stderr == "adcctl: adcd answered GET /api/v1/status with something that is not JSON\n"


def test_an_unexpected_error_is_one_line_unless_ADC_DEBUG(api):
    api.on("GET", "/status", [1, 2, 3])  # a shape this adcctl cannot render as a table
    r = sh("--socket", api.path, "-o", "table", "status")
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("adcctl: unexpected error: AttributeError")
    r = sh("--socket", api.path, "-o", "table", "status", env={"ADC_DEBUG": "1"})
    assert "Traceback" in r.stderr


def test_a_daemon_that_hangs_up_is_exit_1(api):
    def hang_up(req):
        raise ConnectionError("gone")  # the handler dies: the connection closes without an answer

    api.on("GET", "/status", hang_up)
    r = run(api, "status")
    assert r.exit_code == 1
    assert "dropped GET /api/v1/status before answering" in r.stderr


# ------------------------------------------------------------- help, completion
def test_help_lists_every_usage_line_and_the_exit_codes():
    r = sh("--help")
    assert r.returncode == 0
    for usage in ("member drain POOL ADDR:PORT", "member weight POOL ADDR:PORT W", "conn list [--vip V] [--member M]",
                  "lookup VIP CLIENT_IP[:PORT]", "apply -f FILE [--dry-run] [--comment TEXT]", "config rollback N",
                  "diff -f FILE", "worker list"):
        assert usage in r.stdout, usage
    for code in ("0  ok", "1  failed", "2  usage error", "3  invalid config", "4  daemon unreachable"):
        assert code in r.stdout
    assert 'eval "$(_ADCCTL_COMPLETE=bash_source adcctl)"' in r.stdout


def test_disable_help_says_it_is_drain_as_on_f5():
    r = sh("member", "disable", "--help")
    assert "Same as drain, as F5's Disabled" in r.stdout


def test_bash_completion_script_and_pool_names_from_the_daemon(api):
    r = sh(env={"_ADCCTL_COMPLETE": "bash_source"})
    assert r.returncode == 0 and "complete" in r.stdout and "_ADCCTL_COMPLETE" in r.stdout
    r = sh(env={"_ADCCTL_COMPLETE": "bash_complete", "COMP_WORDS": f"adcctl --socket {api.path} member list w",
                "COMP_CWORD": "5"})
    assert r.stdout.split() == ["plain,web"]
    r = sh(env={"_ADCCTL_COMPLETE": "bash_complete",
                "COMP_WORDS": f"adcctl --socket {api.path} member drain web 10.0.1.6", "COMP_CWORD": "6"})
    assert r.stdout.split() == ["plain,10.0.1.6:8080"]
