"""Paper-account workers inside `manage.py serve`: one thread per enabled paper account.

Threads, not processes, so it runs the same on Windows. Each thread holds
its account's lease like a `qmt_worker` process would; an account already
run elsewhere is skipped with a message.
"""

import logging
import threading

from django.db import connection

from .models import BrokerAccount
from .runtime import broker_for, quote_source_for
from .services.lease import LeaseHeld
from .worker import Worker

logger = logging.getLogger(__name__)


class PaperWorkerPool:
    def __init__(self, *, say=print):
        self.say = say
        self._threads: list[tuple[threading.Thread, Worker]] = []

    def start(self) -> list[str]:
        """Start a worker for every enabled paper account; returns the account names started."""
        started = []
        for account in BrokerAccount.objects.filter(mode=BrokerAccount.Mode.PAPER, enabled=True).order_by(
            "name"
        ):
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
                self.say(f"paper account {account.name}: not started here ({exc})")
                continue
            thread = threading.Thread(
                target=self._run, args=(worker,), name=f"paper-{account.name}", daemon=True
            )
            thread.start()
            self._threads.append((thread, worker))
            started.append(account.name)
        return started

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
        for _thread, worker in self._threads:
            worker.stop_event.set()
        for thread, _worker in self._threads:
            thread.join(timeout)
        self._threads.clear()
