"""The multi-process web server: granian running `qmtjq.wsgi:application` in N worker processes.

`manage.py serve` starts this as a child process (`python -m qmtjq.web ...`)
and stops it on Ctrl+C. It can also be run by itself behind a process manager:

    python -m qmtjq.web --host 127.0.0.1 --port 8000 --workers 4 --threads 8

Granian's main process owns the listening socket and supervises the workers
(a worker that dies is replaced). With `--stop-on-stdin-eof` it also stops
when its standard input closes, which the operating system does when the
parent (`serve`) ends in any way, so web workers never outlive `serve`.
"""

import argparse
import logging
import os
import sys
import threading

TARGET = "qmtjq.wsgi:application"
# Each web process learns its thread count from this variable (set here and by `serve`):
# the feed's long-poll lets at most that many less one wait (execution.remote.longpoll).
WEB_THREADS_ENV = "QMTJQ_WEB_THREADS"


def build_server(*, host: str, port: int, workers: int, threads: int, log_level: str):
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    return Granian(
        TARGET,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        websockets=False,
        log_level=LogLevels(log_level.lower()),
        respawn_failed_workers=True,
        workers_kill_timeout=10,
    )


def _stop_on_stdin_eof(server) -> None:
    # A raw descriptor, not sys.stdin: forked workers close sys.stdin, which
    # would wait forever for the buffer lock a reading thread holds.
    fd = os.dup(sys.stdin.fileno())

    def watch() -> None:
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        server.signal_handler_interrupt()  # the same graceful stop as Ctrl+C

    threading.Thread(target=watch, name="stdin-eof-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qmtjq.web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="web worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--stop-on-stdin-eof", action="store_true")
    args = parser.parse_args(argv)
    # When the terminal is gone (`serve | tee log`, then Ctrl+C kills tee too),
    # a shutdown log line has nowhere to go: drop it instead of printing a
    # "--- Logging error ---" traceback about the broken pipe.
    logging.raiseExceptions = False
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qmtjq.settings")
    os.environ[WEB_THREADS_ENV] = str(args.threads)  # the worker processes inherit it
    server = build_server(
        host=args.host, port=args.port, workers=args.workers, threads=args.threads, log_level=args.log_level
    )
    if args.stop_on_stdin_eof:
        _stop_on_stdin_eof(server)
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
