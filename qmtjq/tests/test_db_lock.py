"""The SQLite writer queue hands the lock over in arrival order (issue 12: tail latency)."""

import threading
import time

from qmtjq.db import FifoLock


def test_waiters_get_the_lock_in_the_order_they_asked():
    """Ten threads queue behind a held lock one after another; they run in exactly that order."""
    lock = FifoLock()
    lock.acquire()
    order: list[int] = []
    threads = []
    for number in range(10):
        thread = threading.Thread(target=lambda n=number: (lock.acquire(), order.append(n), lock.release()))
        thread.start()
        threads.append(thread)
        while len(lock._waiters) < number + 1:  # this thread is queued before the next one starts
            time.sleep(0.001)
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == list(range(10))
    assert not lock._held and not lock._waiters


def test_the_releasing_thread_cannot_jump_the_queue():
    """A holder that releases and at once asks again goes behind the thread already waiting."""
    lock = FifoLock()
    lock.acquire()
    got: list[str] = []
    waiter = threading.Thread(target=lambda: (lock.acquire(), got.append("waiter"), lock.release()))
    waiter.start()
    while not lock._waiters:
        time.sleep(0.001)
    lock.release()
    lock.acquire()
    got.append("releaser")
    lock.release()
    waiter.join(5)
    assert got == ["waiter", "releaser"]
