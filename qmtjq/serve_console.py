"""What `manage.py serve` prints at start-up: the banner, the framed "ready" block, update notices."""

import os

from django.conf import settings
from django.db import connection

import qmtjq
from qmtjq.console import framed
from qmtjq.web_process import GranianProcess


def base_url(*, server, host: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - display only
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{server.effective_port}"


def database_description() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"SQLite {db['NAME']}"
    where = db.get("HOST") or "localhost"
    if db.get("PORT"):
        where += f":{db['PORT']}"
    return f"{connection.display_name} {db.get('NAME')} on {where}"


def banner_lines(*, server, host: str, threads: int, jobs: str, web_workers: int) -> list[str]:
    base = base_url(server=server, host=host)
    lines = [
        f"qmtjq {qmtjq.__version__} is serving at {base}/  "
        f"(listening on {host}:{server.effective_port}, {threads} threads per process, pid {os.getpid()})"
    ]
    if isinstance(server, GranianProcess):
        lines.append(f"Web processes: {web_workers} (granian, pid {server.process.pid})")
    else:
        lines.append("Web processes: 1 (waitress, in this process)")
    lines.append(f"Jobs: {jobs}")
    lines.append(f"Database: {database_description()}")
    return lines


def ready_frame(*, server, host: str, admin_notice: str) -> str:
    """The end of start-up, framed, so the address and a new admin password stay in view."""
    base = base_url(server=server, host=host)
    lines = [f"qmtjq {qmtjq.__version__}", f"Web:   {base}/", f"Admin: {base}/admin/"]
    if admin_notice:
        lines += ["", *admin_notice.splitlines()]
    lines += ["", "Press Ctrl+C to stop. / 按 Ctrl+C 停止。"]
    return framed(lines)


def update_frame(notice) -> str:
    """A newer release is out (UPDATE_CHECK_URL): say so; nothing is installed."""
    return framed(
        [
            f"qmtjq {notice.version} is available (this is {qmtjq.__version__}).",
            f"有新版本 qmtjq {notice.version}（当前 {qmtjq.__version__}）。",
            notice.url or settings.UPDATE_CHECK_URL,
            "Nothing is installed automatically. / 不会自动安装。",
        ]
    )
