"""The soak run's hand on the local issuer: mint every client's token, rotate keys. One long process.

Run with the issuer's settings (DJANGO_SETTINGS_MODULE=testproject.api.service_settings,
TESTPROJECT_ROLE=issuer, its SQLite file): it reads one JSON command per line on stdin and answers
one JSON line on stdout, so a fault costs no Django start-up. Commands:

``{"op": "mint", "plan": [[client_id, kind], ...], "out": PATH, "generation": N}``
``{"op": "rotate", "emergency": bool, ...the same...}``: rotate the signing key and mint the new
generation in the same transaction, so the new key and tokens signed by it appear at the same
moment (the token file is renamed into place right after the commit): "the new key is used the
moment it is published".
``{"op": "token_status", "client": ID, "kind": KIND, "out": PATH}``: revoke, in the issuer's Token
Status List, the current token of that client and kind (read from the token file), with the
operator's command ``issuer_token_status JTI --revoke``; answers the jti, the list and the list's ttl.

Every token carries a ``status`` claim (a slot in the issuer's status list), as the issuer's token
endpoint gives one, so that service-b checks the list on every request: each planned client is a
registered OAuth client of the issuer (created once, without a usable secret).

Token kinds: ``valid`` (and the ``watch_*`` kinds, valid at mint time), ``revoked_client`` (a
valid token of a client deactivated at service-b), ``expired``, ``wrong_aud``, ``tampered`` (a
valid token whose payload was changed after signing).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import django

LIFETIME = 3600
WRONG_AUDIENCE = "https://not-service-b.example"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tamper(token: str) -> str:
    """Same header and signature, a payload naming a different client: the signature no longer matches."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["client_id"] = claims["azp"] = "tampered-" + claims["client_id"]
    claims["sub"] = claims["client_id"] + "@clients"
    return ".".join([header, _b64(json.dumps(claims, separators=(",", ":")).encode()), signature])


def _registered(plan: list[list[str]]) -> dict:
    """The issuer's OAuthClient row of every planned client (a token's status slot names its client)."""
    from testproject.issuer.models import OAuthClient

    wanted = sorted({client_id for client_id, _ in plan})
    known = set(OAuthClient.objects.filter(client_id__in=wanted).values_list("client_id", flat=True))
    OAuthClient.objects.bulk_create([OAuthClient(client_id=c, name=c) for c in wanted if c not in known])
    return {c.client_id: c for c in OAuthClient.objects.filter(client_id__in=wanted)}


def mint_set(plan: list[list[str]], audience: str, scope: str) -> tuple[str, list[dict]]:
    """Every token of the plan, signed by the current key, as ``mint_access_token`` signs them.

    ``mint_access_token`` loads (and so validates) the private key for each token: about 0.1 s
    each on a busy machine. The key is loaded once here, so a generation costs milliseconds per
    token and a rotation's new tokens follow its commit at once.
    """
    from unittest import mock

    from testproject.issuer import keys
    from testproject.issuer.server import mint_access_token

    current = keys.signing_key()
    with mock.patch.object(keys, "signing_key", return_value=current):
        return current[0], _mint(plan, audience, scope, mint_access_token)


def _mint(plan, audience, scope, mint_access_token) -> list[dict]:
    now = int(time.time())
    good = SimpleNamespace(identifier=audience, token_lifetime=LIFETIME)
    other = SimpleNamespace(identifier=WRONG_AUDIENCE, token_lifetime=LIFETIME)
    clients = _registered(plan)
    out = []
    for client_id, kind in plan:
        client = clients[client_id]
        if kind == "expired":
            token, _, _ = mint_access_token(client, good, [scope], now=now - 7200, lifetime=3600)
        elif kind == "wrong_aud":
            token, _, _ = mint_access_token(client, other, [scope])
        else:
            token, _, _ = mint_access_token(client, good, [scope], now=now)
            if kind == "tampered":
                token = tamper(token)
        out.append({"client": client_id, "kind": kind, "token": token})
    return out


def write_set(out: Path, generation: int, kid: str, tokens: list[dict]) -> Path:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"generation": generation, "kid": kid, "tokens": tokens}))
    return tmp


def handle(command: dict) -> dict:
    from django.db import transaction

    from testproject.issuer import keys

    out = Path(command["out"])
    if command["op"] == "token_status":
        return revoke_status(out, command["client"], command["kind"])
    args = (command["plan"], command["audience"], command["scope"])
    started = time.time()
    if command["op"] == "mint":
        with transaction.atomic():  # one commit for every token's status slot, not one per token
            kid, tokens = mint_set(*args)
        tmp = write_set(out, command["generation"], kid, tokens)
        published = time.time()
        old = None
    elif command["op"] == "rotate":
        with transaction.atomic():
            old, _ = keys.rotate(revoke_current=bool(command.get("emergency")))
            kid, tokens = mint_set(*args)
            tmp = write_set(out, command["generation"], kid, tokens)
        published = time.time()  # committed: the JWKS now serves the new key
    else:
        return {"error": f"unknown op {command['op']!r}"}
    os.replace(tmp, out)
    return {"started": started, "published": published, "file_at": time.time(), "kid": kid, "old_kid": old}


def revoke_status(out: Path, client: str, kind: str) -> dict:
    """``issuer_token_status JTI --revoke`` on the current token of (client, kind)."""
    import io

    from django.core.management import call_command

    from testproject.issuer import statuslists
    from testproject.issuer.management.commands.issuer_token_status import jti_of

    current = json.loads(out.read_text())
    token = next(t["token"] for t in current["tokens"] if t["client"] == client and t["kind"] == kind)
    jti, said = jti_of(token), io.StringIO()
    started = time.time()  # the row is committed between started and ended: started is the conservative time
    call_command("issuer_token_status", jti, "--revoke", stdout=said)
    ended = time.time()
    return {
        "started": started,
        "ended": ended,
        "jti": jti,
        "generation": current["generation"],
        "list_ttl": statuslists.list_ttl(),
        "said": said.getvalue().strip(),
    }


def main() -> None:
    django.setup()
    from testproject.issuer import keys, statuslists

    keys.ensure_keys()
    print(json.dumps({"ready": True, "list_ttl": statuslists.list_ttl()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = handle(json.loads(line))
        except Exception as exc:  # reported to the harness, which stops the run
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
