"""django-q2 on the Redis broker (Q_BROKER_URL), and two clusters on one database (issue 12).

Runs against the real Redis server at 127.0.0.1:6379 (`.ci/run` starts one
when none answers); skipped with the reason when none is reachable. Each run
uses its own cluster name, so its queue never mixes with another's.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from qmtjq.tests.redis_server import redis_or_skip

BASE_DIR = Path(settings.BASE_DIR)
REDIS_URL = os.environ.get("QMTJQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
MARKER_FUNC = "qmtjq.tests.test_q2_redis.marker_job"
DUE_CHECK = "rotation.jobs.rotation_due_check"
TP_SL = "rotation.jobs.tp_sl_check_job"
TIMEOUT = 90


def marker_job(folder: str, index: int) -> str:
    """Runs in a cluster worker: records which cluster ran it (its process group)."""
    time.sleep(0.3)  # so one cluster cannot drain the queue before the other takes a task
    Path(folder, f"marker-{index}.json").write_text(json.dumps({"cluster": os.getpgid(0)}), encoding="utf-8")
    return "marker written"


def _settings_with(env: dict, expression: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; print({expression})",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() + done.stderr


def _env(tmp_path: Path, **extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("Q_BROKER_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="qmtjq.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        SECRET_KEY="q2-redis-test-secret-key-only-for-this-test",
        DEBUG="False",
        Q_WORKERS="1",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def test_q_broker_url_switches_django_q2_to_redis(tmp_path):
    assert "'orm': 'default'" in _settings_with(_env(tmp_path), "settings.Q_CLUSTER")
    redis_conf = _settings_with(_env(tmp_path, Q_BROKER_URL=REDIS_URL), "settings.Q_CLUSTER")
    assert f"'redis': '{REDIS_URL}'" in redis_conf and "'orm'" not in redis_conf
    assert "ImproperlyConfigured" in _settings_with(_env(tmp_path, Q_BROKER_URL="amqp://x"), "1")


def test_redis_cache_url_uses_djangos_redis_cache(tmp_path):
    redis = redis_or_skip(REDIS_URL)
    env = _env(tmp_path, CACHE_URL=REDIS_URL)
    key = f"qmtjq-test-{uuid.uuid4().hex}"
    out = _settings_with(
        env,
        f"(settings.CACHES['default']['BACKEND'], __import__('django.core.cache').core.cache.cache.set({key!r}, 7))",
    )
    assert "django.core.cache.backends.redis.RedisCache" in out, out
    assert any(k.decode().endswith(key) for k in redis.keys(f"*{key}"))


SETUP = """
import json, sys
from datetime import time, timedelta
import django
django.setup()
from django.utils import timezone
from django_q.tasks import async_task
from execution.calendar import is_trading_day, market_date
from execution.services.accounts import account_create
from positions.services import strategy_get_or_create
from rotation.models import RotationStrategy

spec = json.loads(sys.argv[1])
account = account_create(name="cb", mode="paper", account_id="CB1", enforce_trading_hours=False)
strategy, _ = strategy_get_or_create(name="rotation:two-clusters")
# Due since midnight today: every due check sees the same slot (late, so it is skipped, not traded).
rotation = RotationStrategy.objects.create(name="two-clusters", account=account, strategy=strategy, run_time=time(0, 0))
RotationStrategy.objects.filter(pk=rotation.pk).update(created_at=timezone.now() - timedelta(days=400))
for index in range(spec["markers"]):
    async_task(spec["marker"], spec["folder"], index)
for _ in range(spec["due_checks"]):
    async_task(spec["due_check"])
    async_task(spec["tp_sl"])
print(json.dumps({"trading_day": bool(is_trading_day(market_date(timezone.now())))}))
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="qcluster needs fork and SIGALRM")
def test_two_clusters_on_redis_share_the_queue_and_run_each_slot_once(tmp_path):
    """Two qcluster processes, one Redis queue, one database: both take tasks, the due slot runs once."""
    redis = redis_or_skip(REDIS_URL)
    name = f"qmtjq-test-{uuid.uuid4().hex[:8]}"
    env = _env(tmp_path, Q_BROKER_URL=REDIS_URL, Q_CLUSTER_NAME=name)
    db_path = tmp_path / "jobs.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
    )
    clusters = [
        subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    try:
        time.sleep(3)  # both clusters are up and waiting on the queue before the tasks arrive
        spec = {
            "marker": MARKER_FUNC,
            "folder": str(tmp_path),
            "markers": 8,
            "due_checks": 6,
            "due_check": DUE_CHECK,
            "tp_sl": TP_SL,
        }
        done = subprocess.run(
            [sys.executable, "-c", SETUP, json.dumps(spec)],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        trading_day = json.loads(done.stdout.strip().splitlines()[-1])["trading_day"]
        deadline = time.monotonic() + TIMEOUT
        wanted = spec["markers"] + 2 * spec["due_checks"]
        rows = []
        while time.monotonic() < deadline:
            assert all(c.poll() is None for c in clusters), "a cluster exited early"
            with sqlite3.connect(db_path, timeout=10) as conn:
                rows = conn.execute("SELECT func, success FROM django_q_task").fetchall()
            if len(rows) >= wanted:
                break
            time.sleep(0.5)
        assert len(rows) == wanted and all(success for _, success in rows), rows
        ran_by = {json.loads(p.read_text())["cluster"] for p in tmp_path.glob("marker-*.json")}
        assert ran_by <= {c.pid for c in clusters} and len(ran_by) == 2, (ran_by, [c.pid for c in clusters])
        with sqlite3.connect(db_path, timeout=10) as conn:
            runs = conn.execute("SELECT COUNT(*) FROM rotation_rotationrun").fetchone()[0]
        assert runs == (1 if trading_day else 0)  # six due checks on two clusters: one run for the slot
    finally:
        for cluster in clusters:
            if cluster.poll() is None:
                cluster.send_signal(signal.SIGTERM)
        for cluster in clusters:
            try:
                cluster.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
                cluster.wait()
            try:
                os.killpg(cluster.pid, signal.SIGKILL)
            except OSError:
                pass
        for key in redis.keys(f"*{name}*"):
            redis.delete(key)
