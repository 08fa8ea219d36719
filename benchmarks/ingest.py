"""Upload benchmark: start the real server and hammer /api/v1/positions/update.

    python benchmarks/ingest.py [--web-workers 1,2] [--peer DIR --peer-python PY] [--db sqlite|mysql|both]
                                [--uploads N] [--concurrency 16] [--lines 50] [--mode api_key|rsa_v2|both]
                                [--server serve|waitress] [--threads 2,8] [--peer-threads 8]
                                [--server-env KEY=VALUE]

For each database and each web-process count it creates a fresh, migrated
database, one API client per client thread, starts `manage.py serve
--web-workers N --jobs off` (or, with `--server waitress`, one waitress
process as before `serve --web-workers` existed) and runs `--uploads` uploads
from `--concurrency` closed-loop clients (each sends its next upload when the
previous one is answered). Every upload changes the client's target, so every
one really writes a snapshot. Latency is timed around the HTTP call only.
After each qmtjq run it counts what the database kept: a snapshot, its lines
and an Upload row for every answered upload.

With `--peer DIR` (a checkout of the public jq2qmt repository) it first runs
jq2qmt on SQLite under waitress with the same load and prints the ratio of
uploads/s (see benchmarks/jq2qmt_peer.py).

Besides uploads/s, p50/p99/max latency and errors it reports the server's CPU
time per upload (Linux /proc: the server process and all its children, i.e.
every web worker), which is what bounds throughput.

Exit status is non-zero when any qmtjq upload failed (a non-200 answer or a
connection error) or the history check found rows missing. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench_server import REPO, MysqlDb, Server, SqliteDb, free_port, keep_or_drop_log, manage, server_env
from ingest_load import RunResult, Worker, cache_private_key_parsing, load_client, run_mode
from ingest_report import TARGET_CPU_MS, TARGET_P99_MS, TARGET_RATIO, print_table
from uploads import CODES

sys.path.insert(0, str(REPO))

from positions.tokens import key_pair_generate  # noqa: E402  (needs REPO on sys.path)

INFO_PATH = "/api/v1/auth/info"
MODES = ("api_key", "rsa_v2")
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/qmtjq_bench"

# Run in a subprocess with the benchmark's DATABASE_URL: one API client per
# worker, the --rate-limit per minute (default 0: unlimited), RSA public key
# attached so both modes work.
CLIENTS_SCRIPT = """
import json, sys
import django
django.setup()
from positions.services import api_client_create
out = []
for spec in json.load(sys.stdin):
    client, api_key = api_client_create(
        name=spec["name"], public_key_pem=spec["public_key"], rate_limit_per_minute=spec["rate_limit"]
    )
    out.append({"client_id": client.client_id, "api_key": api_key})
print(json.dumps(out))
"""

# Run after a qmtjq run with the same DATABASE_URL: what the database kept.
HISTORY_SCRIPT = """
import json
import django
django.setup()
from positions.models import TargetLine, TargetSnapshot, Upload
print(json.dumps({
    "snapshots": TargetSnapshot.objects.count(),
    "lines": TargetLine.objects.count(),
    "uploads": Upload.objects.count(),
}))
"""


def qmtjq_argv(args, web_workers: int, threads: int, port: int) -> list[str]:
    if args.server == "waitress":
        if web_workers != 1:
            raise SystemExit("--server waitress runs one process: use --web-workers 1")
        return [
            sys.executable,
            "-m",
            "waitress",
            f"--listen=127.0.0.1:{port}",
            f"--threads={threads or 4}",  # 0: waitress's own default
            args.app,
        ]
    return [
        sys.executable,
        "manage.py",
        "serve",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--web-workers={web_workers}",
        *([f"--threads={threads}"] if threads else []),  # 0: serve's own default for the database
        "--jobs=off",
        "--no-workers",
    ]


def load_runs(label: str, server: Server, workers: list[Worker], args, modes) -> tuple[list[RunResult], int]:
    """The measured runs, and how many uploads (warm-up included) should each have written a new snapshot."""
    # Warm-up, not measured: creates each worker's strategy and loads code paths in every process.
    options = {"client_processes": max(1, args.client_processes), "client": args.client}
    warm = run_mode(label, "api_key", server.base, workers, len(workers) * 4, args.lines, server, **options)
    if warm.errors:
        raise RuntimeError(f"{label}: warm-up uploads failed: " + "; ".join(warm.first_errors))
    results = []
    for mode in modes:
        result = run_mode(label, mode, server.base, workers, args.uploads, args.lines, server, **options)
        print(
            f"   {label} {mode:8s} {result.uploads} uploads in {result.seconds:.1f} s, {result.errors} errors"
            + (f", {result.unchanged} unexpectedly unchanged" if result.unchanged else "")
            + (f", token_sign {result.sign_ms:.1f} ms/upload (client)" if result.sign_ms else "")
        )
        for error in result.first_errors:
            print(f"      {error}")
        results.append(result)
    if server.process.poll() is not None:
        raise RuntimeError(f"{label}: server died:\n{server.log_tail()}")
    written = sum(r.uploads - r.errors - r.unchanged for r in (warm, *results))
    return results, written


def check_history(label: str, env: dict[str, str], written: int, lines: int) -> None:
    """Full history kept: one snapshot with all its lines and one Upload row per answered upload."""
    kept = json.loads(manage(env, "-c", HISTORY_SCRIPT).strip().splitlines()[-1])
    expected = {"snapshots": written, "lines": written * lines, "uploads": written}
    missing = {key: (kept[key], want) for key, want in expected.items() if kept[key] < want}
    if missing:
        detail = ", ".join(f"{key} {got} of {want}" for key, (got, want) in missing.items())
        raise RuntimeError(f"{label}: history not kept: {detail}")
    print(
        f"   {label} history kept: {kept['snapshots']} snapshots, {kept['lines']} lines, {kept['uploads']} uploads"
    )


def bench_database(
    database, args, keys: list[tuple[bytes, bytes]], extra_env: dict[str, str], web_workers: int, threads: int
) -> list[RunResult]:
    label = f"qmtjq {database.name} {web_workers}p" + (
        (f" {threads}t" if threads else " dflt") if len(args.threads) > 1 else ""
    )
    print(f"\n== {label}: fresh database")
    database.create()
    server = None
    try:
        env = server_env(database.url, extra_env)
        manage(env, "manage.py", "migrate", "--noinput")
        specs = [
            {"name": f"bench worker {i}", "public_key": public.decode("ascii"), "rate_limit": args.rate_limit}
            for i, (_, public) in enumerate(keys)
        ]
        output = manage(env, "-c", CLIENTS_SCRIPT, stdin=json.dumps(specs))
        created = json.loads(output.strip().splitlines()[-1])
        workers = [
            Worker(
                i,
                c["client_id"],
                c["api_key"],
                keys[i][0],
                f"bench-{database.name}-{i:02d}",
                load_client(args.client),
            )
            for i, c in enumerate(created)
        ]
        log_path = Path(tempfile.mkstemp(prefix=f"qmtjq-bench-{database.name}-", suffix=".log")[1])
        port = free_port()
        server = Server(
            argv=qmtjq_argv(args, web_workers, threads, port), env=env, cwd=REPO, log_path=log_path, port=port
        )
        server.wait_ready(INFO_PATH)
        print(
            f"   {args.server} on {server.base}, {web_workers} web process(es) x "
            f"{threads or 'the default'} threads, log {log_path}"
        )
        results, written = load_runs(label, server, workers, args, args.modes)
        check_history(label, env, written, args.lines)
        return results
    finally:
        if server is not None:
            server.stop()
            keep_or_drop_log(server, label)
        if not args.keep:
            database.drop()


def bench_peer(args, keys) -> list[RunResult]:
    from jq2qmt_peer import PEER_API_KEY, PeerSetup

    label = "jq2qmt sqlite 1p"
    print(f"\n== {label}: {args.peer} under waitress (threads={args.peer_threads}), fresh SQLite")
    peer = PeerSetup(Path(args.peer), args.peer_python, args.peer_threads)
    server = None
    try:
        port = free_port()
        log_path = Path(tempfile.mkstemp(prefix="jq2qmt-bench-", suffix=".log")[1])
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
        server = Server(argv=peer.argv(port), env=peer.env(env), cwd=peer.src, log_path=log_path, port=port)
        server.wait_ready("/api/v1/auth/info")
        workers = [
            Worker(i, f"peer-{i}", PEER_API_KEY, keys[i][0], f"bench-peer-{i:02d}", load_client(args.client))
            for i in range(len(keys))
        ]
        return load_runs(label, server, workers, args, ("api_key",))[0]
    finally:
        if server is not None:
            server.stop()
            keep_or_drop_log(server, label)
        peer.drop()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _counts(text: str, what: str, minimum: int = 1) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of {what} counts, e.g. 1,2") from None
    if not counts or min(counts) < minimum:
        raise argparse.ArgumentTypeError(f"{what} counts must be at least {minimum}")
    return counts


def _web_workers(text: str) -> list[int]:
    return _counts(text, "process")


def _threads(text: str) -> list[int]:
    return _counts(text, "thread", minimum=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "mysql", "both"], default="sqlite")
    parser.add_argument("--uploads", type=int, default=2000, help="uploads per run (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads, one API client each")
    parser.add_argument("--lines", type=int, default=50, help="positions per upload (default 50)")
    parser.add_argument(
        "--mode", choices=[*MODES, "both"], default="api_key", help="auth modes to run (default api_key)"
    )
    parser.add_argument(
        "--web-workers",
        type=_web_workers,
        default=[1, os.cpu_count() or 1],
        help="web processes to run qmtjq with, comma-separated (default: 1,<CPU count>)",
    )
    parser.add_argument(
        "--server",
        choices=["serve", "waitress"],
        default="serve",
        help="'serve' = manage.py serve --web-workers N (the real thing); "
        "'waitress' = waitress-serve in one process (the server before serve --web-workers)",
    )
    parser.add_argument(
        "--client",
        choices=["connect", "keepalive", "requests"],
        default="connect",
        help="HTTP client of the load threads (http.client, prebuilt bytes): 'connect' (default) = a new "
        "connection per upload, as jq2qmt's client (requests.post) and a reverse proxy without upstream "
        "keep-alive send; 'keepalive' = one connection per thread for the whole run (granian's processes "
        "split the 16 connections at random); 'requests' = a requests.Session (the first figures)",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="processes the closed-loop clients are spread over (default 1: all threads in this process; "
        "its GIL may delay reading answers that already arrived, counted as latency)",
    )
    parser.add_argument(
        "--threads",
        type=_threads,
        default=[0],
        help="threads per web process, or a comma-separated list run side by side in each round "
        "(default: serve's own, 2 on SQLite and 8 on MySQL with granian; 0 in a list = that default)",
    )
    parser.add_argument(
        "--peer-threads",
        type=int,
        default=8,
        help="waitress threads of the jq2qmt peer (default 8)",
    )
    parser.add_argument("--peer", metavar="DIR", help="a jq2qmt checkout: run it under the same load")
    parser.add_argument(
        "--peer-python",
        default=sys.executable,
        help="interpreter with jq2qmt's requirements and waitress (default: this one)",
    )
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("BENCH_MYSQL_URL", DEFAULT_MYSQL_URL),
        help=f"MariaDB database to drop and recreate (default {DEFAULT_MYSQL_URL})",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server, e.g. CONN_MAX_AGE=60 (repeatable)",
    )
    parser.add_argument(
        "--app",
        default="qmtjq.wsgi:application",
        help="WSGI app for --server waitress, to compare an experimental variant (add its directory to "
        "the server's PYTHONPATH with --server-env)",
    )
    parser.add_argument(
        "--sign-uncached",
        action="store_true",
        help="let token_sign parse the private key PEM on every call (~50 ms of client CPU "
        "holding the GIL; makes rsa_v2 measure the client, not the server)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of interleaved runs (jq2qmt, then qmtjq with each process count); with more than one, "
        "medians and the per-round ratios are printed at the end",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="each API client's rate limit per minute (default 0: unlimited, nothing counted); "
        "a limit no client reaches, e.g. 1000000, measures what counting costs",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases afterwards")
    args = parser.parse_args()
    if not 1 <= args.lines <= len(CODES):
        parser.error(f"--lines must be 1-{len(CODES)}")
    if args.uploads < 1 or args.concurrency < 1 or args.repeat < 1:
        parser.error("--uploads, --concurrency and --repeat must be at least 1")
    if args.server == "waitress":
        args.web_workers = [1]
    args.modes = MODES if args.mode == "both" else (args.mode,)
    extra_env = dict(item.split("=", 1) for item in args.server_env)

    # Make SIGTERM behave like Ctrl+C so the server subprocess is stopped either way.
    signal.signal(signal.SIGTERM, _interrupt)

    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; client and server share these CPUs"
    )
    print(
        f"load: {args.uploads} uploads per run, {args.concurrency} closed-loop clients ({args.client}, {args.client_processes} processes), "
        f"{args.lines} lines per upload, "
        f"{','.join(str(t) if t else 'default' for t in args.threads)} threads per web process, "
        f"qmtjq via {args.server} with {args.web_workers} web process(es)"
        + (f", server env {extra_env}" if extra_env else "")
    )
    print(
        f"aims: <= {TARGET_CPU_MS:.0f} ms server CPU per upload, p99 <= {TARGET_P99_MS:.0f} ms, "
        f">= {TARGET_RATIO:.1f}x jq2qmt's uploads/s, 0 errors"
    )

    started = time.perf_counter()
    keys = [key_pair_generate() for _ in range(args.concurrency)]
    print(f"generated {len(keys)} RSA key pairs in {time.perf_counter() - started:.1f} s")
    if not args.sign_uncached:
        cache_private_key_parsing([private for private, _ in keys])

    databases = []
    if args.db in ("sqlite", "both"):
        databases.append(SqliteDb)
    if args.db in ("mysql", "both"):
        databases.append(lambda: MysqlDb(args.mysql_url))

    results: list[RunResult] = []
    try:
        # Rounds interleave the servers (jq2qmt, then qmtjq with each process
        # count): the machine's speed drifts by tens of percent over minutes,
        # so each ratio compares runs made next to each other.
        for round_number in range(1, args.repeat + 1):
            if args.repeat > 1:
                print(f"\n#### round {round_number} of {args.repeat}")
            batch: list[RunResult] = []
            if args.peer:
                batch += bench_peer(args, keys)
            for make_database in databases:
                for web_workers in args.web_workers:
                    for threads in args.threads:
                        batch += bench_database(make_database(), args, keys, extra_env, web_workers, threads)
            for result in batch:
                result.round = round_number
            results += batch
    except KeyboardInterrupt:
        print("\ninterrupted; server stopped")
        print_table(results)
        return 130
    except RuntimeError as exc:
        print(f"\nFAILED: {exc}")
        print_table(results)
        return 2
    print_table(results)
    failed = sum(r.errors for r in results if r.db.startswith("qmtjq"))
    if failed:
        print(f"\n{failed} uploads failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
