"""Console output for long-running commands (`serve`) that must survive a vanished terminal."""

import os


class TolerantStream:
    """A console stream whose reader may vanish (`serve | tee log` after Ctrl+C, a closed terminal).

    A failed write marks the stream broken and later writes are dropped, so
    shutting down the web server, the workers and the cluster is never cut
    short by an error about printing "Stopping…".
    """

    def __init__(self, stream):
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.broken = True

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


def silence_broken_streams(*streams) -> None:
    """Point a dead stdout/stderr at the null device, so Python's exit-time flush cannot fail loudly."""
    for stream in streams:
        if not getattr(stream, "broken", False):
            continue
        try:
            fileno = stream._stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fileno)
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass


def framed(lines: list[str]) -> str:
    rule = "=" * 72
    return "\n".join([rule, *(f"  {line}" if line else "" for line in lines), rule])
