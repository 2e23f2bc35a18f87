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


def call_rejecting_api(token_url, api_url, cache_path, barrier, results, seconds, reject_cooldown):
    """Call an API that rejects every token for ``seconds``; report the statuses seen."""
    import time

    import requests

    creds = ClientCredentials(
        token_url,
        "svc-a",
        "s3cret-worker",
        "https://api.example.com",
        cache=SqliteCache(cache_path),
        reject_cooldown=reject_cooldown,
    )
    barrier.wait(timeout=30)
    started = time.time()
    statuses, deadline = [], time.monotonic() + seconds
    with requests.Session() as session:
        while time.monotonic() < deadline:  # bounded by the deadline
            statuses.append(session.get(api_url, auth=creds.auth, timeout=5).status_code)
            time.sleep(0.02)
    results.put((sorted(set(statuses)), len(statuses), "django" in sys.modules, started, time.time()))
