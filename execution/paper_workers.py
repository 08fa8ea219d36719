"""Paper-account workers inside `manage.py serve`: one thread per enabled paper account.

Threads, not processes, so it runs the same on Windows. Each thread holds
its account's lease like a `qmt_worker` process would; an account already
run elsewhere is skipped with a message and retried (it starts here once the
other worker lets go).

A supervisor thread looks at the accounts every `poll_interval` seconds, so
an account created, re-enabled or switched to paper while `serve` runs gets
its worker within seconds, and a disabled one (or one switched to live, which
belongs to `qmt_worker` on the trading PC) loses it.
"""

import logging
import threading

from django.db import DatabaseError, close_old_connections, connection

from .models import BrokerAccount
from .runtime import broker_for, quote_source_for
from .services.lease import LeaseHeld
from .worker import Worker

logger = logging.getLogger(__name__)

POLL_INTERVAL = 2.0  # seconds between looks at which paper accounts are enabled


class PaperWorkerPool:
    def __init__(self, *, say=print, poll_interval: float = POLL_INTERVAL):
        self.say = say
        self.poll_interval = poll_interval
        self._running: dict[int, tuple[threading.Thread, Worker]] = {}  # by account id
        self._held_elsewhere: set[int] = set()  # reported once, retried every pass
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    def start(self) -> list[str]:
        """Start a worker for every enabled paper account, then keep the set current.

        Returns the account names started now.
        """
        started = self.sync()
        self._supervisor = threading.Thread(target=self._supervise, name="paper-workers", daemon=True)
        self._supervisor.start()
        return started

    def running(self) -> list[str]:
        """Names of the accounts whose worker thread is alive, sorted."""
        with self._lock:
            return sorted(
                w.account.name for t, w in self._running.values() if t.is_alive() and not w.stop_event.is_set()
            )

    def sync(self) -> list[str]:
        """One supervisor pass: stop workers no longer wanted, start missing ones; returns names started."""
        wanted = {
            account.pk: account
            for account in BrokerAccount.objects.filter(mode=BrokerAccount.Mode.PAPER, enabled=True).order_by(
                "name"
            )
        }
        with self._lock:
            for account_id, (thread, worker) in list(self._running.items()):
                if not thread.is_alive():
                    del self._running[account_id]  # ended (error, lease lost): start afresh below
                elif account_id not in wanted and not worker.stop_event.is_set():
                    # Its thread releases the lease on the way out; the entry stays until it has
                    # ended, so a quick re-enable waits for it instead of meeting our own lease.
                    worker.stop_event.set()
                    self.say(f"paper account {worker.account.name}: worker stopped (disabled or not paper)")
            self._held_elsewhere &= set(wanted)
            started = []
            for account_id, account in wanted.items():
                if account_id in self._running or self._stop.is_set():
                    continue
                if self._start_one(account):
                    started.append(account.name)
            return started

    def _start_one(self, account: BrokerAccount) -> bool:
        quote_source = quote_source_for(account)
        worker = Worker(
            account=account,
            broker=broker_for(account, quote_source=quote_source),
            quote_source=quote_source,
            say=lambda line, name=account.name: logger.info("[%s] %s", name, line),
        )
        try:
            worker.start()
        except LeaseHeld as exc:
            if account.pk not in self._held_elsewhere:
                self._held_elsewhere.add(account.pk)
                self.say(f"paper account {account.name}: not started here ({exc}); will start when free")
            return False
        self._held_elsewhere.discard(account.pk)
        thread = threading.Thread(target=self._run, args=(worker,), name=f"paper-{account.name}", daemon=True)
        thread.start()
        self._running[account.pk] = (thread, worker)
        return True

    def _supervise(self) -> None:
        try:
            while not self._stop.wait(self.poll_interval):
                try:
                    close_old_connections()
                    for name in self.sync():
                        self.say(f"paper account {name}: worker started")
                except DatabaseError:
                    logger.warning("paper worker supervisor: database error; retrying", exc_info=True)
                except Exception:  # the supervisor must outlive any one bad pass
                    logger.exception("paper worker supervisor pass failed; retrying")
        finally:
            connection.close()

    @staticmethod
    def _run(worker: Worker) -> None:
        try:
            worker.run_forever()
        except Exception:
            logger.exception("paper worker for %s stopped with an error", worker.account.name)
        finally:
            worker.stop()
            connection.close()

    def stop(self, *, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        with self._lock:
            threads = list(self._running.values())
            self._running.clear()
        for _thread, worker in threads:
            worker.stop_event.set()
        for thread, _worker in threads:
            thread.join(timeout)
