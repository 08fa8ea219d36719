"""Run a blocking call with a deadline, Windows-safe: a daemon thread and a wait, no SIGALRM, no fork.

xttrader's synchronous calls wait for MiniQMT forever (DESIGN §6). The call
runs on its own daemon thread; the caller waits at most `timeout` seconds. A
call past its deadline is abandoned (its thread stays blocked inside xttrader
until MiniQMT answers or the process exits; as a daemon it never delays exit).
"""

import threading
from collections.abc import Callable
from typing import Any


class DeadlineExceeded(Exception):
    """The call did not return within its deadline; it may still complete later."""


def call_with_deadline(fn: Callable[..., Any], *args, timeout: float, name: str = "call") -> Any:
    """fn(*args), or DeadlineExceeded after `timeout` seconds; exceptions of fn are re-raised here."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run():
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller, whatever it is
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=f"deadline-{name}", daemon=True).start()
    if not done.wait(timeout):
        raise DeadlineExceeded(f"{name} did not return within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
