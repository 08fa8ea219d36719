"""An optional notice that a newer qmtjq release exists (off unless UPDATE_CHECK_URL is set).

Unlike the seed tool's auto-update this never downloads or installs
anything: a trading system must not change under a running account. It
asks one configured URL at most once a day (the last answer is kept in a
small JSON file, so restarts do not ask again), with a short timeout, from a
background thread, and a failure only means "no notice".
"""

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import requests
from django.conf import settings
from django.utils import timezone

import qmtjq

logger = logging.getLogger(__name__)

CHECK_EVERY = timedelta(days=1)
TIMEOUT_SECONDS = 5.0
MAX_ANSWER_BYTES = 256 * 1024


@dataclass(frozen=True)
class UpdateNotice:
    version: str
    url: str  # release page, http(s) only; may be ""


def update_check_enabled() -> bool:
    return bool(settings.UPDATE_CHECK_URL)


def version_key(text: str) -> tuple[int, ...]:
    """'v1.10.2' → (1, 10, 2); the numeric parts only, so 1.10 sorts after 1.9."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("-")[0].split("+")[0]))


def is_newer(candidate: str, current: str) -> bool:
    theirs = version_key(candidate)
    return bool(theirs) and theirs > version_key(current)


def _safe_url(value) -> str:
    return value if isinstance(value, str) and re.match(r"^https?://[^\s\"'<>]+$", value) else ""


def release_parse(answer) -> UpdateNotice | None:
    """The latest stable release from GitHub's release JSON (one or a list) or {"version", "url"}."""
    if isinstance(answer, list):  # GitHub's `/releases`: newest first
        answer = next(
            (r for r in answer if isinstance(r, dict) and not r.get("draft") and not r.get("prerelease")), None
        )
    if not isinstance(answer, dict):
        return None
    version = answer.get("tag_name") or answer.get("version")
    if not isinstance(version, str) or not version_key(version):
        return None
    return UpdateNotice(
        version=version.strip().lstrip("vV"), url=_safe_url(answer.get("html_url") or answer.get("url"))
    )


def _state_read(path: Path) -> dict:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _state_write(path: Path, state: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state), encoding="utf-8")
    except OSError:
        logger.warning("could not record the update check in %s", path)


def _fetch(url: str, timeout: float) -> UpdateNotice | None:
    with requests.get(
        url,
        timeout=timeout,
        stream=True,
        headers={"Accept": "application/json", "User-Agent": f"qmtjq/{qmtjq.__version__}"},
    ) as response:
        response.raise_for_status()
        body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
    if len(body) > MAX_ANSWER_BYTES:
        raise ValueError("answer too large")
    return release_parse(json.loads(body))


def update_check(
    *,
    url: str | None = None,
    current: str | None = None,
    state_file: Path | None = None,
    now: datetime | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> UpdateNotice | None:
    """A newer release than `current`, or None. Asks `url` only when the last check is a day old."""
    url = settings.UPDATE_CHECK_URL if url is None else url
    current = current or qmtjq.__version__
    state_file = state_file or Path(settings.UPDATE_CHECK_STATE_FILE)
    now = now or timezone.now()
    if not url:
        return None
    state = _state_read(state_file)
    try:
        last = datetime.fromisoformat(state["checked_at"])
    except (KeyError, TypeError, ValueError):
        last = None
    if last is None or state.get("url") != url or not (timedelta(0) <= now - last < CHECK_EVERY):
        state = {"checked_at": now.isoformat(), "url": url, "latest": "", "release_url": "", "error": ""}
        try:
            notice = _fetch(url, timeout)
        except (requests.RequestException, ValueError) as exc:
            # Recorded as a check: a release server that is down is asked again tomorrow, not every start.
            state["error"] = f"{type(exc).__name__}: {exc}"[:300]
            logger.info("update check at %s failed: %s", url, state["error"])
        else:
            if notice is not None:
                state.update(latest=notice.version, release_url=notice.url)
        _state_write(state_file, state)
    return notice_from_state(state, current=current)


def notice_from_state(state: dict, *, current: str) -> UpdateNotice | None:
    latest = state.get("latest") or ""
    if isinstance(latest, str) and is_newer(latest, current):
        return UpdateNotice(version=latest, url=_safe_url(state.get("release_url")))
    return None


def update_notice_cached() -> UpdateNotice | None:
    """The last check's answer, from the state file only (never the network): for page footers."""
    if not update_check_enabled():
        return None
    state = _state_read(Path(settings.UPDATE_CHECK_STATE_FILE))
    if state.get("url") != settings.UPDATE_CHECK_URL:
        return None
    return notice_from_state(state, current=qmtjq.__version__)


class UpdateChecker:
    """A daemon thread: check now, then once a day; `on_newer` is called once per newer version."""

    def __init__(self, *, on_newer: Callable[[UpdateNotice], None], interval: float = 3600.0, **check_kwargs):
        self.on_newer = on_newer
        self.interval = interval  # how often to look whether a day has passed
        self.check_kwargs = check_kwargs
        self._stop = threading.Event()
        self._announced = ""
        self._thread = threading.Thread(target=self._run, name="update-check", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                notice = update_check(**self.check_kwargs)
                if notice is not None and notice.version != self._announced:
                    self._announced = notice.version
                    self.on_newer(notice)
            except Exception:  # a notice must never take anything down
                logger.warning("update check failed", exc_info=True)
            self._stop.wait(self.interval)
