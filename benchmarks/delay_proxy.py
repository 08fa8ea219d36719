"""A TCP proxy that adds a fixed delay each way: a WAN link on one machine (issue 9).

    python benchmarks/delay_proxy.py --upstream 127.0.0.1:3306 --delay-ms 20 [--listen 127.0.0.1:3307]

or from Python (the benchmarks do this):

    with DelayProxy(upstream=("127.0.0.1", 3306), delay_ms=20) as proxy:
        url = f"mysql://root@127.0.0.1:{proxy.port}/db"
        ...
        proxy.round_trips  # request→reply turns seen, over all connections

Every chunk read from one side is written to the other `delay_ms` later.
Chunks are queued with their due time, so a burst is delayed once, not once
per chunk: the link has latency, not a bandwidth limit. A round trip is
counted each time the server answers after the client spoke (a query and its
result, a handshake step), which is what a latency link charges for.
Threads only (no fork, no signals): runs the same on Windows.
"""

from __future__ import annotations

import argparse
import queue
import socket
import threading
import time

CHUNK = 65536


class _Link:
    """One client connection and its upstream connection, pumped both ways with the delay."""

    def __init__(self, proxy: DelayProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = socket.create_connection(proxy.upstream, timeout=10)
        self.upstream.settimeout(None)
        for sock in (client, self.upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.last_from_client = False
        self.threads = [
            *self._pump(client, self.upstream, from_client=True),
            *self._pump(self.upstream, client, from_client=False),
        ]
        for thread in self.threads:
            thread.start()

    def _pump(self, source: socket.socket, target: socket.socket, *, from_client: bool):
        due: queue.Queue[tuple[float, bytes | None]] = queue.Queue()

        def read() -> None:
            try:
                while True:
                    data = source.recv(CHUNK)
                    self._seen(from_client, bool(data))
                    due.put((time.monotonic() + self.proxy.delay, data or None))
                    if not data:
                        return
            except OSError:
                due.put((time.monotonic(), None))

        def write() -> None:
            try:
                while True:
                    at, data = due.get()
                    wait = at - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    if data is None:
                        target.shutdown(socket.SHUT_WR)
                        return
                    target.sendall(data)
            except OSError:
                pass
            finally:
                if not from_client:
                    self.close()

        return (
            threading.Thread(target=read, daemon=True, name="delay-proxy-read"),
            threading.Thread(target=write, daemon=True, name="delay-proxy-write"),
        )

    def _seen(self, from_client: bool, data: bool) -> None:
        if not data:
            return
        with self.proxy.lock:
            if from_client:
                self.last_from_client = True
            elif self.last_from_client:
                self.last_from_client = False
                self.proxy.round_trips += 1

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            try:
                sock.close()
            except OSError:
                pass


class DelayProxy:
    """Listen on `listen` (port 0 = any free port) and forward to `upstream`, `delay_ms` late each way."""

    def __init__(
        self, *, upstream: tuple[str, int], delay_ms: float, listen: tuple[str, int] = ("127.0.0.1", 0)
    ) -> None:
        self.upstream = upstream
        self.delay = delay_ms / 1000
        self.lock = threading.Lock()
        self.round_trips = 0
        self.connections = 0
        self._links: list[_Link] = []
        self._server = socket.create_server(listen)
        self.host, self.port = self._server.getsockname()[:2]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="delay-proxy-accept")

    def start(self) -> DelayProxy:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                link = _Link(self, client)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += 1
                self._links.append(link)

    def reset_counts(self) -> None:
        with self.lock:
            self.round_trips = 0
            self.connections = 0

    def stop(self) -> None:
        self._stopped.set()
        self._server.close()
        for link in self._links:
            link.close()

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", type=_address, required=True, help="host:port to forward to")
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0), help="host:port (default: any port)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="added each way (default 20: 40 ms RTT)")
    args = parser.parse_args()
    proxy = DelayProxy(upstream=args.upstream, delay_ms=args.delay_ms, listen=args.listen).start()
    print(f"forwarding {proxy.host}:{proxy.port} → {args.upstream[0]}:{args.upstream[1]}, +{args.delay_ms:g} ms each way")
    try:
        while True:
            time.sleep(5)
    except KeyboardInterrupt:
        pass
    finally:
        print(f"{proxy.connections} connection(s), {proxy.round_trips} round trip(s)")
        proxy.stop()


if __name__ == "__main__":
    main()
