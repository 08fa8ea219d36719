"""`python manage.py qmt_worker --account NAME`: make a broker account follow its targets."""

import signal
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from execution.brokers.base import BrokerDisconnected, BrokerError
from execution.models import BrokerAccount
from execution.runtime import broker_for, quote_source_for
from execution.services.lease import LeaseHeld
from execution.worker import EXIT_BLOCKED, EXIT_BROKER, EXIT_CONVERGED, EXIT_LEASE, Worker, WorkerConfig


class Command(BaseCommand):
    help = (
        "Converge one broker account to its strategies' targets through xtquant (live) or the paper broker. "
        "Exit codes: 0 converged (--once) or stopped, 2 another worker holds or took over the account, "
        "3 blocked/held/not trading (--once), 4 timed out with orders open (--once), "
        "5 MiniQMT unreachable or disconnected (--once, --dry-run), 6 the account's mode (paper/live), broker "
        "account id or MiniQMT path changed: start the worker again. Without --once an unreachable MiniQMT "
        "is retried with backoff."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="Broker account name (as in admin).")
        parser.add_argument("--once", action="store_true", help="Converge, then exit (see exit codes).")
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="Seconds between cycles (default 1; new targets are seen within one).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Print the round it would place; send nothing."
        )
        parser.add_argument(
            "--timeout", type=float, default=120.0, help="With --once: give up after this many seconds."
        )
        parser.add_argument(
            "--server",
            default=settings.QMTJQ_SERVER_URL,
            metavar="https://host[/prefix]",
            help="Remote mode: pull the account's targets from this server over HTTPS and report to it; this "
            "PC's own database is the ledger (default QMTJQ_SERVER_URL; --server= for a shared database).",
        )

    def handle(self, *args, account, once, interval, dry_run, timeout, server, **options):
        if not 0.05 <= interval <= 3600:
            raise CommandError("--interval must be between 0.05 and 3600 seconds")
        remote = self._remote_open(server, account) if server else None
        try:
            broker_account = BrokerAccount.objects.get(name=account)
        except BrokerAccount.DoesNotExist:
            raise CommandError(
                f"no broker account named {account!r}; create it in admin or with create_account"
            )
        self._calendar_check(broker_account)
        quote_source = quote_source_for(broker_account)
        worker = Worker(
            account=broker_account,
            broker=broker_for(broker_account, quote_source=quote_source),
            quote_source=quote_source,
            config=WorkerConfig(interval=interval),
            say=lambda line: (self.stdout.write(line), self.stdout.flush()),
            warn=lambda line: (self.stderr.write(line), self.stderr.flush()),
        )
        if dry_run:
            return self._dry_run(worker)
        restore = self._stop_on_ctrl_c(worker.stop_event)
        try:
            worker.start(connect=not once)  # --once connects in run_once: one failure, one line
        except LeaseHeld as exc:
            restore()
            self.stderr.write(str(exc))
            sys.exit(EXIT_LEASE)
        except BrokerError as exc:  # not a disconnect (those are retried): e.g. xtquant missing
            worker.stop()
            restore()
            raise CommandError(f"cannot use the broker: {exc}")
        if remote is not None:
            remote.on_broker_change = worker.lease_check.set
            remote.start(quote_source=quote_source, holder=worker.holder.name)
        mode = "once" if once else f"every {interval:g} s"
        self.stdout.write(
            f"worker for {broker_account} started ({mode}); Ctrl+C stops after the current step"
        )
        try:
            code = worker.run_once(timeout=timeout) if once else worker.run_forever()
        finally:
            worker.stop()
            restore()
            if remote is not None and not remote.stop(flush_timeout=15.0):
                self.stdout.write("some reports are still queued; they go to the server with the next run")
        self.stdout.write("worker stopped")
        if code != EXIT_CONVERGED:
            sys.exit(code)

    def _remote_open(self, server: str, account: str):
        """Remote mode (DESIGN §2): pull the feed into this PC's database before the worker starts."""
        from execution.remote.apply import FeedError
        from execution.remote.runner import remote_session_open

        try:
            return remote_session_open(
                server_url=server,
                account_name=account,
                say=lambda line: (self.stdout.write(line), self.stdout.flush()),
            )
        except (FeedError, ValueError) as exc:
            raise CommandError(f"remote mode: {exc}")

    def _calendar_check(self, account: BrokerAccount) -> None:
        """On the trading PC, refresh the calendar from xtdata; always warn loudly when it runs out."""
        from django.utils import timezone

        from execution import calendar

        if not account.is_paper:
            try:
                stored = calendar.calendar_refresh_from_xtdata()
                if stored:
                    self.stdout.write(f"trading calendar: {stored} day(s) refreshed from xtdata")
                for line in getattr(stored, "disagreements", ()):
                    self.stdout.write(
                        self.style.WARNING(f"WARNING: trading calendar sources disagree: {line}")
                    )
            except calendar.CalendarSourceError as exc:
                self.stdout.write(
                    self.style.WARNING(f"WARNING: trading calendar not refreshed from xtdata: {exc}")
                )
        # On stdout: stderr carries only the one line that explains a non-zero exit.
        warning = calendar.calendar_warning(timezone.localdate())
        if warning:
            self.stdout.write(self.style.WARNING(f"WARNING: {warning}"))

    def _dry_run(self, worker: Worker) -> None:
        try:
            worker.broker.connect()
            outcome = worker.dry_run()
        except BrokerDisconnected as exc:
            self.stderr.write(f"broker unreachable: {exc}")
            sys.exit(EXIT_BROKER)
        finally:
            worker.broker.close()
        plan = outcome.plan
        for line in _dry_run_lines(plan):
            self.stdout.write(line)
        if plan.status in ("blocked", "hold"):
            sys.exit(EXIT_BLOCKED)

    @staticmethod
    def _stop_on_ctrl_c(stop_event: threading.Event):
        """First Ctrl+C: finish the current step and exit. Second: stop now."""

        def handler(signum, frame):
            if stop_event.is_set():
                raise KeyboardInterrupt
            stop_event.set()

        previous = signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)


def _dry_run_lines(plan) -> list[str]:
    """What a person reads: a summary, each planned order (side, code, name, volume, price), each skip and why."""
    from execution.planner import PlanStatus
    from qmtjq.names import security_names_get

    if plan.status is PlanStatus.PLACE:
        sells = sum(1 for o in plan.orders if o.side == "sell")
        summary = (
            f"would place {len(plan.orders)} order(s) ({sells} sell, {len(plan.orders) - sells} buy), "
            f"value {plan.traded_value:,.2f}"
        )
    elif plan.status is PlanStatus.HOLD:
        summary = f"would wait for approval before placing {len(plan.orders)} order(s)"
    elif plan.status is PlanStatus.CONVERGED:
        summary = "nothing to do: the account matches its target"
    else:
        summary = "nothing to do: blocked"
    if plan.skips:
        summary += f"; {len(plan.skips)} line(s) skipped"
    if plan.message and plan.message not in summary:
        summary += f": {plan.message}"
    names = security_names_get([o.code for o in plan.orders] + [s.code for s in plan.skips])

    def label(code: str) -> str:
        return f"{code} {names[code]}" if names.get(code) else code

    lines = [f"dry run: {summary}"]
    for order in plan.orders:
        lines.append(
            f"  would {order.side} {label(order.code)} {order.volume} @ {order.limit_price} "
            f"(value {order.value:,.2f}, price from {order.price_source})"
        )
    for skip in plan.skips:
        detail = f" ({skip.detail})" if skip.detail and skip.detail != str(skip.reason) else ""
        lines.append(f"  skip {label(skip.code)}: {skip.reason}{detail}")
    return lines
