"""The stand-in MiniQMT as its own process, for a trading PC run as a subprocess (remote-mode tests).

A real MiniQMT is a separate program: killing the PC's worker leaves its orders in place. Here the
test process keeps the `FakeMiniQmt` and serves it on a local socket (`TerminalServer`); in the PC
process, `python -m execution.tests.xt_stub.remote <manage.py args>` loads the genuine xttrader.py over
the xtpythonclient stand-in whose terminal is a `RemoteTerminal`: every native call is forwarded, every
answer and push comes back on the socket. The PC can be killed at any step and started again.

PC environment: XT_STUB_TERMINAL=host:port (required); XT_STUB_DIE_AT=before_send | before_report | after_report
kills the PC (SIGKILL to itself) the first time it reaches that step.
"""

import os
import signal
import sys
import threading
from multiprocessing.connection import Client, Listener

AUTHKEY = b"xt-stub-test-only"


# -- test side ------------------------------------------------------------------------------------
class _PeerClient:
    """The terminal's view of one client session living in the PC process."""

    def __init__(self, conn, session):
        self.conn, self.session = conn, session
        self.connected = False
        self.subscribed = set()
        self._send = threading.Lock()
        self.muted = False  # the PC was killed: nothing more goes out

    def deliver(self, topic, *args):
        if self.muted:
            return
        with self._send:
            try:
                self.conn.send(("deliver", topic, args))
            except OSError:
                self.muted = True

    def reply(self, result):
        with self._send:
            self.conn.send(("reply", result))

    def stop(self):
        self.connected = False
        try:
            self.conn.close()
        except OSError:
            pass


class TerminalServer:
    """Serves `terminal` on 127.0.0.1; `on_order(order)` runs after the terminal accepted an order and
    before its answer goes back (a test kills the PC there: the order stays at the broker, unanswered)."""

    def __init__(self, terminal):
        self.terminal = terminal
        self.listener = Listener(("127.0.0.1", 0), authkey=AUTHKEY)
        host, port = self.listener.address
        self.address = f"{host}:{port}"
        self.on_order = None
        self._stopped = False
        threading.Thread(target=self._accept, name="xt-stub-terminal", daemon=True).start()

    def _accept(self):
        while not self._stopped:
            try:
                conn = self.listener.accept()
            except (OSError, EOFError):
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        terminal, peer = self.terminal, None
        try:
            while True:
                method, args = conn.recv()
                if method == "hello":
                    peer = _PeerClient(conn, args[0])
                    peer.reply(None)
                    continue
                if method == "order_stock":
                    hook, self.on_order = self.on_order, None
                    before = {o.order_id for o in terminal.orders(args[1].m_strAccountID)}
                    peer.muted = hook is not None  # the answer and the pushes never reach the PC
                    terminal.order_stock(peer, *args)
                    if hook is not None:
                        new = [o for o in terminal.orders(args[1].m_strAccountID) if o.order_id not in before]
                        hook(new[0] if new else None)
                        return
                    peer.reply(None)
                    continue
                result = getattr(terminal, method)(peer, *args)
                peer.reply((result, peer.connected, sorted(peer.subscribed)))
        except (EOFError, OSError):
            pass
        finally:
            if peer is not None:
                peer.connected = False
                terminal.detach(peer)
            conn.close()

    def close(self):
        self._stopped = True
        self.listener.close()


# -- PC side --------------------------------------------------------------------------------------
class RemoteTerminal:
    """Stands where xtpythonclient expects a FakeMiniQmt; one socket per client session."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.address = (host, int(port))
        self.calls, self.handler_errors = [], []
        self._links = {}

    def _link(self, client):
        link = self._links.get(id(client))
        if link is None:
            conn = Client(self.address, authkey=AUTHKEY)
            replies = []
            ready = threading.Condition()
            link = (conn, replies, ready, threading.Lock())
            self._links[id(client)] = link
            threading.Thread(target=self._read, args=(client, link), daemon=True).start()
            self._call(client, "hello", client.session)
        return link

    def _read(self, client, link):
        conn, replies, ready, _ = link
        try:
            while True:
                message = conn.recv()
                if message[0] == "deliver":
                    _, topic, args = message
                    if topic == "Disconnected":
                        client.connected = False
                    client.deliver(topic, *args)
                else:
                    with ready:
                        replies.append(message[1])
                        ready.notify_all()
        except (EOFError, OSError):
            return

    def _call(self, client, method, *args):
        conn, replies, ready, lock = self._links[id(client)]
        with lock:
            conn.send((method, args))
            with ready:
                ready.wait_for(lambda: replies, timeout=30)
                return replies.pop(0) if replies else None

    def _state(self, client, method, *args):
        self._link(client)
        answer = self._call(client, method, *args)
        if answer is None:
            return -1
        result, connected, subscribed = answer
        client.connected, client.subscribed = connected, set(subscribed)
        return result

    def gate(self, request):
        return True

    def attach(self, client):
        return self._state(client, "attach")

    def detach(self, client):
        link = self._links.pop(id(client), None)
        if link is not None:
            link[0].close()

    def subscribe(self, client, account_id):
        return self._state(client, "subscribe", account_id)

    def order_stock(self, client, seq, req):
        self._link(client)
        self._call(client, "order_stock", seq, _plain(req))

    def cancel_order_stock(self, client, seq, req):
        self._state(client, "cancel_order_stock", seq, _plain(req))

    def query(self, client, what, req):
        return self._state(client, "query", what, _plain(req))


def _plain(req):
    """A request struct as a picklable object with the same m_* fields."""
    from types import SimpleNamespace

    fields = {name: getattr(req, name) for name in dir(req) if name.startswith("m_")}
    return SimpleNamespace(**fields)


class _Xtdata:
    """MiniQMT's market data on the PC: fixed prices from XT_STUB_PRICES ("600000.SH=10.00,...")."""

    def __init__(self, prices):
        self.prices = {code: float(last) for code, last in (p.split("=") for p in prices.split(",") if p)}

    def get_full_tick(self, codes):
        return {
            c: {"lastPrice": self.prices[c], "lastClose": self.prices[c]} for c in codes if c in self.prices
        }

    def get_instrument_detail(self, code):
        if code not in self.prices:
            return None
        last = self.prices[code]
        return {
            "PreClose": last,
            "PriceTick": 0.01,
            "UpStopPrice": round(last * 1.1, 2),
            "DownStopPrice": round(last * 0.9, 2),
            "InstrumentName": code,
            "OpenDate": "19991110",
            "InstrumentStatus": 0,
        }


def _die():
    """As abrupt as kill -9: no clean-up, no flush (TerminateProcess-like on Windows)."""
    if hasattr(signal, "SIGKILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(1)


def _patch_pc(die_at):
    import execution.calendar as calendar

    calendar.calendar_refresh_from_xtdata = lambda **kw: 0
    calendar.can_place_orders = lambda now, **kw: (True, "")
    calendar.can_cancel_orders = lambda now: True
    import execution.quotes as quotes

    quotes._default_xtdata._module = _Xtdata(os.environ.get("XT_STUB_PRICES", ""))
    if die_at == "before_send":
        import execution.services.rounds as rounds

        rounds.order_send = lambda **kw: _die()
    elif die_at == "before_report":
        from execution.remote.client import ServerClient

        real_report = ServerClient.report

        def report(self, body):
            if any(order.get("broker_order_id") for order in body.get("orders", [])):
                _die()  # the broker has the order; the server has not heard of it
            return real_report(self, body)

        ServerClient.report = report
    elif die_at == "after_report":
        from execution.remote.client import ServerClient

        real_report = ServerClient.report

        def report(self, body):
            answer = real_report(self, body)
            if any(order.get("fills") or order.get("filled_volume") for order in body.get("orders", [])):
                _die()  # the server stored the fill; the PC never marked the report sent
            return answer

        ServerClient.report = report


def main(argv):
    import django

    from . import genuine_xtquant, xtpythonclient

    address = os.environ["XT_STUB_TERMINAL"]
    terminal = RemoteTerminal(address)
    with genuine_xtquant():
        xtpythonclient.terminal_at = lambda path: terminal
        django.setup()
        _patch_pc(os.environ.get("XT_STUB_DIE_AT", ""))
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
