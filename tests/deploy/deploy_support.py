"""Helpers for the deploy tests: file loading, the documented metric table, a small PromQL scanner (for the static
checks Prometheus' own tools do not make: counters read through a rate, grouping labels, coverage), and where the
Prometheus binaries are."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
# Series Prometheus itself (up) or prometheus-client's process collector (named in docs/architecture.md) produce,
# allowed next to the documented ones.
BUILTIN_SERIES = {"up": frozenset[str](), "process_cpu_seconds_total": frozenset[str]()}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
RATE_FUNCTIONS = frozenset({"rate", "irate", "increase"})


def prometheus_tool(name: str) -> str:
    """The path of `prometheus` or `promtool`: on PATH or in the venv's bin, else installed now by
    `.ci/install-tools` (what `make tools` runs: apt-get as root, else a copy into the venv's bin). Still missing:
    the test is skipped with the reason, or fails when STREAMREC_TEST_REQUIRE_TOOLS=1 (CI)."""
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which(name) or shutil.which(name, path=venv_bin)
    if not found:
        why = _install_tools(venv_bin)
        found = shutil.which(name) or shutil.which(name, path=venv_bin)
        if not found:
            reason = f"{name} not found and not installable here ({why or 'no reason given'})"
            if os.environ.get("STREAMREC_TEST_REQUIRE_TOOLS") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
    return found


@functools.cache
def _install_tools(venv_bin: str) -> str:
    done = subprocess.run([str(ROOT / ".ci" / "install-tools"), venv_bin], capture_output=True, text=True)
    return " ".join((done.stdout + done.stderr).split())


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Metric:
    name: str
    type: str
    labels: frozenset[str]


def documented_metrics() -> dict[str, Metric]:
    """The metric table under '## Prometheus metric names' in docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Prometheus metric names", 1)[1].split("\n## ", 1)[0]
    metrics: dict[str, Metric] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("name", "") or set(cells[0]) <= {"-", ":"}:
            continue
        labels = re.sub(r"\(.*?\)", "", cells[2])  # parenthesised text is a comment, not a label
        metrics[cells[0]] = Metric(
            cells[0], cells[1].split()[0], frozenset(x.strip() for x in labels.split(",") if x.strip())
        )
    return metrics


# --- PromQL ----------------------------------------------------------------------------------------

AGGREGATIONS = frozenset(
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio".split()
)
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}) | GROUPING
_STRING = r""""(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'"""
_TOKEN = re.compile(
    rf"""(?P<ws>\s+)
    |(?P<string>{_STRING}|`[^`]*`)
    |(?P<range>\[[^\]]*\])
    |(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?:ms|[smhdwy])*)
    |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<matchers>\{{(?:{_STRING}|[^{{}}"'])*\}})
    |(?P<op>==|!=|<=|>=|=~|!~|[-+*/%^,()<>])""",
    re.X,
)
_MATCHER = re.compile(rf"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*({_STRING})\s*,?")
_GRAFANA_VAR = re.compile(r"\$__\w+|\$\{\w+(?::\w+)?\}|\$\w+")
_LABELS = "#labels"  # stack marker for a by/without/on/ignoring label list


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: dict[str, str]  # label -> matched value (quotes removed)
    function: str | None  # the function directly around the selector


@dataclass
class Usage:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)


def _matchers(body: str) -> dict[str, str]:
    inner, out, pos = body[1:-1], {}, 0
    while pos < len(inner.rstrip()):
        m = _MATCHER.match(inner, pos)
        if m is None:
            raise ValueError(f"cannot read label matchers {body!r}")
        out[m.group(1)] = m.group(2)[1:-1]
        pos = m.end()
    return out


def scan(expr: str) -> Usage:
    """Series selectors, grouping labels and functions of a PromQL expression (Grafana $vars allowed)."""
    text = _GRAFANA_VAR.sub("1m", expr)
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"unexpected {text[pos : pos + 10]!r} in {expr!r}")
        if m.lastgroup != "ws":
            tokens.append((m.lastgroup or "", m.group()))
        pos = m.end()
    usage = Usage()
    stack: list[str | None] = []
    pending_fn: str | None = None
    pending_group = False
    for i, (kind, tok) in enumerate(tokens):
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "ident":
            if stack and stack[-1] == _LABELS:
                usage.grouping.add(tok)
            elif tok in AGGREGATIONS and nxt in ("(", "by", "without"):
                pending_fn = tok
            elif nxt == "(" and tok in GROUPING:
                pending_group = True  # keeps pending_fn: `sum by (x) (...)`
            elif nxt == "(":
                pending_fn = tok
            elif tok.lower() not in KEYWORDS:
                has_matchers = i + 1 < len(tokens) and tokens[i + 1][0] == "matchers"
                matchers = _matchers(nxt) if has_matchers else {}
                usage.selectors.append(Selector(tok, matchers, stack[-1] if stack else None))
        elif kind == "matchers" and (i == 0 or tokens[i - 1][0] != "ident"):
            raise ValueError(f"selector without a metric name in {expr!r}")
        elif tok == "(":
            if pending_group:
                stack.append(_LABELS)
                pending_group = False
            else:
                stack.append(pending_fn)
                usage.functions |= {pending_fn} if pending_fn else set()
                pending_fn = None
        elif tok == ")":
            if not stack:
                raise ValueError(f"unbalanced ')' in {expr!r}")
            stack.pop()
    if stack:
        raise ValueError(f"unbalanced '(' in {expr!r}")
    return usage


def base_metric(series: str, metrics: dict[str, Metric]) -> tuple[Metric | None, str]:
    """The documented metric a series belongs to, and the histogram suffix it uses ('' if none)."""
    if series in metrics:
        return metrics[series], ""
    for suffix in HISTOGRAM_SUFFIXES:
        base = series.removesuffix(suffix)
        if base != series and metrics.get(base, Metric("", "", frozenset())).type == "histogram":
            return metrics[base], suffix
    return None, ""


def expr_problems(expr: str, metrics: dict[str, Metric]) -> list[str]:
    """Everything wrong with how `expr` uses the documented metrics; empty when it is fine."""
    usage = scan(expr)
    problems: list[str] = []
    available = set(TARGET_LABELS)
    for sel in usage.selectors:
        metric, suffix = base_metric(sel.name, metrics)
        if metric is None and sel.name not in BUILTIN_SERIES:
            problems.append(f"{sel.name} is not a documented metric")
            continue
        labels = set(metric.labels if metric else BUILTIN_SERIES[sel.name]) | TARGET_LABELS
        labels |= {"le"} if suffix == "_bucket" else set()
        available |= labels
        if unknown := set(sel.matchers) - labels:
            problems.append(f"{sel.name} has no label(s) {sorted(unknown)}")
        cumulative = metric is not None and (metric.type == "counter" or suffix != "")
        if cumulative and sel.function not in RATE_FUNCTIONS:
            problems.append(f"{sel.name} is cumulative but used in {sel.function or 'no function'}, not a rate")
        if metric is not None and metric.type == "gauge" and sel.function in RATE_FUNCTIONS:
            problems.append(f"{sel.name} is a gauge but used in {sel.function}")
    if unknown := usage.grouping - available:
        problems.append(f"grouping by label(s) {sorted(unknown)} that no selected series has")
    return problems


# --- docker compose --------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")
    return doc


def env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either the mapping or the KEY=VALUE list form."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(k): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in raw.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def worker_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in doc["services"].items() if command(svc) == ["worker"]}


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    bind: bool  # a host path rather than a named volume


def mounts(service: dict[str, Any]) -> list[Mount]:
    out = []
    for item in service.get("volumes", []):
        if isinstance(item, str):
            source, target = item.split(":")[:2]
        else:
            source, target = item["source"], item["target"]
        out.append(Mount(source, target, source.startswith((".", "/"))))
    return out
