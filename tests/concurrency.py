"""Run a test's worker on many threads at once."""

from __future__ import annotations

import threading
from typing import Callable


def run_in_threads(worker: Callable[[int], None], count: int = 16, timeout: float = 60.0) -> None:
    """Start ``worker(n)`` for n in range(count) together; fail if any is still running
    after ``timeout`` seconds (a hang)."""
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), 'a worker thread hung'


def search_in_this_process(client) -> list:
    """Run a search with a client that was pickled into this (worker) process."""
    return client.search_for_studies()


def search_instances_in_this_process(client) -> list:
    """Search all instances with a client that was pickled into this (worker) process."""
    return client.search_for_instances()
