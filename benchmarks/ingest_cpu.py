"""Server work per upload, in process and single-threaded: CPU time, or instructions under callgrind.

    python benchmarks/ingest_cpu.py [--uploads 2000] [--lines 50] [--callgrind]
                                    [--peer DIR --peer-python PY]

`benchmarks/ingest.py` measures the real server under load, but on a shared
2-CPU machine its rates and CPU figures drift by tens of percent with the
machine's speed. This one calls each server's WSGI application directly
(no HTTP, no threads) with the same 50-line uploads as ingest.py, every one a
changed target, on a fresh SQLite database:

- qmtjq: `qmtjq.wsgi.application`, API key, migrated database, full history;
- with `--peer`: jq2qmt's Flask `app` (a checkout of the public repository,
  see benchmarks/jq2qmt_peer.py), simple API key, its own SQLite file.

It prints CPU ms per upload (`time.process_time`). With `--callgrind` it runs
each child under `valgrind --tool=callgrind`, collecting only inside the
measured loop (the loop runs inside `functools.reduce`, the toggle), and
prints instructions per upload: the same figure on every run, whatever else
the machine is doing (valgrind must be installed; a run takes minutes).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from uploads import UPDATE_PATH, upload_body

REPO = Path(__file__).resolve().parent.parent


def wsgi_post(app, body: bytes, api_key: str) -> None:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": UPDATE_PATH,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_API_KEY": api_key,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    status = []
    answer = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    if not status or not status[0].startswith("200"):
        raise SystemExit(f"upload failed: {status} {answer[:300]!r}")


def measure(app, api_key: str, uploads: int, lines: int, strategy: str, callgrind: bool) -> None:
    for warm in range(20):  # imports, caches, the strategy row
        wsgi_post(app, upload_body(warm, lines, strategy), api_key)
    bodies = [upload_body(20 + n, lines, strategy) for n in range(uploads)]  # client work, not measured
    started = time.process_time()
    # Callgrind collects only inside functools.reduce (--toggle-collect): exactly the measured uploads.
    functools.reduce(lambda _, body: wsgi_post(app, body, api_key), bodies, None)
    spent = time.process_time() - started
    if not callgrind:
        print(json.dumps({"cpu_ms": spent * 1000 / uploads}))


def child_qmtjq(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="qmtjq-cpu-"))
    os.environ.update(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        SECRET_KEY="ingest-cpu-benchmark-secret-key-not-for-production",
        DJANGO_SETTINGS_MODULE="qmtjq.settings",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
        DEBUG="false",
    )
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from positions.services import api_client_create
    from qmtjq.wsgi import application

    _client, api_key = api_client_create(name="cpu bench", rate_limit_per_minute=0)
    try:
        measure(application, api_key, args.uploads, args.lines, "cpu-bench", args.callgrind)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def child_peer(args) -> None:
    from jq2qmt_peer import PEER_API_KEY, PeerSetup

    peer = PeerSetup(Path(args.peer), sys.executable, 1)
    sys.path[:0] = [str(peer.tmp), str(peer.src)]
    os.chdir(peer.src)
    sys.stdout = io.StringIO()  # jq2qmt prints a line per upload; it went to a log file in ingest.py
    try:
        from app import app

        measure(app, PEER_API_KEY, args.uploads, args.lines, "cpu-bench", args.callgrind)
    finally:
        printed, sys.stdout = sys.stdout.getvalue(), sys.__stdout__
        for line in printed.splitlines():
            if line.startswith("{"):
                print(line)
        peer.drop()


def run_child(name: str, python: str, args) -> dict:
    argv = [python, str(Path(__file__).resolve()), "--child", name, "--uploads", str(args.uploads)]
    argv += ["--lines", str(args.lines)] + (["--peer", args.peer] if args.peer else [])
    if args.callgrind:
        out = Path(tempfile.mkstemp(prefix="callgrind-", suffix=".out")[1])
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=functools_reduce",
            f"--callgrind-out-file={out}",
            *argv,
            "--callgrind",
        ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    if args.callgrind:
        collected = re.search(r"Collected : (\d+)", done.stderr)
        out.unlink(missing_ok=True)
        if not collected:
            raise SystemExit(f"{name}: no callgrind total in its output:\n{done.stderr[-2000:]}")
        return {"instructions_m": int(collected.group(1)) / args.uploads / 1e6}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=None, help="measured uploads (default 2000, 200 with --callgrind)")
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead")
    parser.add_argument("--peer", metavar="DIR", help="a jq2qmt checkout to measure the same way")
    parser.add_argument("--peer-python", default=sys.executable, help="interpreter with jq2qmt's requirements")
    parser.add_argument("--child", choices=["qmtjq", "peer"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.uploads is None:
        args.uploads = 200 if args.callgrind else 2000
    if args.child == "qmtjq":
        child_qmtjq(args)
        return 0
    if args.child == "peer":
        child_peer(args)
        return 0
    if args.callgrind and not shutil.which("valgrind"):
        parser.error("--callgrind needs valgrind (Debian: apt-get install valgrind)")
    unit = "M instructions/upload" if args.callgrind else "CPU ms/upload"
    key = "instructions_m" if args.callgrind else "cpu_ms"
    print(f"{args.uploads} uploads of {args.lines} lines, in process, one thread, SQLite; {unit}")
    figures = {"qmtjq": run_child("qmtjq", sys.executable, args)[key]}
    if args.peer:
        figures["jq2qmt"] = run_child("peer", args.peer_python, args)[key]
    for name, value in figures.items():
        print(f"   {name:8s} {value:6.2f} {unit}")
    if "jq2qmt" in figures:
        print(f"   qmtjq does {figures['qmtjq'] / figures['jq2qmt']:.2f}x jq2qmt's work per upload (and keeps history)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
