"""adc.config.loader: files load, or every error comes back with its file:line."""
from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass

import pytest

from adc.config.errors import ConfigError, ConfigInvalid
from adc.config.loader import canonical, check_text, dump_yaml, load_file, load_text
from adc.config.schema import Config, format_duration, parse_duration

EXAMPLES = "/work/shared/examples"


def errors_of(text: str, path: str = "adc.yaml") -> list[str]:
    with pytest.raises(ConfigInvalid) as ei:
        load_text(textwrap.dedent(text), path)
    return [str(e) for e in ei.value.errors]


def test_shipped_example_loads_with_every_object():
    cfg = load_file(f"{EXAMPLES}/adc.yaml")
    assert [v.name for v in cfg.vips] == ["web", "echo", "dns"]
    assert [p.name for p in cfg.pools] == ["web", "api", "echo", "dns"]
    assert cfg.monitors[0].timeout == 0.5
    assert cfg.vips[0].routes[0].match.path_prefix == "/api/"
    assert cfg.global_.access_log is not None and cfg.global_.access_log.format == "haproxy"


def test_shipped_example_has_no_warnings():
    text = open(f"{EXAMPLES}/adc.yaml").read()
    res = check_text(text, "adc.yaml")
    assert res.ok and res.errors == [] and res.warnings == []


BROKEN = """\
global:
  workers: lots
  drain_timeout: soon
monitors:
  - name: http-ok
    type: http
    timeot: 1s
pools:
  - name: web
    monitor: http-okk
    members:
      - {address: 10.0.1.5, port: 8080, weight: 900}
      - {address: 10.0.1.6}
  - name: api
    members:
      - {address: 10.0.1.7, port: 8080}
      - {address: 10.0.1.7, port: 8080}
vips:
  - name: web
    address: 127.0.0.1
    port: 8080
    protocol: http
    default_pool: web
  - name: web2
    address: 127.0.0.1
    port: 8080
    protocol: tcp
    default_pool: nope
"""


def test_broken_file_reports_every_error_with_its_line():
    assert errors_of(BROKEN) == [
        "adc.yaml:2: global.workers: must be 'auto' or an integer 1..256 (got 'lots')",
        "adc.yaml:3: global.drain_timeout: expected a duration like 500ms, 2s or 1m (got 'soon')",
        "adc.yaml:7: monitor 'http-ok': timeot: unknown key (did you mean 'timeout'?)",
        "adc.yaml:10: pool 'web': monitor: no monitor named 'http-okk' (did you mean 'http-ok'?)",
        "adc.yaml:12: pool 'web' member 10.0.1.5:8080: weight: must be 0..256 (got 900)",
        "adc.yaml:13: pool 'web' member #2: port: missing (required)",
        "adc.yaml:17: pool 'api' member 10.0.1.7:8080: listed twice (first at line 16); remove one",
        "adc.yaml:26: vip 'web2': port: 127.0.0.1:8080/tcp is already used by vip 'web' (line 19); "
        "http, https and tcp VIPs all listen on TCP; give one of them another address or port",
        "adc.yaml:28: vip 'web2': default_pool: no pool named 'nope' (defined: api, web)",
    ]


def test_config_invalid_str_is_one_error_per_line():
    with pytest.raises(ConfigInvalid) as ei:
        load_text(BROKEN, "/etc/adc/adc.yaml")
    lines = str(ei.value).splitlines()
    assert len(lines) == 9 and all(line.startswith("/etc/adc/adc.yaml:") for line in lines)
    assert all(isinstance(e, ConfigError) and e.severity == "error" for e in ei.value.errors)


def test_config_error_str_is_file_line_path_reason():
    e = ConfigError("adc.yaml", 14, "pool 'web' member 10.0.1.5:8080: weight", "must be 0..256 (got 900)")
    assert str(e) == "adc.yaml:14: pool 'web' member 10.0.1.5:8080: weight: must be 0..256 (got 900)"
    assert str(ConfigError("adc.yaml", 1, "", "the file is empty")) == "adc.yaml:1: the file is empty"


@dataclass
class Case:
    desc: str
    text: str
    errors: list[str]


SCHEMA_CASES = [
    Case("empty file", "", ["f.yaml:1: the file is empty: expected a mapping with global, monitors, "
                            "certificates, pools and vips"]),
    Case("only a comment is empty too", "# nothing\n", ["f.yaml:1: the file is empty: expected a mapping with "
                                                       "global, monitors, certificates, pools and vips"]),
    Case("top level is a list", "- a\n- b\n",
         ["f.yaml:1: the file must be a mapping with global, monitors, certificates, pools and vips (got a list)"]),
    Case("YAML syntax error gives the line", "pools:\n  - name: web\n    members: [\n",
         ["f.yaml:4: invalid YAML: expected the node content, but found '<stream end>' (while parsing a flow node)"]),
    Case("bad indentation", "pools:\n  - name: a\n   algorithm: maglev\n",
         ["f.yaml:3: invalid YAML: expected <block end>, but found '<block mapping start>' "
          "(while parsing a block collection that starts at line 2)"]),
    Case("duplicate key", "global:\n  workers: 2\n  workers: 3\n", ["f.yaml:3: invalid YAML: duplicate key 'workers'"]),
    Case("unknown top-level key lists the known ones", "pool: []\n",
         ["f.yaml:1: pool: unknown key (did you mean 'pools'?)"]),
    Case("section of the wrong type", "pools: {web: 1}\n", ["f.yaml:1: pools: must be a list (got a mapping)"]),
    Case("empty section means none", "monitors:\npools:\nvips:\n", []),
    Case("algorithm not in the list", "pools:\n  - name: p\n    algorithm: fastest\n    members: "
         "[{address: 10.0.0.1, port: 80}]\n",
         ["f.yaml:3: pool 'p': algorithm: must be one of 'round_robin', 'weighted_round_robin', "
          "'least_connections', 'random_two', 'source_hash' or 'maglev' (got 'fastest')"]),
    Case("bad IP address", "pools:\n  - name: p\n    members:\n      - {address: 10.0.0.300, port: 80}\n",
         ["f.yaml:4: pool 'p' member 10.0.0.300:80: address: not an IP address: '10.0.0.300'"]),
    Case("port out of range", "pools:\n  - name: p\n    members:\n      - {address: 10.0.0.3, port: 0}\n",
         ["f.yaml:4: pool 'p' member 10.0.0.3:0: port: must be 1..65535 (got 0)"]),
    Case("bad name", "pools:\n  - name: -web\n",
         ["f.yaml:2: pool '-web': name: must be a name of 1-63 letters, digits, '_', '.' or '-' starting "
          "with a letter or digit (got '-web')"]),
    Case("negative duration", "monitors:\n  - {name: m, type: tcp, interval: -1}\npools:\n  - name: p\n    "
         "monitor: m\n    members: [{address: 10.0.0.1, port: 80}]\n",
         ["f.yaml:2: monitor 'm': interval: a duration cannot be negative"]),
    Case("timeout above interval", "monitors:\n  - {name: m, type: tcp, interval: 1s, timeout: 2s}\n",
         ["f.yaml:2: monitor 'm': timeout must not exceed interval"]),
    Case("boolean field given a word", "pools:\n  - name: p\n    members:\n      - {address: 10.0.0.1, port: 80, "
         "backup: maybe}\n", ["f.yaml:4: pool 'p' member 10.0.0.1:80: backup: must be true or false (got 'maybe')"]),
    Case("bad regular expression in a route",
         "pools:\n  - name: p\n    members: [{address: 10.0.0.1, port: 80}]\nvips:\n  - name: v\n    address: "
         "127.0.0.1\n    port: 80\n    protocol: http\n    default_pool: p\n    routes:\n      - match: "
         "{path_regex: '^/(a'}\n        pool: p\n",
         ["f.yaml:11: vip 'v' route #1: match.path_regex: bad regular expression: missing ), unterminated "
          "subpattern at position 2"]),
    Case("method neither string nor list",
         "pools:\n  - name: p\n    members: [{address: 10.0.0.1, port: 80}]\nvips:\n  - name: v\n    address: "
         "127.0.0.1\n    port: 80\n    protocol: http\n    routes:\n      - name: r\n        match: {method: 5}\n"
         "        pool: p\n",
         ["f.yaml:11: vip 'v' route 'r': match.method: must be a string or a list (got 5)"]),
    Case("the error of an object set aside does not cascade into its users",
         "pools:\n  - name: p\n    algorithm: nope\nvips:\n  - name: v\n    address: 127.0.0.1\n    port: 80\n"
         "    protocol: tcp\n    default_pool: p\n",
         ["f.yaml:3: pool 'p': algorithm: must be one of 'round_robin', 'weighted_round_robin', "
          "'least_connections', 'random_two', 'source_hash' or 'maglev' (got 'nope')"]),
    Case("a vip with a bad key is still checked for references",
         "vips:\n  - name: v\n    address: 127.0.0.1\n    port: 80\n    protocol: tcp\n    default_pool: q\n"
         "    idle_timeout: forever\n",
         ["f.yaml:6: vip 'v': default_pool: no pool named 'q' (the file defines no pools)",
          "f.yaml:7: vip 'v': idle_timeout: expected a duration like 500ms, 2s or 1m (got 'forever')"]),
    Case("L7 settings: a bad mapping key, an enum in a list, a bad header name, two actions",
         "pools:\n  - {name: p, members: [{address: 10.0.0.1, port: 80}]}\nvips:\n  - name: v\n    address: "
         "127.0.0.1\n    port: 80\n    protocol: http\n    default_pool: p\n    http:\n      error_pages: {200: /x}\n"
         "      retry_on: [connect, 500]\n    routes:\n      - {pool: p, redirect: {status: 301}}\n"
         "      - {match: {path: /c}, pool: p, request_headers: {set: {'bad header': x}}}\n",
         ["f.yaml:10: vip 'v': http.error_pages.200: must be 400..599 (got 200)",
          "f.yaml:11: vip 'v': http.retry_on[1]: must be one of 'connect', '502', '503' or '504' (got 500)",
          "f.yaml:13: vip 'v' route #1: a route takes one action, not pool and redirect",
          "f.yaml:14: vip 'v' route #2: request_headers.set.bad header: must be an HTTP header name (letters, digits "
          "and !#$%&'*+.^_`|~-, no spaces) (got 'bad header')"]),
]


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=lambda c: c.desc)
def test_schema_errors(case: Case):
    res = check_text(case.text, "f.yaml")
    assert [str(e) for e in res.errors] == case.errors
    assert res.ok == (not case.errors)


DURATIONS = [
    ("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), ("1h", 3600.0), ("1d", 86400.0), ("250us", 0.00025),
    ("1.5s", 1.5), ("300ms", 0.3), (3, 3.0), (0.25, 0.25), ("7", 7.0), (" 2 s ", 2.0),
]


@pytest.mark.parametrize("text,seconds", DURATIONS)
def test_duration_parses(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["fast", "1 week", "-1s", "1e3s", True, float("inf"), float("nan"), None, [1]])
def test_duration_refuses(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("seconds,text", [
    (0.0, "0s"), (0.5, "500ms"), (0.3, "300ms"), (1.5, "1500ms"), (60.0, "1m"), (90.0, "90s"),
    (7200.0, "2h"), (86400.0, "1d"), (0.00025, "250us"), (1e-7, "0.0000001s"), (0.1234567, "0.1234567s"),
])
def test_duration_formats_and_round_trips(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_dump_yaml_round_trips_the_example():
    cfg = load_file(f"{EXAMPLES}/adc.yaml")
    text = dump_yaml(cfg)
    assert load_text(text, "/elsewhere/adc.yaml") == cfg
    assert "timeout: 500ms" not in text   # 500ms is the default, left out
    assert "- {address: 127.0.0.1, port: 9001}" in text


def test_dump_yaml_keeps_non_default_durations_as_strings():
    cfg = load_text("global: {drain_timeout: 1500ms}\nmonitors:\n  - {name: m, type: tcp, interval: 2s, "
                    "timeout: 300ms}\n", "a.yaml")
    text = dump_yaml(cfg)
    assert "drain_timeout: 1500ms" in text and "interval: 2s" in text and "timeout: 300ms" in text
    assert load_text(text, "a.yaml") == cfg


def test_dump_yaml_round_trips_every_kind_of_value(tmp_path):
    text = textwrap.dedent("""\
        global: {workers: 4, log_level: debug, access_log: {path: /var/log/adc.log, format: json}}
        monitors:
          - {name: d, type: dns, query_name: example.org, query_type: AAAA, interval: 5s, timeout: 1s}
          - {name: h, type: https, headers: {X-Probe: "yes", Accept: "*/*"}, expect_status: [200, 204],
             sni: example.org, verify: true, expect_body: "ok: 1"}
        pools:
          - name: p
            monitor: h
            proxy_protocol: v2
            slow_start: 30s
            members:
              - {address: "::1", port: 80, weight: 0, backup: true}
              - {address: 10.0.0.1, port: 80, weight: 7, state: drain, monitor_port: 8081}
          - name: u
            monitor: d
            members: [{address: 10.0.0.2, port: 53}]
        vips:
          - name: v
            address: "::"
            port: 80
            protocol: http
            idle_timeout: 2m
            routes:
              - name: api
                match: {host: API.example.org, path_prefix: /api/, method: [GET, post], header: {X-A: null},
                        query: {debug: "1"}}
                pool: p
          - {name: dns, address: 127.0.0.1, port: 53, protocol: udp, default_pool: u, udp_one_shot: true}
          - {name: tcp, address: 127.0.0.1, port: 82, protocol: tcp, default_pool: p}
          - name: l7
            address: 127.0.0.1
            port: 81
            protocol: http
            default_pool: p
            http:
              timeouts: {header: 5s, total: 90s}
              request_id: null
              error_pages: {503: /srv/503.html}
              retry_on: [connect, "503"]
              persistence: {type: cookie, max_age: 1h}
            routes:
              - {match: {path_prefix: /old/}, redirect: {prefix: /new/, status: 308}}
              - {match: {path: /ping}, respond: {body: "pong\\n"}}
              - split: [{pool: p, weight: 90}, {pool: u, weight: 10}]
                request_headers: {set: {X-Canary: "1"}, remove: [Cookie]}
        """)
    cfg = load_text(text, str(tmp_path / "a.yaml"), check_files=False)
    again = load_text(dump_yaml(cfg), str(tmp_path / "b.yaml"), check_files=False)
    assert again == cfg
    assert canonical(again) == canonical(cfg)


def test_canonical_has_defaults_and_duration_strings():
    cfg = load_file(f"{EXAMPLES}/adc.yaml")
    c = canonical(cfg)
    assert c["global"]["drain_timeout"] == "30s"
    assert c["monitors"][0]["timeout"] == "500ms"
    assert c["pools"][0]["members"][0]["weight"] == 1
    assert Config.model_validate(c) == cfg


def test_relative_certificate_paths_resolve_against_the_file(tmp_path):
    text = "certificates:\n  - {name: c, cert: certs/c.pem, key: /abs/c.key, chain: ../chain.pem}\n"
    cfg = load_text(text, str(tmp_path / "conf" / "adc.yaml"), check_files=False)
    c = cfg.certificates[0]
    assert c.cert == str(tmp_path / "conf" / "certs" / "c.pem")
    assert c.key == "/abs/c.key"
    assert c.chain == str(tmp_path / "chain.pem")


def test_load_file_that_does_not_exist(tmp_path):
    with pytest.raises(ConfigInvalid) as ei:
        load_file(tmp_path / "nope.yaml")
    assert str(ei.value) == f"{tmp_path / 'nope.yaml'}:0: cannot read the file: No such file or directory"


def test_load_file_copy_of_example(tmp_path):
    shutil.copy(f"{EXAMPLES}/adc.yaml", tmp_path / "adc.yaml")
    assert load_file(str(tmp_path / "adc.yaml")) == load_file(f"{EXAMPLES}/adc.yaml")


def test_dump_yaml_quotes_words_that_yaml_1_1_readers_take_for_booleans():
    cfg = load_text("monitors:\n  - {name: m, type: http, headers: {A: 'yes', B: 'off', C: 'yesno', D: '~'}}\n", "a.yaml")
    text = dump_yaml(cfg)
    assert "A: 'yes'" in text and "B: 'off'" in text and "C: yesno" in text and "D: '~'" in text
    assert load_text(text, "a.yaml") == cfg


def test_large_config_loads_quickly():
    import time
    pools = "".join(
        f"  - name: p{i}\n    members:\n" + "".join(f"      - {{address: 10.{i // 200}.{i % 200}.{j}, port: 80}}\n"
                                                  for j in range(10))
        for i in range(300))
    vips = "".join(f"  - {{name: v{i}, address: 127.0.0.1, port: {1000 + i}, protocol: tcp, default_pool: p{i}}}\n"
                   for i in range(300))
    t0 = time.monotonic()
    cfg = load_text("pools:\n" + pools + "vips:\n" + vips, "big.yaml")
    assert len(cfg.pools) == 300 and sum(len(p.members) for p in cfg.pools) == 3000
    assert time.monotonic() - t0 < 10


def test_anchors_merges_and_x_keys():
    text = textwrap.dedent("""\
        x-member: &m {port: 8080, weight: 2}
        pools:
          - name: p
            members:
              - {<<: *m, address: 10.0.1.5}
              - <<: *m
                address: 10.0.1.6
                weight: 900
        """)
    assert errors_of(text) == ["adc.yaml:8: pool 'p' member 10.0.1.6:8080: weight: must be 0..256 (got 900)"]
    cfg = load_text(text.replace("900", "3"), "adc.yaml")
    assert [(m.key, m.weight) for m in cfg.pools[0].members] == [("10.0.1.5:8080", 2), ("10.0.1.6:8080", 3)]


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False),
                 st.integers(min_value=0, max_value=10 ** 7).map(lambda n: n / 1000)))
def test_any_duration_survives_format_and_parse(seconds):
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
    assert load_text(f"global: {{drain_timeout: {text}}}\n", "a.yaml").global_.drain_timeout == seconds


_names = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.lists(_names, min_size=1, max_size=3, unique=True), _text, _text,
       st.lists(st.integers(min_value=1, max_value=256), min_size=1, max_size=4))
def test_dump_yaml_round_trips_generated_configs(pools, header_value, body, weights):
    cfg = Config.model_validate({
        "monitors": [{"name": "m", "type": "http", "headers": {"X-V": header_value},
                      "expect_body": re.escape(body)}],
        "pools": [{"name": n, "monitor": "m",
                   "members": [{"address": f"10.0.{i}.{j}", "port": 80 + j, "weight": w}
                               for j, w in enumerate(weights)]} for i, n in enumerate(pools)],
        "vips": [{"name": "v", "address": "127.0.0.1", "port": 80, "protocol": "http", "default_pool": pools[0],
                  "routes": [{"match": {"path": f"/{p}", "header": {"X-K": header_value or None}}, "pool": p}
                             for p in pools]}],
    })
    again = load_text(dump_yaml(cfg), "a.yaml")
    assert again == cfg


def test_errors_survive_pickling_for_other_processes():
    import pickle
    with pytest.raises(ConfigInvalid) as ei:
        load_text(BROKEN, "adc.yaml")
    again = pickle.loads(pickle.dumps(ei.value))
    assert str(again) == str(ei.value) and again.errors == ei.value.errors
