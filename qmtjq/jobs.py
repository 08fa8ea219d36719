"""Run django-q2 schedules and queued tasks inside the `serve` process.

django-q2's cluster (`manage.py qcluster`) is built on fork-style
multiprocessing and enforces task timeouts with SIGALRM; neither exists on
Windows. :class:`InProcessJobRunner` is the Windows-safe replacement used by
``manage.py serve --jobs inprocess``: one daemon thread that, in a loop,

1. runs django-q2's own scheduler (``django_q.scheduler.scheduler``), which
   turns due ``Schedule`` rows into queued tasks exactly as the cluster does;
2. pulls queued tasks from the broker (``broker.dequeue()``), runs them in
   this thread, and saves results with django-q2's own
   ``django_q.monitor.save_task`` and ``broker.acknowledge`` — so they show
   in admin as successful/failed tasks like cluster-run ones.

Differences from the cluster, by design: one task at a time, and the task
timeout (``Q_CLUSTER["timeout"]``) cannot be enforced on a thread — an
overrun is only logged. No fork, no SIGALRM, no multiprocessing.
It can safely run next to a cluster or another runner: the ORM broker locks
each task row before handing it out, and the scheduler locks due schedules.
"""

import logging
import pydoc
import threading
import time
import traceback

from django.db import connections
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.conf import Conf, error_reporter
from django_q.monitor import save_cached, save_task
from django_q.scheduler import scheduler
from django_q.signals import post_execute, post_execute_in_worker, pre_execute
from django_q.signing import BadSignature, SignedPackage
from django_q.utils import close_old_django_connections, get_func_repr

logger = logging.getLogger(__name__)


class InProcessJobRunner:
    """A daemon thread running due schedules and queued django-q2 tasks.

    `poll_interval`: seconds between looks at the task queue when it is
    empty; `schedule_interval`: seconds between scheduler passes (the
    cluster uses ~30 s; schedules have minute granularity).
    """

    def __init__(
        self,
        *,
        poll_interval: float = 2.0,
        schedule_interval: float = 10.0,
        broker: Broker | None = None,
    ) -> None:
        self.poll_interval = poll_interval
        self.schedule_interval = schedule_interval
        self._broker = broker
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self.tasks_succeeded = 0
        self.tasks_failed = 0

    # --- lifecycle -------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("InProcessJobRunner can only be started once")
        self._thread = threading.Thread(target=self._run, name="qmtjq-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the thread to stop after the current task; True when it has stopped.

        A task that is still running after `timeout` cannot be interrupted;
        the thread is a daemon, so it will not keep the process alive.
        """
        self._stop_event.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("Job runner still busy with a task after %.0f s; leaving it behind", timeout)
            return False
        return True

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def _run(self) -> None:
        logger.info("In-process job runner started (queue %s)", Conf.CLUSTER_NAME)
        broker = self._broker or get_broker()
        next_schedule = 0.0
        try:
            while not self._stop_event.is_set():
                try:
                    if time.monotonic() >= next_schedule:
                        next_schedule = time.monotonic() + self.schedule_interval
                        self.schedule_once(broker)
                    self.drain_queue(broker)
                except Exception:  # never let a bad cycle kill the runner
                    logger.exception("Job runner cycle failed; retrying")
                self._stop_event.wait(self.poll_interval)
        finally:
            connections.close_all()  # this thread's connections
            logger.info("In-process job runner stopped")

    # --- one pass ----------------------------------------------------------
    def schedule_once(self, broker: Broker | None = None) -> None:
        """Turn due schedules into queued tasks (django-q2's own scheduler)."""
        if Conf.SCHEDULER:
            scheduler(broker=broker or self._broker or get_broker())

    def drain_queue(self, broker: Broker | None = None) -> int:
        """Run queued tasks until the queue is empty or a stop is requested."""
        broker = broker or self._broker or get_broker()
        done = 0
        while not self._stop_event.is_set():
            task_set = broker.dequeue()
            if not task_set:
                break
            for ack_id, payload in task_set:
                self.process(broker, ack_id, payload)
                done += 1
        return done

    def process(self, broker: Broker, ack_id, payload) -> dict | None:
        """Unpack, execute and record one queued task (the cluster's pusher, worker and monitor)."""
        try:
            task = SignedPackage.loads(payload)
        except (TypeError, BadSignature):
            logger.exception("Could not unpack a queued task; dropping it")
            broker.fail(ack_id)
            return None
        task["cluster"] = Conf.CLUSTER_NAME
        task["ack_id"] = ack_id
        self._execute(task)
        self._record(broker, task)
        return task

    def _execute(self, task: dict) -> None:
        func = task["func"]
        if not callable(func):
            func = pydoc.locate(func)
        if not task.get("sync", False):
            close_old_django_connections()
        timeout = task.pop("timeout", Conf.TIMEOUT)
        logger.info("Running %s '%s'", task["name"], get_func_repr(task["func"]))
        pre_execute.send(sender="django_q", func=func, task=task)
        started = time.monotonic()
        try:
            if func is None:
                raise ValueError(f"Function {task['func']} is not defined")
            result = (func(*task["args"], **task["kwargs"]), True)
        except (Exception, SystemExit) as exc:  # a task must never end the runner
            result = (f"{exc} : {traceback.format_exc()}", False)
            if error_reporter:
                error_reporter.report()
        elapsed = time.monotonic() - started
        if timeout and timeout > 0 and elapsed > timeout:
            logger.warning(
                "Task %s took %.0f s, over the %s s timeout (not enforceable in-process)",
                task["name"],
                elapsed,
                timeout,
            )
        task["result"], task["success"] = result
        task["stopped"] = timezone.now()
        post_execute_in_worker.send(sender="django_q", func=func, task=task)

    def _record(self, broker: Broker, task: dict) -> None:
        # Mirrors django_q.monitor.monitor() for one task.
        if task.get("cached", False):
            save_cached(task, broker)
        else:
            save_task(task, broker)
        ack_id = task.pop("ack_id", False)
        if ack_id and (task["success"] or task.get("ack_failure", False)):
            try:
                broker.acknowledge(ack_id)
            except Exception:
                logger.exception("Could not acknowledge task %s", task["name"])
        post_execute.send(sender="django_q", task=task)
        if task["success"]:
            self.tasks_succeeded += 1
            logger.info("Processed '%s' (%s)", get_func_repr(task["func"]), task["name"])
        else:
            self.tasks_failed += 1
            logger.error("Failed '%s' (%s) - %s", get_func_repr(task["func"]), task["name"], task["result"])
