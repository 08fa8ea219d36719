"""Order history at scale: page latency with a million orders.

    python benchmarks/orders_page.py [--orders 1000000] [--holdings 300] [--runs 20]
                                     [--data-dir DIR] [--database-url mysql://root@127.0.0.1:3306/qmtjq_orders_bench]

1. Uses a throwaway database: a SQLite file in --data-dir (default
   /tmp/qmtjq_orders_bench, kept between runs so the history is generated
   once), or the MariaDB database named in --database-url (created if
   missing, never dropped). Runs `migrate`.
2. Tops the history up to --orders with `manage.py generate_orders` (three
   paper accounts bench, bench-b, bench-c; 300 holdings for bench).
3. Requests each page with Django's test Client as a logged-in staff user
   (in process: no HTTP server, so the figures are the application's own
   time: queries, ORM, templates), --runs times after 2 warm-up requests,
   and prints p50 / p95 / max in ms and the SQL queries per request.

Aims (issue 12): orders page p95 < 300 ms, admin Order changelist < 500 ms,
account page with 300 holdings < 300 ms. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

AIMS_MS = {"orders": 300, "admin": 500, "account": 300, "api": 300}


def _configure(args) -> None:
    if args.database_url:
        url = args.database_url
    else:
        data_dir = Path(args.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(data_dir / 'orders.sqlite3').as_posix()}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "orders-benchmark-only")
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "qmtjq.settings"
    if url.startswith("mysql"):
        _mysql_database_create(url)


def _mysql_database_create(url: str) -> None:
    from urllib.parse import urlparse

    import MySQLdb

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    connection = MySQLdb.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        passwd=parts.password or "",
    )
    connection.cursor().execute(
        f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )
    connection.close()


def _history_ensure(*, orders: int, holdings: int) -> None:
    from django.core.management import call_command

    from execution.models import Holding, Order

    have = Order.objects.count()
    if have < orders:
        print(f"generating {orders - have:,} orders (have {have:,}) ...", flush=True)
        started = time.monotonic()
        call_command(
            "generate_orders",
            "--account=bench",
            "--account=bench-b",
            "--account=bench-c",
            orders=orders - have,
            holdings=holdings,
            seed=have + 1,
        )
        print(f"generated in {time.monotonic() - started:.0f} s", flush=True)
    elif Holding.objects.filter(account__name="bench").count() != holdings:
        call_command("generate_orders", "--account=bench", orders=0, holdings=holdings)


def _staff_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="orders-bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    return client


def _deep_cursor_url() -> str | None:
    """A page in the middle of the history, reached the way Next links reach it (when the tree has cursors)."""
    from execution.models import Order

    try:
        from execution.pagination import cursor_encode
    except ImportError:
        return None
    total = Order.objects.count()
    middle = Order.objects.order_by("-created_at", "-id").values_list("created_at", "id")[total // 2]
    return f"/orders/?cursor={cursor_encode(page=total // 100, created_at=middle[0], pk=middle[1])}"


def _pages() -> list[tuple[str, str, str]]:
    from execution.models import BrokerAccount

    bench = BrokerAccount.objects.get(name="bench")
    pages = [
        ("orders", "orders page, first page", "/orders/"),
        ("orders", "orders page, account + side", "/orders/?account=bench&side=sell"),
        ("orders", "orders page, account + code prefix", "/orders/?account=bench&code=600"),
        (
            "orders",
            "orders page, status + date range",
            "/orders/?status=54&date_from=2025-01-01&date_to=2025-06-30",
        ),
        ("orders", "orders page, page 100 (offset)", "/orders/?page=100"),
        ("orders", "orders page, page 10000 (offset)", "/orders/?page=10000"),
    ]
    deep = _deep_cursor_url()
    if deep:
        pages.append(("orders", "orders page, deep page (cursor)", deep))
    pages += [
        ("api", "GET /api/v1/orders", "/api/v1/orders"),
        ("api", "GET /api/v1/orders?account=bench&side=buy", "/api/v1/orders?account=bench&side=buy"),
        ("admin", "admin Order changelist", "/admin/execution/order/"),
        (
            "admin",
            "admin changelist, status + account",
            f"/admin/execution/order/?status__exact=56&account__id__exact={bench.pk}",
        ),
        ("admin", "admin changelist, search a code", "/admin/execution/order/?q=600010.SH"),
        ("admin", "admin Round changelist (order counts)", "/admin/execution/round/"),
        ("account", "account page, 300 holdings", "/accounts/bench/"),
        # The slippage panel is cached until a fill arrives or the day turns: also time a view that
        # finds nothing cached (the cache is cleared before each request, outside the timing).
        ("account", "account page, 300 holdings, cache cleared", "/accounts/bench/?cold"),
    ]
    return pages


def _measure(client, url: str, runs: int) -> tuple[list[float], int, int]:
    from django.core.cache import cache
    from django.db import connection

    status = 0
    for _ in range(2):
        status = client.get(url).status_code
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    if url.endswith("?cold"):
        cache.clear()
    with connection.execute_wrapper(count):
        client.get(url)
    timings = []
    for _ in range(runs):
        if url.endswith("?cold"):
            cache.clear()
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return timings, len(queries), status


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--holdings", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--data-dir", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "qmtjq_orders_bench")
    )
    parser.add_argument(
        "--database-url", default="", help="e.g. mysql://root@127.0.0.1:3306/qmtjq_orders_bench"
    )
    args = parser.parse_args()
    _configure(args)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    _history_ensure(orders=args.orders, holdings=args.holdings)
    from execution.models import Fill, Order, OrderEvent, Round

    print(
        f"database: {os.environ['DATABASE_URL']}\n"
        f"rows: {Order.objects.count():,} orders, {Round.objects.count():,} rounds, "
        f"{Fill.objects.count():,} fills, {OrderEvent.objects.count():,} events; {args.runs} runs per page\n"
    )
    client = _staff_client()
    print(f"{'page':<46} {'status':>6} {'queries':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  aim")
    for kind, label, url in _pages():
        timings, queries, status = _measure(client, url, args.runs)
        p50 = statistics.median(timings)
        p95 = statistics.quantiles(timings, n=20, method="inclusive")[18] if len(timings) > 1 else timings[0]
        verdict = "ok" if p95 < AIMS_MS[kind] else "MISSED"
        print(
            f"{label:<46} {status:>6} {queries:>7} {p50:>8.1f} {p95:>8.1f} {max(timings):>8.1f}"
            f"  < {AIMS_MS[kind]} {verdict}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
