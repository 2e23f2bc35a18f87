"""service-b for the soak run with a peer library instead of ours (``run.py --system NAME``).

The same topology, endpoints and environment as ``service_settings`` (PostgreSQL, Redis, nginx in
front), but ``/orders/`` is protected the way ``benchmarks/systems.py`` wires the peer (PyJWT +
PyJWKClient, simplejwt with JWK_URL, the Auth0 Django quickstart's authlib ResourceProtector): the
token and the scope only. Peers have no client registry, grants or revocation, so the soak run
gives them neither the control-plane changes nor the status-list revocation.

Environment: SOAK_SYSTEM (pyjwt, simplejwt, authlib) and what ``service_settings`` reads.
"""

import os
import sys
from pathlib import Path

from benchmarks.soak.service_settings import *  # noqa: F401,F403
from benchmarks.soak.service_settings import DRF_M2M_AUTH as _OURS

_BENCHMARKS = str(Path(__file__).resolve().parents[1])
if _BENCHMARKS not in sys.path:
    sys.path.insert(0, _BENCHMARKS)  # benchmarks/systems.py imports its siblings as top-level modules

import systems  # noqa: E402

ROOT_URLCONF = "benchmarks.soak.peer_urls"
SOAK_SYSTEM = os.environ.get("SOAK_SYSTEM", "pyjwt")
if SOAK_SYSTEM not in ("pyjwt", "simplejwt", "authlib"):
    raise RuntimeError(f"SOAK_SYSTEM must be pyjwt, simplejwt or authlib, not {SOAK_SYSTEM!r}")
_ALG = "RS256"  # the local issuer's keys (testproject/issuer/keys.py)
SOAK_SYSTEM_CONFIG = {
    "issuer": _OURS["ISSUER"],
    "jwks_url": _OURS["JWKS_URL"],
    "algorithms": [_ALG],
    "alg": _ALG,
}
globals().update(systems.SYSTEMS[SOAK_SYSTEM](SOAK_SYSTEM_CONFIG).settings())
# Nothing of ours on the request path: no default authentication or permission for any view.
REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [], "DEFAULT_PERMISSION_CLASSES": [], "UNAUTHENTICATED_USER": None}
