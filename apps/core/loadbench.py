"""API load benchmark against the production set-up: gunicorn, PostgreSQL, DEBUG off.

    .venv/bin/python -m apps.core.loadbench [--clients 32] [--workers 4] [--requests 60]
        [--baseline 20] [--rounds 3] [--sweep 8,16] [--images 100] [--readers 4]
        [--json report.json] [--response-cache redis://127.0.0.1:6379/12]

Creates a scratch PostgreSQL database on ``--database-url`` (dropped afterwards), migrates it and
loads a lab through the services (``apps.core.loadbench_lab``): ``make_demo_lab --size small``
(phantom DICOMs; simulated readers' vendor exports parsed into readings and fixations), reading
and pooled saliency maps, a built snapshot, model versions with evaluations and queued training
jobs; a researcher of the lab gets an API token. Then gunicorn serves ``config.wsgi`` as
``docker/compose.yaml`` runs it (``--workers``, DEBUG off, its cache and the API's answer cache
in Redis: ``--response-cache``, ``''`` for none) on 127.0.0.1, with its files under a temporary
folder and ``QUERY_COUNT_HEADER`` on; requests carry ``X-Forwarded-Proto: https``, as the TLS
proxy in front of it would.

Every endpoint (lists with filters, object reads, fixations as CSV, a saliency map PNG, an image
upload) gets a fixed number of requests, with seeded choices of filters and objects. After an
untimed warm-up, each list is asked for a page of 1 row and one of 50 (N+1: the queries grow);
then ``--baseline`` requests per endpoint go one at a time (the baseline, with the CPU each
endpoint costs gunicorn and the database), then ``--requests`` per endpoint, shuffled, from
``--clients`` concurrent clients with no think time, ``--rounds`` times (the round of the best
throughput is tabled), then one round at each ``--sweep`` client count.

Prints per endpoint count, p50/p95/p99 latency, the baseline p50 and the ratio to it, CPU,
response size, errors by status and queries per request (``X-Query-Count``); with the CPU model
and cores, and for each round the load average, the cores busy (ours, other processes', stolen)
and the busiest other processes; the capacity the mix's CPU cost leaves (the latency floor at
``--clients``); and whether lists and object reads meet the target (p95 < 150 ms, no errors).

Everything is removed at the end, on failure and on Ctrl-C too: gunicorn, the database, the
temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from apps.core.loadbench_lab import Lab, Req, endpoints, load_lab, plan

TARGET_P95_MS = 150.0
TARGET_KINDS = ("list", "detail")
PAGE = 50  # the API's default page size


# --- The client -----------------------------------------------------------------------------
@dataclass
class Result:
    endpoint: str
    kind: str
    status: str  # "200", or the exception's name when no answer came
    ms: float
    queries: int | None
    streaming: bool
    nbytes: int = 0
    body: bytes = b""
    cache: str | None = None  # X-Response-Cache: "hit", "miss", or None (not cacheable, off)


def send(port: int, token: str, req: Req, keep_body: bool = False) -> Result:
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https", "Accept": "*/*"}
    if req.content_type:
        headers["Content-Type"] = req.content_type
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request(req.method, req.path, body=req.body, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        ms = (time.perf_counter() - started) * 1000
        return Result(req.endpoint, req.kind, type(exc).__name__, ms, None, False)
    ms = (time.perf_counter() - started) * 1000
    queries = answer.getheader("X-Query-Count")
    return Result(req.endpoint, req.kind, str(answer.status), ms,
                  int(queries) if queries is not None else None,
                  answer.getheader("X-Query-Count-Streaming") == "true", len(body),
                  body if keep_body else b"", answer.getheader("X-Response-Cache"))  # fmt: skip


def run_phase(port: int, token: str, reqs: list[Req], clients: int) -> tuple[list[Result], float]:
    """Send ``reqs`` from ``clients`` threads, each taking the next request when done."""
    started = time.perf_counter()
    if clients <= 1:
        return [send(port, token, req) for req in reqs], time.perf_counter() - started
    pool = ThreadPoolExecutor(max_workers=clients)
    try:
        results = list(pool.map(lambda req: send(port, token, req), reqs))
    finally:  # on Ctrl-C, the requests not sent yet are dropped
        pool.shutdown(wait=True, cancel_futures=True)
    return results, time.perf_counter() - started


def _percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]


def summarize(results: list[Result], order: list[str]) -> dict[str, dict[str, Any]]:
    by: dict[str, list[Result]] = {name: [] for name in order}
    for res in results:
        by.setdefault(res.endpoint, []).append(res)
    out = {}
    for name, rows in by.items():
        if not rows:
            continue
        ms = sorted(r.ms for r in rows)
        queries = sorted(r.queries for r in rows if r.queries is not None)
        errors = Counter(r.status for r in rows if not r.status.startswith("2"))
        out[name] = {
            "kind": rows[0].kind, "count": len(rows),
            "p50_ms": round(_percentile(ms, 0.50), 1), "p95_ms": round(_percentile(ms, 0.95), 1),
            "p99_ms": round(_percentile(ms, 0.99), 1), "max_ms": round(ms[-1], 1),
            "errors": dict(sorted(errors.items())),
            "queries": queries[len(queries) // 2] if queries else None,
            "queries_max": queries[-1] if queries else None,
            "streaming": any(r.streaming for r in rows),
            "kb": round(sorted(r.nbytes for r in rows)[len(rows) // 2] / 1024, 1),
            "cache_hits": sum(r.cache == "hit" for r in rows),
        }  # fmt: skip
    return out


def probe_page_growth(port: int, lab: Lab) -> dict[str, dict[str, Any]]:
    """Each list's queries for a page of 1 row and a page of ``PAGE`` rows (N+1 shows up as
    more queries for the bigger page)."""
    out = {}
    for name, kind, path in endpoints(lab):
        if kind != "list":
            continue
        base = path(random.Random(0)).split("?")[0]
        counts = {}
        for size in (1, PAGE):
            res = send(port, lab.token, Req(name, kind, "GET", f"{base}?page_size={size}"),
                       keep_body=True)  # fmt: skip
            rows = len(json.loads(res.body)["results"]) if res.status == "200" else None
            counts[size] = (res.queries, rows, res.status)
        (q1, _r1, s1), (qn, rn, sn) = counts[1], counts[PAGE]
        out[name] = {"queries_page_1": q1, "queries_page_n": qn, "rows_page_n": rn,
                     "grows": (qn or 0) > (q1 or 0) and (rn or 0) > 1,
                     "status": sn if s1 == "200" else s1}  # fmt: skip
    return out


# --- The machine ----------------------------------------------------------------------------
def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def _cpu_times() -> dict[int, tuple[float, str, int]]:
    """``{pid: (cpu seconds, command line, parent pid)}`` of every process now."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cpu = (int(fields[11]) + int(fields[12])) / tick
            out[int(entry.name)] = (cpu, cmd.strip() or stat.split()[1], int(fields[1]))
    return out


def other_busy(before: dict, after: dict, ours: set[int], db_name: str, seconds: float,
               top: int = 5) -> list[dict[str, Any]]:  # fmt: skip
    """The processes (not this benchmark, its gunicorn or its database backends) that used the
    most CPU between two ``_cpu_times``, in cores busy on average."""
    rows = []
    for pid, (cpu, cmd, _ppid) in after.items():
        if pid in ours or db_name in cmd:
            continue
        used = cpu - before.get(pid, (0.0, "", 0))[0]
        if used > 0.01 * seconds:
            rows.append({"pid": pid, "cores": round(used / seconds, 2), "command": cmd[:90]})
    return sorted(rows, key=lambda r: -r["cores"])[:top]


def our_cpu(server_pid: int, db_name: str) -> tuple[float, float]:
    """CPU seconds so far of gunicorn (master and workers) and of the database's backends."""
    procs = _cpu_times()
    web = sum(procs[p][0] for p in {server_pid, *_children(server_pid, procs)} if p in procs)
    return web, sum(cpu for cpu, cmd, _ppid in procs.values() if db_name in cmd)


def _machine() -> tuple[float, float]:
    """CPU seconds the machine has been busy (all but idle and iowait) and stolen, so far."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - fields[3] - fields[4] - fields[7]) / tick, fields[7] / tick


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- The server -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(work: Path, database_url: str, workers: int,
                   cache_url: str = "") -> tuple[subprocess.Popen, int]:  # fmt: skip
    """gunicorn on a free port of 127.0.0.1, as production runs it, once it answers; with
    ``cache_url`` (Redis), Django's cache and the API's answer cache there, as in
    ``docker/compose.yaml``."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "loadbench-" + uuid.uuid4().hex * 2,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "VAR_DIR": str(work),
        "MEDIA_ROOT": str(work / "media"),
        "STORAGE_CACHE_DIR": str(work / "cache"),
        # The upload's ingest task is queued here; no worker takes it (uploads answer 202).
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_BROKER_DIR": str(work / "broker"),
        "QUERY_COUNT_HEADER": "true",
        "LOG_LEVEL": "WARNING",
        "CACHE_URL": cache_url,
        "RESPONSE_CACHE_URL": cache_url,
    }
    bin_dir = Path(sys.executable).parent
    with open(work / "gunicorn.log", "ab") as log:  # the child keeps its own handle
        server = subprocess.Popen(
            [str(bin_dir / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--timeout", "300", "--log-level", "warning",
             "--pid", str(work / "gunicorn.pid")],
            cwd=Path(__file__).resolve().parents[2], env=env, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({server.returncode}): see its log")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/v1/me/", headers={"X-Forwarded-Proto": "https"})
                conn.getresponse().read()
                conn.close()
                return server, port
            time.sleep(0.25)
        raise RuntimeError("gunicorn did not answer within 120 s")
    except BaseException:
        stop_gunicorn(server)
        raise


def stop_gunicorn(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def _children(pid: int, procs: dict) -> set[int]:
    return {p for p, (_cpu, _cmd, ppid) in procs.items() if ppid == pid}


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


# --- The report -----------------------------------------------------------------------------
def _queries(row: dict) -> str:
    q = "-" if row["queries"] is None else str(row["queries"])
    if row["queries_max"] is not None and row["queries_max"] != row["queries"]:
        q += f"-{row['queries_max']}"
    return q + ("+s" if row["streaming"] else "")


def _table(rows: dict[str, dict], baseline: dict[str, dict], probe: dict[str, dict]) -> str:
    lines = [f"{'endpoint':<18} {'kind':<6} {'n':>4} {'p50':>6} {'p95':>6} {'p99':>6} "
             f"{'| base':>6} {'p95/base':>8} {'web cpu':>7} {'db cpu':>6} {'kB':>5} {'queries':>7} "
             f"{'q@1/q@50':>9} {'hits':>4}  errors"]  # fmt: skip
    for name, row in rows.items():
        base = baseline.get(name, {})
        p50 = base.get("p50_ms")
        ratio = f"{row['p95_ms'] / p50:.0f}x" if p50 else "-"
        growth = probe.get(name)
        pages = f"{growth['queries_page_1']}/{growth['queries_page_n']}" if growth else ""
        if growth and growth["grows"]:
            pages += " N+1"
        errors = ", ".join(f"{k}: {v}" for k, v in row["errors"].items()) or "none"
        lines.append(f"{name:<18} {row['kind']:<6} {row['count']:>4} {row['p50_ms']:>6.0f} "
                     f"{row['p95_ms']:>6.0f} {row['p99_ms']:>6.0f} {p50 or 0:>6.1f} {ratio:>8} "
                     f"{base.get('web_cpu_ms', 0):>7.1f} {base.get('db_cpu_ms', 0):>6.1f} "
                     f"{row['kb']:>5.0f} {_queries(row):>7} {pages:>9} {row['cache_hits']:>4}  "
                     f"{errors}")  # fmt: skip
    return "\n".join(lines)


def verdict(rows: dict[str, dict]) -> tuple[bool, list[str]]:
    short = [f"{name} (p95 {row['p95_ms']:.0f} ms{', errors' if row['errors'] else ''})"
             for name, row in rows.items() if row["kind"] in TARGET_KINDS
             and (row["p95_ms"] >= TARGET_P95_MS or row["errors"])]  # fmt: skip
    return not short, short


def capacity(report: dict[str, Any]) -> dict[str, float]:
    """What the machine allows the mix: its CPU per request in the tabled round (gunicorn, the
    database and this client), the most requests per second all cores give at that cost, and
    the latency every request then waits at least with ``clients`` always asking."""
    cpu = report["rounds"][report["best_round"]]["cpu_ms_per_request"]
    cpu_ms = cpu["web"] + cpu["db"] + cpu["client"]
    most = 1000 * report["cores"] / cpu_ms if cpu_ms > 0 else float("inf")
    return {"cpu_ms_per_request": round(cpu_ms, 2), "max_rps": round(most, 1),
            "latency_floor_ms": round(1000 * report["clients"] / most, 1)}  # fmt: skip


def print_report(report: dict[str, Any]) -> None:
    best = report["rounds"][report["best_round"]]
    print(f"\nCPU: {report['cpu']} x {report['cores']} cores | gunicorn workers: "
          f"{report['workers']} | clients: {report['clients']} | lab: {report['lab']} | "
          f"answer cache: {report['response_cache'] or 'off'}")  # fmt: skip
    print(f"load average (1, 5, 15 min): start {report['loadavg_start']}, after baseline "
          f"{report['loadavg_baseline']}")  # fmt: skip
    for i, rnd in enumerate(report["rounds"]):
        cpu = rnd["cpu_ms_per_request"]
        print(f"round {i + 1}: {rnd['requests']} requests in {rnd['seconds']:.1f} s = "
              f"{rnd['throughput_rps']:.0f} req/s, {rnd['cache_hit_pct']} % answered from the "
              f"cache; CPU ms per request: gunicorn {cpu['web']}, "
              f"database {cpu['db']}, client {cpu['client']}; cores busy {rnd['cores_busy']} "
              f"of which other processes {rnd['cores_others']}, stolen "
              f"{rnd['cores_stolen']}; load average after {rnd['loadavg']}; busiest other "
              "processes alive at its end (cores): "
              + ("; ".join(f"{p['cores']} {p['command'][:60]}" for p in rnd["others"])
                 or "none"))  # fmt: skip
    print(f"\nround {report['best_round'] + 1} (best throughput), {report['clients']} clients, "
          f"times in ms. | base: p50 at 1 client, one request at a time "
          f"({report['baseline_per_endpoint']} per endpoint), with its CPU ms per request in "
          "gunicorn (web) and the database (db). kB: median response. queries: median(-max) per "
          f"request (+s: the streamed body's query is not counted); q@1/q@{PAGE}: a list's "
          f"queries for pages of 1 and {PAGE} rows; hits: answers from the cache")  # fmt: skip
    print(_table(best["endpoints"], report["baseline"], report["page_growth"]))
    cap = report["capacity"]
    print(f"\ncapacity: the mix cost {cap['cpu_ms_per_request']} CPU ms per request in that "
          "round (gunicorn, database, client), so "
          f"{report['cores']} cores serve at most {cap['max_rps']:.0f} req/s, and "
          f"{report['clients']} clients wait at least {cap['latency_floor_ms']:.0f} ms per "
          "request (Little's law), whichever endpoint they call")  # fmt: skip
    for clients, rnd in report["sweep"].items():
        rows = [(r["p95_ms"], name) for name, r in rnd["endpoints"].items()
                if r["kind"] in TARGET_KINDS]  # fmt: skip
        print(
            f"with {clients} clients: {rnd['throughput_rps']:.0f} req/s, lists and object "
            f"reads p95 {min(rows)[0]:.0f}-{max(rows)[0]:.0f} ms (worst {max(rows)[1]}): "
            f"{'MET' if rnd['target_met'] else 'NOT MET'} [load average {rnd['loadavg']}]"
        )
    ok, short = verdict(best["endpoints"])
    print(f"TARGET lists and object reads p95 < {TARGET_P95_MS:.0f} ms with no errors at "
          f"{report['clients']} clients: {'MET' if ok else 'NOT MET'}"
          + ("" if ok else f" ({len(short)} short: {', '.join(short)})")
          + f" [load average {best['loadavg']}]")  # fmt: skip


# --- Main -----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=32, help="concurrent clients")
    p.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    p.add_argument("--requests", type=int, default=60, help="per endpoint and round")
    p.add_argument("--baseline", type=int, default=20, help="per endpoint, one at a time")
    p.add_argument("--rounds", type=int, default=3, help="concurrent rounds (best tabled)")
    p.add_argument("--images", type=int, default=100, help="phantom images (make_demo_lab)")
    p.add_argument("--readers", type=int, default=4, help="readers, each reading every image")
    p.add_argument("--maps", type=int, default=40, help="reading saliency maps (and half as "
                   "many pooled per image)")  # fmt: skip
    p.add_argument("--versions", type=int, default=3, help="model versions, one evaluation each")
    p.add_argument("--eval-rows", type=int, default=120, help="rows per evaluation")
    p.add_argument("--jobs", type=int, default=10, help="queued training jobs besides")
    p.add_argument(
        "--sweep",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[],
        help="after the rounds, one round at each of these client counts: 4,8,16",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--database-url", default=os.environ.get(
        "LOADBENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432"),
        help="a PostgreSQL server: a scratch database is created on it and dropped")  # fmt: skip
    p.add_argument("--json", help="also write the report here")
    p.add_argument("--response-cache", default=os.environ.get(
        "LOADBENCH_CACHE_URL", "redis://127.0.0.1:6379/12"),
        help="Redis for Django's cache and the API's answer cache, as docker/compose.yaml "
             "has it; '' for none (every answer built afresh)")  # fmt: skip
    return p


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _django(work: Path, database_url: str) -> None:
    """Django over the scratch database and ``work``, migrated (before any settings import)."""
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(work),
        "MEDIA_ROOT": str(work / "media"), "STORAGE_CACHE_DIR": str(work / "cache"),
        "DATABASE_URL": database_url, "CELERY_BROKER_URL": "memory://", "DEBUG": "false",
        "SECRET_KEY": "loadbench-" + "x" * 50, "EVALUATE_NEW_VERSIONS": "false",
    })  # fmt: skip
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run_baseline(port: int, lab: Lab, reqs: list[Req], server_pid: int, db_name: str):
    """One request at a time, endpoint after endpoint, with the CPU each endpoint's requests
    cost gunicorn and the database (ms per request)."""
    results, cpu = [], {}
    for name in dict.fromkeys(r.endpoint for r in reqs):
        group = [r for r in reqs if r.endpoint == name]
        web0, db0 = our_cpu(server_pid, db_name)
        results += run_phase(port, lab.token, group, 1)[0]
        web1, db1 = our_cpu(server_pid, db_name)
        cpu[name] = (1000 * (web1 - web0) / len(group), 1000 * (db1 - db0) / len(group))
    return results, cpu


def run_round(port: int, lab: Lab, reqs: list[Req], clients: int, server_pid: int,
              db_name: str, order: list[str]) -> dict[str, Any]:  # fmt: skip
    before, own0, machine0 = _cpu_times(), time.process_time(), _machine()
    results, seconds = run_phase(port, lab.token, reqs, clients)
    after, own1, machine1 = _cpu_times(), time.process_time(), _machine()
    web = {server_pid, *_children(server_pid, after)}
    n = len(results)

    def used(pids) -> float:
        return sum(after[p][0] - before.get(p, (0.0,))[0] for p in pids if p in after)

    cpu = {"web": used(web), "db": used([p for p in after if db_name in after[p][1]]),
           "client": own1 - own0}  # fmt: skip
    busy, steal = (machine1[i] - machine0[i] for i in range(2))
    return {
        "requests": n, "seconds": round(seconds, 2), "throughput_rps": round(n / seconds, 1),
        "loadavg": _loadavg(),
        "cpu_ms_per_request": {k: round(1000 * v / n, 2) for k, v in cpu.items()},
        # Cores busy on average: the whole machine, the rest (other processes, short-lived
        # ones too) and the time the hypervisor gave to other machines.
        "cores_busy": round(busy / seconds, 2),
        "cores_others": round(max(0.0, busy - sum(cpu.values())) / seconds, 2),
        "cores_stolen": round(steal / seconds, 2),
        "others": other_busy(before, after, {os.getpid(), *web}, db_name, seconds),
        "endpoints": summarize(results, order),
        "cache_hit_pct": round(100 * sum(r.cache == "hit" for r in results) / max(n, 1), 1),
    }  # fmt: skip


def measure(args, lab: Lab, server_pid: int, port: int, db_name: str) -> dict[str, Any]:
    rng = random.Random(args.seed)
    order = [name for name, _kind, _path in endpoints(lab)]
    loadavg_start = _loadavg()
    # Warm-up, untimed: every worker imports what each view needs once.
    run_phase(port, lab.token, plan(lab, args.workers, rng, "warm", True), args.workers)
    page_growth = probe_page_growth(port, lab)
    base_results, cpu = run_baseline(port, lab, plan(lab, args.baseline, rng, "base", False),
                                     server_pid, db_name)  # fmt: skip
    baseline = summarize(base_results, order)
    for name, (web, db) in cpu.items():
        baseline[name].update(web_cpu_ms=round(web, 2), db_cpu_ms=round(db, 2))
    loadavg_baseline = _loadavg()
    rounds = [
        run_round(port, lab, plan(lab, args.requests, rng, f"r{i}", True), args.clients,
                  server_pid, db_name, order)
        for i in range(args.rounds)
    ]  # fmt: skip
    best = max(range(len(rounds)), key=lambda i: rounds[i]["throughput_rps"])
    sweep = {}
    for clients in args.sweep:
        rnd = run_round(port, lab, plan(lab, args.requests, rng, f"s{clients}", True), clients,
                        server_pid, db_name, order)  # fmt: skip
        rnd["target_met"], rnd["short"] = verdict(rnd["endpoints"])
        sweep[clients] = rnd
    report = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "workers": args.workers,
        "clients": args.clients, "lab": lab.counts, "requests_per_endpoint": args.requests,
        "baseline_per_endpoint": args.baseline, "loadavg_start": loadavg_start,
        "loadavg_baseline": loadavg_baseline, "page_growth": page_growth, "baseline": baseline,
        "rounds": rounds, "best_round": best, "target_p95_ms": TARGET_P95_MS, "sweep": sweep,
        "server_errors_in_baseline": sum(r.status.startswith("5") for r in base_results),
        "response_cache": args.response_cache,
    }  # fmt: skip
    report["target_met"], report["short"] = verdict(rounds[best]["endpoints"])
    report["capacity"] = capacity(report)
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    if args.images < 12:
        _parser().error("--images must be at least 12 (4 per class: the snapshot's split)")
    # Ctrl-C and kill both clean up, also where SIGINT came in ignored (a job started in the
    # background by a non-interactive shell, as CI scripts do).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    db_name = f"loadbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_url, database_url = f"{_server(args)}/postgres", f"{_server(args)}/{db_name}"
    work = Path(tempfile.mkdtemp(prefix="loadbench-"))
    server, created = None, False
    try:
        _admin(admin_url, f'CREATE DATABASE "{db_name}"')
        created = True
        started = time.perf_counter()
        _django(work, database_url)
        lab = load_lab(args)
        load_s = time.perf_counter() - started
        from django.db import connections

        connections.close_all()
        server, port = start_gunicorn(work, database_url, args.workers, args.response_cache)
        report = measure(args, lab, server.pid, port, db_name)
        report["lab_load_seconds"] = round(load_s, 1)
        print_report(report)
        errors = [line for line in (work / "gunicorn.log").read_text(errors="replace").splitlines()
                  if " ERROR " in line or "Traceback" in line or line.startswith(" ")]  # fmt: skip
        if errors:
            print("\ngunicorn's errors (last 40 lines):\n" + "\n".join(errors[-40:]))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        return report
    finally:
        if server is not None:
            stop_gunicorn(server)
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if created:
            _admin(admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        if args.response_cache:
            _drop_answers(args.response_cache, db_name)
        shutil.rmtree(work, ignore_errors=True)


def _drop_answers(url: str, db_name: str) -> None:
    """The cached answers and versions of the scratch database (they would expire anyway)."""
    import redis

    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        for key in client.scan_iter(match=f"*:{db_name}:*", count=500):
            client.delete(key)


def _server(args) -> str:
    """``--database-url`` without any database name."""
    return urlsplit(args.database_url)._replace(path="").geturl()


if __name__ == "__main__":
    main()
    sys.exit(0)
