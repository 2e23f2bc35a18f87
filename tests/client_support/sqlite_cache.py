"""A tiny cross-process cache with Django's get/set/add/delete, backed by one SQLite file."""

import sqlite3
import time
from contextlib import contextmanager


class SqliteCache:
    """``add`` is atomic across processes (unlike Django's FileBasedCache), which a lock needs."""

    def __init__(self, path):
        self.path = str(path)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT, expires REAL)")

    @contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=10, isolation_level="IMMEDIATE")
        try:
            with db:  # commit on success, roll back on error
                yield db
        finally:
            db.close()

    def get(self, key, default=None):
        with self._connect() as db:
            row = db.execute("SELECT value FROM cache WHERE key = ? AND expires > ?", (key, time.time())).fetchone()
        return row[0] if row else default

    def set(self, key, value, timeout=300):
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, value, time.time() + timeout))

    def add(self, key, value, timeout=300):
        with self._connect() as db:  # IMMEDIATE: the check and the insert are one transaction
            db.execute("DELETE FROM cache WHERE key = ? AND expires <= ?", (key, time.time()))
            return (
                db.execute("INSERT OR IGNORE INTO cache VALUES (?, ?, ?)", (key, value, time.time() + timeout)).rowcount
                == 1
            )

    def delete(self, key):
        with self._connect() as db:
            db.execute("DELETE FROM cache WHERE key = ?", (key,))


class DictCache:
    """The same interface in one process, for tests that need no second process."""

    def __init__(self):
        self.data = {}

    def get(self, key, default=None):
        value, expires = self.data.get(key, (default, 0))
        return value if expires > time.time() else default

    def set(self, key, value, timeout=300):
        self.data[key] = (value, time.time() + timeout)

    def add(self, key, value, timeout=300):
        if self.get(key) is not None:
            return False
        self.set(key, value, timeout)
        return True

    def delete(self, key):
        self.data.pop(key, None)
