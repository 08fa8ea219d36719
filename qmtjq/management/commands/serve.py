"""`python manage.py serve`: run the whole server side with one command.

On every start: apply migrations (which also creates the database cache
table), collect static files, create the first admin user if there is no
superuser, create/update the django-q2 schedules; then serve the site and run
the jobs (`--jobs cluster`: a `manage.py qcluster` child process; `--jobs
inprocess`: a thread in this process, the only choice on Windows; `--jobs off`).

The site is served by granian in `--web-workers` processes (a `python -m
qmtjq.web` child, default on Linux/macOS) or by waitress in this process
(`--web-server waitress`, one process, default on Windows, where granian
cannot run more than one worker).

Ctrl+C (SIGINT), SIGTERM, SIGHUP (POSIX) and Ctrl+Break (Windows) stop the
web server, then the jobs, and exit with status 0. A second signal during
shutdown kills the cluster child instead of waiting for it. Output that can
no longer be written (`serve | tee log` after Ctrl+C killed tee, a closed
terminal) is dropped rather than interrupting the shutdown, and the cluster
child stops by itself when `serve` dies without shutting down (it watches a
pipe that the operating system closes when `serve` ends).

The cluster child is `qmtjq/serve_cluster_child.py`; what serve prints at
start-up is `qmtjq/serve_console.py`.
"""

import logging
import os
import signal

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.db import connection

from qmtjq import serve_console
from qmtjq.console import TolerantStream, silence_broken_streams
from qmtjq.jobs import InProcessJobRunner
from qmtjq.schedules import schedules_ensure
from qmtjq.serve_cluster_child import CLUSTER_STOP_TIMEOUT, ClusterChild
from qmtjq.services import ADMIN_PASSWORD_ENV, admin_user_ensure
from qmtjq.web import WEB_THREADS_ENV
from qmtjq.web_process import GranianProcess, WebServerFailed

logger = logging.getLogger(__name__)

IS_WINDOWS = os.name == "nt"
JOBS_CLUSTER, JOBS_INPROCESS, JOBS_OFF = "cluster", "inprocess", "off"
JOB_LOGGERS = ("django-q", "qmtjq.jobs")  # routine per-task lines; kept at Q_LOG_LEVEL
WEB_GRANIAN, WEB_WAITRESS = "granian", "waitress"


def default_threads(*, vendor: str, web_server: str) -> int:
    """Threads per web process when --threads is not given.

    SQLite writes one at a time: a granian process with 2 threads served more uploads
    than one with 8, at a lower p99 (`benchmarks/ingest.py --threads 8,2`; the README's
    "Scaling" has the figures). waitress is a single process: 4, so one slow page never
    holds half the server. MySQL/MariaDB calls wait on the network: there 8 threads
    served about twice the uploads of one.
    """
    if vendor == "sqlite":
        return 2 if web_server == WEB_GRANIAN else 4
    return 8


class Command(BaseCommand):
    help = (
        "Migrate, collect static files, ensure the admin user and job schedules, then serve the site "
        "(waitress) and run the django-q2 jobs until Ctrl+C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help=(
                "Threads per web process (default: 2 on SQLite with granian, 4 on SQLite with waitress, "
                "8 on MySQL/MariaDB). A trading PC's long-poll holds a thread; one always stays free."
            ),
        )
        parser.add_argument(
            "--web-workers",
            type=int,
            default=None,
            help=(
                "Web server processes (default: the number of CPUs with granian, 1 with waitress). "
                "Rate limits, replay protection and caches are shared through the database or Redis."
            ),
        )
        parser.add_argument(
            "--web-server",
            choices=[WEB_GRANIAN, WEB_WAITRESS],
            default=WEB_WAITRESS if IS_WINDOWS else WEB_GRANIAN,
            help=(
                "'granian' = several web processes (default on Linux/macOS); 'waitress' = one process, "
                "threads only (default on Windows, where granian runs a single worker)."
            ),
        )
        parser.add_argument(
            "--jobs",
            choices=[JOBS_CLUSTER, JOBS_INPROCESS, JOBS_OFF],
            default=JOBS_INPROCESS if IS_WINDOWS else JOBS_CLUSTER,
            help=(
                "How scheduled jobs run: 'cluster' = django-q2 qcluster child process (default on "
                "Linux/macOS), 'inprocess' = a thread in this process (default and only choice on "
                "Windows), 'off' = no jobs here."
            ),
        )

        parser.add_argument(
            "--jobs-log-level",
            default=None,
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help=(
                "Log level of django-q2 and the job runner (default: the Q_LOG_LEVEL setting, WARNING). "
                "INFO shows every scheduled task as it runs."
            ),
        )
        parser.add_argument(
            "--no-workers",
            dest="workers",
            action="store_false",
            help="Do not run the paper-account workers in this process.",
        )

    # --- main --------------------------------------------------------------
    def handle(
        self,
        *args,
        host,
        port,
        threads,
        web_workers,
        web_server,
        jobs,
        workers,
        jobs_log_level,
        verbosity,
        **options,
    ):
        if jobs == JOBS_CLUSTER and IS_WINDOWS:
            raise CommandError(
                "--jobs cluster is not supported on Windows (django-q2's cluster needs fork and SIGALRM); "
                "use --jobs inprocess."
            )
        if threads is None:
            threads = default_threads(vendor=connection.vendor, web_server=web_server)
        if threads < 1:
            raise CommandError("--threads must be at least 1")
        os.environ[WEB_THREADS_ENV] = str(threads)  # waitress serves in this process; granian passes it on
        web_workers = self._web_workers(web_server=web_server, web_workers=web_workers)
        self.stdout = OutputWrapper(TolerantStream(self.stdout._out))
        self.stderr = OutputWrapper(TolerantStream(self.stderr._out))
        self.stderr.style_func = self.style.ERROR
        self._jobs_log_level(jobs_log_level)
        self._stopping = False
        self._force_stop = False
        self._admin_notice = ""
        self._admin_password_shown = False
        self._cluster: ClusterChild | None = None
        self._runner: InProcessJobRunner | None = None
        self._workers = None
        server = None
        failed = ""
        previous_handlers = self._install_signal_handlers()
        try:
            self._prepare(verbosity=verbosity)
            if web_server == WEB_GRANIAN:
                server = GranianProcess(host=host, port=port, workers=web_workers, threads=threads)
                server.start()
            else:
                server = self._create_server(host=host, port=port, threads=threads)
            self._print_banner(server=server, host=host, threads=threads, jobs=jobs, web_workers=web_workers)
            self._start_jobs(jobs)
            if workers:
                self._start_workers()
            if isinstance(server, GranianProcess):
                server.wait_ready()  # the jobs start meanwhile
            self._print_ready(server=server, host=host)
            self._start_update_check()
            code = server.run()  # returns after Ctrl+C / SIGTERM (waitress catches the interrupt)
            if web_server == WEB_GRANIAN and not self._stopping:
                failed = f"The web server stopped by itself (exit code {code}); stopping everything."
        except KeyboardInterrupt:
            pass
        except WebServerFailed as exc:
            failed = str(exc)
        finally:
            self._stopping = True
            if server is not None:
                self.stdout.write("Stopping… / 正在停止…")
                self.stdout.flush()
            self._shutdown(server)
            self._restore_signal_handlers(previous_handlers)
        self.stdout.write("Stopped. / 已停止。")
        self.stdout.flush()
        silence_broken_streams(self.stdout._out, self.stderr._out)
        if failed:
            raise CommandError(failed)

    @staticmethod
    def _web_workers(*, web_server: str, web_workers: int | None) -> int:
        if web_server == WEB_WAITRESS:
            if web_workers not in (None, 1):
                raise CommandError(
                    "--web-server waitress runs one process; use --web-server granian for more"
                )
            return 1
        if web_workers is None:
            web_workers = os.cpu_count() or 1
        if web_workers < 1:
            raise CommandError("--web-workers must be at least 1")
        if IS_WINDOWS and web_workers > 1:  # pragma: no cover - Windows only
            logger.warning(
                "granian runs a single web worker on Windows; --web-workers %d becomes 1", web_workers
            )
            web_workers = 1
        return web_workers

    @staticmethod
    def _jobs_log_level(level: str | None) -> None:
        """django-q2 and the in-process runner log every task at INFO; keep them quiet unless asked."""
        level = level or settings.Q_LOG_LEVEL
        os.environ["Q_LOG_LEVEL"] = level  # the cluster child reads it through settings
        for name in JOB_LOGGERS:
            logging.getLogger(name).setLevel(level)

    def _prepare(self, *, verbosity: int) -> None:
        call_command("migrate", interactive=False, verbosity=verbosity)
        call_command("collectstatic", interactive=False, verbosity=0)
        user, password = admin_user_ensure()
        if user is not None:
            name = user.get_username()
            # Shown in the frame at the end of start-up, where it does not scroll away.
            if password:
                self._admin_password_shown = True
                self._admin_notice = (
                    f"已创建管理员账号 {name}，随机密码：{password}\n"
                    "（只显示这一次，请立即保存或登录后修改）\n"
                    f"Created admin user {name} with random password: {password}\n"
                    "(shown only this once; save it now or change it after logging in)"
                )
            else:
                self._admin_notice = f"Created admin user {name} (password from {ADMIN_PASSWORD_ENV})."
        for name, outcome in schedules_ensure().items():
            if outcome != "unchanged":
                self.stdout.write(f"Schedule {outcome}: {name}")

    def _create_server(self, *, host: str, port: int, threads: int):
        from waitress.server import create_server

        from qmtjq.wsgi import application

        try:
            return create_server(application, host=host, port=port, threads=threads)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}")

    def _print_banner(self, *, server, host: str, threads: int, jobs: str, web_workers: int) -> None:
        lines = serve_console.banner_lines(server=server, host=host, threads=threads, jobs=jobs, web_workers=web_workers)
        for line in lines:
            self.stdout.write(line)
        self.stdout.flush()

    def _print_ready(self, *, server, host: str) -> None:
        frame = serve_console.ready_frame(server=server, host=host, admin_notice=self._admin_notice)
        self.stdout.write(frame, self.style.WARNING if self._admin_password_shown else None)
        self.stdout.flush()

    def _start_update_check(self) -> None:
        """An optional, daily look for a newer release (UPDATE_CHECK_URL); it only ever prints a notice."""
        from qmtjq import updates

        if not updates.update_check_enabled():
            return

        def say(notice) -> None:
            self.stdout.write(serve_console.update_frame(notice), self.style.WARNING)
            self.stdout.flush()

        self._update_checker = updates.UpdateChecker(on_newer=say)
        self._update_checker.start()

    # --- jobs ----------------------------------------------------------------
    def _start_jobs(self, jobs: str) -> None:
        if jobs == JOBS_CLUSTER:
            self._cluster_start()
        elif jobs == JOBS_INPROCESS:
            self._runner = InProcessJobRunner()
            self._runner.start()
            self.stdout.write("Jobs run in this process (in-process runner started).")
        else:
            self.stdout.write("Jobs are off: schedules will not run from this process.")

    def _start_workers(self) -> None:
        """Start one worker thread per enabled paper account (live accounts run `qmt_worker` on the trading PC)."""
        from execution.paper_workers import PaperWorkerPool

        self._workers = PaperWorkerPool(say=self.stdout.write)
        started = self._workers.start()
        if started:
            self.stdout.write(f"Paper workers: {', '.join(started)}")

    def _cluster_start(self) -> None:
        self._cluster = ClusterChild(say=self.stdout.write, warn=self.stderr.write, stopping=lambda: self._stopping)
        self._cluster.start()

    def _cluster_stop(self) -> None:
        if self._cluster is not None:
            self._cluster.stop(force=lambda: self._force_stop)

    # --- shutdown ------------------------------------------------------------
    def _shutdown(self, server) -> None:
        checker = getattr(self, "_update_checker", None)
        if checker is not None:
            checker.stop()
        if isinstance(server, GranianProcess):
            server.stop(force=lambda: self._force_stop)
        elif server is not None:
            try:
                server.task_dispatcher.shutdown(timeout=5)
            except Exception:  # already shut down by waitress
                logger.debug("waitress task dispatcher shutdown", exc_info=True)
            try:
                server.close()
            except Exception:
                logger.debug("waitress close", exc_info=True)
        if self._workers is not None:
            self._workers.stop(timeout=CLUSTER_STOP_TIMEOUT)
        if self._runner is not None:
            self._runner.stop(timeout=CLUSTER_STOP_TIMEOUT)
        self._cluster_stop()

    def _on_signal(self, signum, frame):
        if self._stopping:
            self._force_stop = True  # second Ctrl+C: don't wait for the cluster any longer
            return
        raise KeyboardInterrupt

    def _install_signal_handlers(self) -> dict:
        names = ["SIGINT", "SIGTERM", "SIGBREAK"]  # SIGBREAK: Ctrl+Break on Windows
        if not IS_WINDOWS:
            names.append("SIGHUP")  # terminal closed: stop the cluster child too
        previous = {}
        for name in names:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                previous[signum] = signal.signal(signum, self._on_signal)
            except (OSError, ValueError):  # not the main thread, or not settable here
                pass
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for signum, handler in previous.items():
            try:
                signal.signal(signum, handler)
            except (OSError, ValueError, TypeError):
                pass
