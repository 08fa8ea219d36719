"""`python manage.py serve`: run the whole server side with one command.

On every start: apply migrations, collect static files, create the first
admin user if there is no superuser, create/update the django-q2 schedules;
then serve the site with waitress in the foreground and run the jobs
(`--jobs cluster`: a `manage.py qcluster` child process; `--jobs inprocess`:
a thread in this process, the only choice on Windows; `--jobs off`).

Ctrl+C (SIGINT), SIGTERM, SIGHUP (POSIX) and Ctrl+Break (Windows) stop the
web server, then the jobs, and exit with status 0. A second signal during
shutdown kills the cluster child instead of waiting for it.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from qmtjq.jobs import InProcessJobRunner
from qmtjq.schedules import schedules_ensure
from qmtjq.services import ADMIN_PASSWORD_ENV, admin_user_ensure

logger = logging.getLogger(__name__)

IS_WINDOWS = os.name == "nt"
JOBS_CLUSTER, JOBS_INPROCESS, JOBS_OFF = "cluster", "inprocess", "off"
CLUSTER_STOP_TIMEOUT = 20.0  # django-q2 finishes running tasks first; jobs are idempotent if killed


class Command(BaseCommand):
    help = (
        "Migrate, collect static files, ensure the admin user and job schedules, then serve the site "
        "(waitress) and run the django-q2 jobs until Ctrl+C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
        parser.add_argument("--threads", type=int, default=8, help="Web server worker threads (default 8).")
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
            "--no-workers",
            dest="workers",
            action="store_false",
            help="Do not run the paper-account workers in this process.",
        )

    # --- main --------------------------------------------------------------
    def handle(self, *args, host, port, threads, jobs, workers, verbosity, **options):
        if jobs == JOBS_CLUSTER and IS_WINDOWS:
            raise CommandError(
                "--jobs cluster is not supported on Windows (django-q2's cluster needs fork and SIGALRM); "
                "use --jobs inprocess."
            )
        if threads < 1:
            raise CommandError("--threads must be at least 1")
        self._stopping = False
        self._force_stop = False
        self._cluster: subprocess.Popen | None = None
        self._runner: InProcessJobRunner | None = None
        self._workers = None
        server = None
        previous_handlers = self._install_signal_handlers()
        try:
            self._prepare(verbosity=verbosity)
            server = self._create_server(host=host, port=port, threads=threads)
            self._print_banner(host=host, port=port, threads=threads, jobs=jobs)
            self._start_jobs(jobs)
            if workers:
                self._start_workers()
            server.run()  # returns after Ctrl+C / SIGTERM (waitress catches the interrupt)
        except KeyboardInterrupt:
            pass
        finally:
            self._stopping = True
            if server is not None:
                self.stdout.write("Stopping… / 正在停止…")
                self.stdout.flush()
            self._shutdown(server)
            self._restore_signal_handlers(previous_handlers)
        self.stdout.write("Stopped. / 已停止。")
        self.stdout.flush()

    def _prepare(self, *, verbosity: int) -> None:
        call_command("migrate", interactive=False, verbosity=verbosity)
        call_command("collectstatic", interactive=False, verbosity=0)
        user, password = admin_user_ensure()
        if user is not None:
            name = user.get_username()
            if password:
                self.stdout.write(
                    self.style.WARNING(
                        f"已创建管理员账号 {name}，随机密码：{password}  （只显示这一次，请立即保存或登录后修改）\n"
                        f"Created admin user {name} with random password: {password}  "
                        "(shown only this once; save it now or change it after logging in)"
                    )
                )
            else:
                self.stdout.write(f"Created admin user {name} (password from {ADMIN_PASSWORD_ENV}).")
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

    def _print_banner(self, *, host: str, port: int, threads: int, jobs: str) -> None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - display only
        if ":" in shown:
            shown = f"[{shown}]"
        base = f"http://{shown}:{port}"
        self.stdout.write(f"qmtjq is serving at {base}/  (listening on {host}:{port}, {threads} threads)")
        self.stdout.write(f"Admin: {base}/admin/")
        self.stdout.write(f"Jobs: {jobs}")
        self.stdout.write(f"Database: {self._database_description()}")
        self.stdout.write("Press Ctrl+C to stop. / 按 Ctrl+C 停止。")
        self.stdout.flush()

    @staticmethod
    def _database_description() -> str:
        db = connection.settings_dict
        if connection.vendor == "sqlite":
            return f"SQLite {db['NAME']}"
        where = db.get("HOST") or "localhost"
        if db.get("PORT"):
            where += f":{db['PORT']}"
        return f"{connection.display_name} {db.get('NAME')} on {where}"

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
        manage_py = Path(settings.BASE_DIR) / "manage.py"
        popen_kwargs: dict = {}
        if IS_WINDOWS:  # pragma: no cover - refused in handle(); kept for completeness
            popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            # Own process group: a terminal Ctrl+C reaches only us, we stop the
            # cluster in order, and can kill its whole process tree if it hangs.
            popen_kwargs["start_new_session"] = True
        self._cluster = subprocess.Popen(
            [sys.executable, str(manage_py), "qcluster"],
            cwd=settings.BASE_DIR,
            env=os.environ.copy(),
            stdin=subprocess.DEVNULL,
            **popen_kwargs,
        )
        self.stdout.write(f"django-q2 cluster started (pid {self._cluster.pid}).")
        threading.Thread(target=self._cluster_watch, name="qcluster-watch", daemon=True).start()

    def _cluster_watch(self) -> None:
        proc = self._cluster
        code = proc.wait()
        if not self._stopping:
            logger.error(
                "The django-q2 cluster (pid %s) exited with code %s: scheduled jobs are NOT running.",
                proc.pid,
                code,
            )

    def _cluster_stop(self) -> None:
        proc = self._cluster
        if proc is None or proc.poll() is not None:
            return
        try:
            # qcluster stops gracefully on SIGTERM as on SIGINT (running tasks
            # finish); unlike SIGINT, a SIGTERM that arrives while it is still
            # starting up ends it quietly instead of with a traceback.
            if IS_WINDOWS:  # pragma: no cover
                proc.send_signal(signal.CTRL_BREAK_EVENT)
            else:
                proc.terminate()
        except OSError:
            pass
        deadline = time.monotonic() + CLUSTER_STOP_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline and not self._force_stop:
            time.sleep(0.1)
        if proc.poll() is None:
            self.stderr.write(f"django-q2 cluster (pid {proc.pid}) did not stop in time; killing it.")
            try:
                if IS_WINDOWS:  # pragma: no cover
                    proc.kill()
                else:
                    os.killpg(proc.pid, signal.SIGKILL)  # the whole tree (its own process group)
            except OSError:
                pass
            proc.wait()

    # --- shutdown ------------------------------------------------------------
    def _shutdown(self, server) -> None:
        if server is not None:
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
