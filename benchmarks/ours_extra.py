"""drf_m2m_auth-only parts of the run: case D (revocation and grant checks) and revocation checks.

Case D compares, on one cached token, in the same process and round:

* ``DF``: a full request, ``[HasScopes, HasResourceGrant]``, the client registered with a grant,
  ``M2MJWTAuthentication`` as shipped (revocation check included);
* ``DB``: the same request with ``[HasScopes]`` only and the revocation hook emptied;
* ``DAF`` / ``DAB``: the same two at the level of ``authenticate()``.

Case AS: ``authenticate()`` with one token reused that carries a Token Status List claim (its list,
served by the JWKS server, is fetched once at set-up): the cached-token path plus the status lookup.

And, to split case C's added cost, two more views timed alongside ``Cs`` and ``N``:

* ``CA``: ``M2MJWTAuthentication`` with no permission class (what authentication alone adds);
* ``CZ``: an authenticator that returns a ready (client, token) pair, with ``HasScopes`` (what DRF's
  authenticated path and the scope check add without any token work).
"""

from __future__ import annotations

import json
import time

from common import CLIENT_ID, b64d

RESOURCE = "orders"


class OursExtra:
    def __init__(self, worker):
        from rest_framework.authentication import BaseAuthentication
        from systems import _scoped_ours_view

        from drf_m2m_auth.authentication import M2MJWTAuthentication
        from drf_m2m_auth.models import Client, ResourceGrant
        from drf_m2m_auth.permissions import HasResourceGrant, HasScopes

        self.worker = worker
        client = Client.objects.create(client_id=CLIENT_ID, name="service-a")
        ResourceGrant.objects.create(client=client, resource=RESOURCE)
        self.client_pk = client.pk

        class WithoutClientState(M2MJWTAuthentication):
            """The shipped class with the revocation hook emptied: D's baseline, never used to pass."""

            def check_client_state(self, token):
                return None

        pair = M2MJWTAuthentication().authenticate(worker.drf_request(worker.tokens["Cs"]))

        class ReadyPair(BaseAuthentication):
            def authenticate(self, request):
                return pair

        self.auth_full = M2MJWTAuthentication().authenticate
        worker.check_ok(self.auth_full(worker.drf_request(worker.tokens["AS"])))  # fetches the status list
        self.auth_base = WithoutClientState().authenticate
        self.views = {
            "DF": _scoped_ours_view([M2MJWTAuthentication], [HasScopes, HasResourceGrant], RESOURCE),
            "DB": _scoped_ours_view([WithoutClientState], [HasScopes]),
            "CA": _scoped_ours_view([M2MJWTAuthentication], []),
            "CZ": _scoped_ours_view([ReadyPair], [HasScopes]),
        }

    def cases(self) -> dict[str, str]:
        tok = self.worker.tokens["D"]
        cs = self.worker.tokens["Cs"]
        return {"DF": tok, "DB": tok, "DAF": tok, "DAB": tok, "CA": cs, "CZ": cs, "AS": self.worker.tokens["AS"]}

    def authenticator(self, case: str):
        return self.auth_full if case == "DAF" else self.auth_base

    def view(self, case: str):
        return self.views[case]

    def post_check(self) -> dict:
        """Revocations must reach tokens already in the verified-token cache."""
        from django.utils import timezone
        from rest_framework.exceptions import APIException

        from drf_m2m_auth.conf import m2m_settings
        from drf_m2m_auth.models import Client, RevokedToken

        def refused(tok: str) -> bool:
            try:
                return not isinstance(self.worker.system.authenticate(self.worker.drf_request(tok)), tuple)
            except APIException:
                return True

        wait = float(m2m_settings.REVOCATION_CHECK_INTERVAL) + 0.5
        t = self.worker.tokens
        out = {"cached_token_accepted_before_revocation": not refused(t["Cs"]) and not refused(t["A"])}
        out["status_list_revoked_token_refused"] = refused(t["AS_revoked"]) and not refused(t["AS"])
        claims = json.loads(b64d(t["Cs"].split(".")[1]))
        RevokedToken.objects.revoke(
            claims["jti"],
            timezone.now() + timezone.timedelta(hours=5),
            issuer=claims["iss"],
            client_id=CLIENT_ID,
            reason="benchmark post-check",
        )
        time.sleep(wait)
        out["revoked_jti_refused_from_cache"] = refused(t["Cs"])
        out["other_jti_still_accepted"] = not refused(t["A"])
        Client.objects.get(pk=self.client_pk).deactivate()
        time.sleep(wait)
        out["deactivated_client_refused_from_cache"] = refused(t["A"])
        return out
