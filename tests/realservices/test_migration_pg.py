"""The upgrade to grants per API and the change sequence (0004-0006) on a real PostgreSQL.

The scenarios of tests/test_migration_0005.py (a database at 0003 with clients, grants and stamps
migrates forward: api filled, sequence started at the stamps' count; 0006 refuses without an API
while grants need one, and finishes once it is set; no grants, no API needed), each on its own
database of the session's PostgreSQL cluster. PostgreSQL runs each migration in a transaction
too, so a refused 0006 leaves the database at 0005.
"""

from __future__ import annotations

import pytest

from tests import test_migration_0005 as upgrade

from .servers import django_env

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("scenario", upgrade.SCENARIOS, ids=lambda s: s.__name__)
def test_upgrade_to_grants_per_api_on_postgresql(postgres, scenario):
    db = postgres.create_database(f"m2m_api_{scenario.__name__}")
    scenario(django_env(postgres.env(db)))
