"""Code run in child processes (multiprocessing "spawn") by the shared-cache test."""

import sys
import threading

from drf_m2m_auth.client import ClientCredentials

from .sqlite_cache import SqliteCache


def fetch_tokens(token_url, cache_path, barrier, results, threads=4):
    """Start ``threads`` threads together with the other processes; report what token() gave."""
    creds = ClientCredentials(
        token_url, "svc-a", "s3cret-worker", "https://api.example.com", cache=SqliteCache(cache_path)
    )
    seen = []
    barrier.wait(timeout=30)

    def call():
        seen.append(creds.token())

    pool = [threading.Thread(target=call) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    results.put((sorted(set(seen)), len(seen), "django" in sys.modules))
