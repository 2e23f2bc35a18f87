"""Settings for the upgrade runs (tests/upgrade_scenario.py): the real-service settings, plus the
DRF_M2M_AUTH keys given as JSON in M2M_TEST_AUTH (two issuers, say) replacing the issuer keys."""

import json
import os

from tests.realservices.worker_settings import *  # noqa: F401,F403
from tests.realservices.worker_settings import DRF_M2M_AUTH as _BASE

DRF_M2M_AUTH = dict(_BASE)
if os.environ.get("M2M_TEST_AUTH"):
    for _key in ("ISSUER", "ISSUERS", "AUDIENCE", "JWKS_URL"):
        DRF_M2M_AUTH.pop(_key, None)
    DRF_M2M_AUTH.update(json.loads(os.environ["M2M_TEST_AUTH"]))
