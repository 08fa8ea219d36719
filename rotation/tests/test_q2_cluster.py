"""A real django-q2 cluster (`manage.py qcluster`, ORM broker) fires our schedules.

The cluster is a subprocess, so it cannot see pytest-django's test database:
it gets its own SQLite file, migrated first, and the test reads the results
from that file. That holds when the suite itself runs on MariaDB
(DATABASE_URL=mysql://… in CI): this test checks the cluster, the schedule
registry and the job paths, not the database backend.

django-q2's cluster turns due schedules into tasks only from its guard loop,
about every 30 s (`counter >= 30` in django_q/cluster.py; not a setting), and
the first pass comes ~30 s after start. So the test waits up to 90 s; it
normally finishes in 35-45 s.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
MARKER_FUNC = "rotation.tests.test_q2_cluster.cluster_marker_job"
ROTATION_JOBS = ["rotation.jobs.rotation_due_check", "rotation.jobs.tp_sl_check_job"]
FIRE_TIMEOUT = 90
STOP_TIMEOUT = 30


def cluster_marker_job(path: str) -> str:
    """The scheduled job: runs inside a cluster worker process and leaves a file behind."""
    Path(path).write_text(f"ran in pid {os.getpid()}", encoding="utf-8")
    return "marker written"


SETUP_SCRIPT = """
from datetime import timedelta
from django.utils import timezone
from django_q.models import Schedule
from qmtjq.schedules import schedules_ensure

print(schedules_ensure())
Schedule.objects.create(
    name="q2 integration test marker",
    func={func!r},
    args={args!r},
    schedule_type=Schedule.ONCE,
    next_run=timezone.now() - timedelta(minutes=1),
)
"""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(
    sys.platform == "win32", reason="qcluster needs fork and SIGALRM (Windows runs jobs in-process instead)"
)
def test_real_cluster_fires_schedules(tmp_path):
    """Migrate a fresh DB, register the schedules, start qcluster: the marker job and both rotation jobs succeed."""
    db_path = tmp_path / "cluster.sqlite3"
    marker = tmp_path / "marker.txt"
    env = os.environ.copy()
    env.update(
        DJANGO_SETTINGS_MODULE="qmtjq.settings",  # the production settings, not the test ones
        DATABASE_URL=f"sqlite:///{db_path}",
        SECRET_KEY="q2-integration-test-secret-key-only",
        DEBUG="False",
        Q_WORKERS="1",
        PYTHONUNBUFFERED="1",
    )

    def manage(*args, timeout=300):
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    manage("migrate", "--noinput")
    setup_out = manage("shell", "-c", SETUP_SCRIPT.format(func=MARKER_FUNC, args=repr(str(marker))))
    assert "'rotation: due check': 'created'" in setup_out, setup_out

    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: workers can be checked and cleaned up
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(cluster.stdout), daemon=True)
    reader.start()
    started = time.monotonic()
    try:
        wanted = {MARKER_FUNC, *ROTATION_JOBS}
        results: dict[str, tuple[int, str]] = {}
        while time.monotonic() - started < FIRE_TIMEOUT and not wanted <= results.keys():
            assert cluster.poll() is None, "qcluster exited early:\n" + "".join(lines)
            time.sleep(0.5)
            with sqlite3.connect(db_path, timeout=10) as conn:
                rows = conn.execute("SELECT func, success, result FROM django_q_task").fetchall()
            results = {func: (success, result) for func, success, result in rows}
        fired_after = time.monotonic() - started
        output = "".join(lines)
        assert wanted <= results.keys(), f"not fired within {FIRE_TIMEOUT} s: {results}\n{output}"
        assert all(results[func][0] == 1 for func in wanted), f"{results}\n{output}"
        assert marker.read_text(encoding="utf-8").startswith("ran in pid ")
        assert int(marker.read_text(encoding="utf-8").split()[-1]) != cluster.pid  # a worker, not the parent
        print(f"schedules fired {fired_after:.1f} s after qcluster started")

        cluster.send_signal(signal.SIGTERM)
        assert cluster.wait(timeout=STOP_TIMEOUT) == 0, "".join(lines)
        deadline = time.monotonic() + 10
        while _group_alive(cluster.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(cluster.pid), "cluster workers outlived SIGTERM"
    finally:
        if cluster.poll() is None or _group_alive(cluster.pid):
            try:
                os.killpg(cluster.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            cluster.wait(timeout=10)
        reader.join(timeout=5)
