"""A real Django cache backend (LocMemCache) that can be switched to fail like an unreachable Redis."""

from __future__ import annotations

from django.core.cache.backends.locmem import LocMemCache


class BrokenCache(LocMemCache):
    """Every operation raises ConnectionError while ``BrokenCache.down`` is True (the class flag,
    so a test reaches the instance Django's cache handler builds)."""

    down = True

    def _fail(self) -> None:
        if type(self).down:
            raise ConnectionError("cache unreachable (test)")

    def add(self, *args, **kwargs):
        self._fail()
        return super().add(*args, **kwargs)

    def get(self, *args, **kwargs):
        self._fail()
        return super().get(*args, **kwargs)

    def set(self, *args, **kwargs):
        self._fail()
        return super().set(*args, **kwargs)

    def get_many(self, *args, **kwargs):
        self._fail()
        return super().get_many(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._fail()
        return super().delete(*args, **kwargs)
