"""m2m_revoke: revoke a client's tokens, one token by jti, or (de)activate a client.

A client is (issuer, client_id): ``--issuer`` says which trusted issuer's client (or jti) is
meant; it may be left out only when exactly one issuer is configured.

Exit status: 0 done (also when there was nothing left to do: every form is idempotent),
1 bad input or unknown client (nothing written: all changes share one transaction),
2 usage error (argparse).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from drf_m2m_auth import revocation
from drf_m2m_auth.admin import propagation_text
from drf_m2m_auth.ids import escape
from drf_m2m_auth.models import Client, RevokedToken, validate_jti
from drf_m2m_auth.revocation_issuers import resolve_issuer

audit = logging.getLogger("drf_m2m_auth.audit")
MAX_EXP_AHEAD = dt.timedelta(days=366)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _datetime(text: str) -> dt.datetime | None:
    try:
        return parse_datetime(text.replace(" ", "T", 1))
    except ValueError:  # well-formed but impossible, such as February 30th
        return None


def parse_exp(value: str, now: dt.datetime) -> dt.datetime:
    """A token's exp: NumericDate seconds (as in the claim) or ISO 8601 with a timezone."""
    text = value.strip()
    when: dt.datetime | None
    seconds = _number(text)
    if seconds is not None:
        if not math.isfinite(seconds) or seconds < 0 or seconds > 1e11:
            raise CommandError(f"--exp {value!r} is out of range: seconds since 1970, not milliseconds")
        when = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    else:
        when = _datetime(text)
        if when is None:
            raise CommandError(
                f"--exp {value!r} is not a date: give the token's exp claim (seconds since "
                "1970) or an ISO 8601 time such as 2030-01-31T12:00:00Z"
            )
        if timezone.is_naive(when):
            raise CommandError(f"--exp {value!r} has no timezone: add Z (UTC) or an offset such as +02:00")
    if when <= now:
        raise CommandError(
            f"--exp {when.isoformat()} is in the past: that token is already rejected as "
            "expired, nothing to revoke (check the date)"
        )
    if when - now > MAX_EXP_AHEAD:
        raise CommandError(
            f"--exp {when.isoformat()} is more than a year away; access tokens live minutes "
            "to hours (is it in milliseconds?)"
        )
    return when


class Command(BaseCommand):
    help = (
        "Revoke access tokens: every token of a client issued before now (--client), one token "
        "by its jti (--jti with --exp), or (de)activate a client. A client is revoked or deactivated at "
        "every API at once, whatever API its grants are for (m2m_grant --api takes one API's grants away). "
        "With a cache shared by every "
        "process (Redis, Memcached, file or database cache), every worker rejects the tokens within "
        "about REVOCATION_CHECK_INTERVAL seconds; with a per-process cache (LocMem, Dummy) or none, "
        "within REVOCATION_DB_CHECK_INTERVAL seconds. The output says which applies."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--client",
            action="append",
            default=[],
            metavar="CLIENT_ID",
            help="reject every token of this client issued before now (repeatable)",
        )
        parser.add_argument(
            "--issuer",
            metavar="ISSUER",
            help="the trusted issuer of the clients and the jti (required when several are configured)",
        )
        parser.add_argument("--jti", metavar="JTI", help="reject the one token with this jti claim")
        parser.add_argument(
            "--exp",
            metavar="WHEN",
            help="with --jti: the token's exp (seconds since 1970, or ISO 8601 with timezone); "
            "the deny-list entry is purged after it",
        )
        parser.add_argument(
            "--jti-client",
            metavar="CLIENT_ID",
            default="",
            help="with --jti: the client it was issued to, for the record",
        )
        parser.add_argument("--reason", default="", help="with --jti: a note kept with the entry")
        parser.add_argument(
            "--deactivate",
            action="append",
            default=[],
            metavar="CLIENT_ID",
            help="deactivate this client: all its tokens are rejected (repeatable)",
        )
        parser.add_argument(
            "--activate",
            action="append",
            default=[],
            metavar="CLIENT_ID",
            help="activate this client again (repeatable)",
        )
        parser.add_argument(
            "--purge-expired", action="store_true", help="delete deny-list entries whose token has expired anyway"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, **opts):
        self.json = opts["json"]
        self.events: list[dict] = []
        now = timezone.now()
        jti, exp = opts["jti"], None
        if jti is None and (opts["exp"] or opts["jti_client"] or opts["reason"]):
            raise CommandError("--exp, --jti-client and --reason go with --jti")
        if not any([opts["client"], jti is not None, opts["deactivate"], opts["activate"], opts["purge_expired"]]):
            raise CommandError("nothing to do: give --client, --jti/--exp, --deactivate, --activate or --purge-expired")
        if jti is not None:
            try:
                validate_jti(jti)
            except ValidationError:
                raise CommandError("--jti is empty (or longer than any accepted token's jti)") from None
            if not opts["exp"]:
                raise CommandError("--jti needs --exp, the token's exp, so the entry can be purged after it")
            exp = parse_exp(opts["exp"], now)
        both = set(opts["deactivate"]) & set(opts["activate"])
        if both:
            raise CommandError(f"both --activate and --deactivate for: {', '.join(sorted(both))}")
        named = opts["client"] + opts["deactivate"] + opts["activate"]
        self.issuer = ""
        if named or jti is not None or opts["issuer"]:
            try:
                self.issuer = resolve_issuer(opts["issuer"])
            except ValueError as exc:
                raise CommandError(f"{exc} Give --issuer; nothing was changed.") from None

        with transaction.atomic(using=router.db_for_write(Client)):
            clients = self._clients(named)
            for client_id in dict.fromkeys(opts["client"]):
                self._revoke_client(clients[client_id], now)
            for client_id in dict.fromkeys(opts["deactivate"]):
                self._set_active(clients[client_id], False)
            for client_id in dict.fromkeys(opts["activate"]):
                self._set_active(clients[client_id], True)
            if jti is not None and exp is not None:  # parse_exp ran: --jti requires --exp
                self._revoke_jti(jti, exp, opts["jti_client"], opts["reason"])
            if opts["purge_expired"]:
                count = RevokedToken.objects.purge_expired(now)
                self._say(
                    {"action": "purge_expired", "count": count},
                    f"purged {count} expired deny-list entr{'y' if count == 1 else 'ies'}",
                )
        self._announce()

    def _clients(self, ids: list[str]) -> dict[str, Client]:
        if not ids:
            return {}
        rows = Client.objects.select_for_update().filter(client_id__in=set(ids))
        found = {c.client_id: c for c in rows.filter(issuer=self.issuer)}
        # A client whose issuer is not recorded yet (see m2m_set_issuer) is acted on too: its
        # revocation applies at every issuer, so revoking it never widens access.
        for client in rows.filter(issuer__isnull=True):
            found.setdefault(client.client_id, client)
        missing = sorted(set(ids) - set(found))
        if missing:
            raise CommandError(
                f"unknown client id(s) at issuer {self.issuer!r}: {', '.join(escape(m, 80) for m in missing)} "
                "(register them first, e.g. "
                "m2m_grant --create ID RESOURCE; nothing was changed)"
            )
        return found

    def _say(self, event: dict, text: str, changed: bool = True) -> None:
        self.events.append({**event, "changed": changed})
        if not self.json:
            self.stdout.write(self.style.SUCCESS(text) if changed else text)

    def _where(self, client: Client) -> str:
        return f"at {client.issuer}" if client.issuer else "at every issuer (no issuer recorded yet)"

    def _revoke_client(self, client: Client, now: dt.datetime) -> None:
        client.revoke_tokens(now)
        audit.info(
            "revoked tokens of client %s of %s issued before %s",
            escape(client.client_id),
            escape(client.issuer or "every issuer"),
            now.isoformat(),
        )
        self._say(
            {
                "action": "revoke_tokens",
                "issuer": client.issuer,
                "client_id": client.client_id,
                "issued_before": now.isoformat(),
            },
            f"client '{escape(client.client_id)}' {self._where(client)}: every token issued before "
            f"{now.isoformat()} is rejected",
        )

    def _set_active(self, client: Client, active: bool) -> None:
        word = "active" if active else "inactive"
        event = {
            "action": "activate" if active else "deactivate",
            "issuer": client.issuer,
            "client_id": client.client_id,
        }
        where = self._where(client)
        if client.is_active == active:
            self._say(event, f"client '{escape(client.client_id)}' {where}: already {word}", changed=False)
            return
        client.activate() if active else client.deactivate()
        audit.info("client %s of %s set %s", escape(client.client_id), escape(client.issuer or "every issuer"), word)
        self._say(event, f"client '{escape(client.client_id)}' {where}: now {word}")

    def _revoke_jti(self, jti: str, exp: dt.datetime, client_id: str, reason: str) -> None:
        entry, created = RevokedToken.objects.revoke(jti, exp, issuer=self.issuer, client_id=client_id, reason=reason)
        shown = entry.jti_display
        event = {
            "action": "revoke_jti",
            "issuer": self.issuer,
            "jti": shown,
            "jti_sha256": entry.jti_sha256,
            "exp": entry.exp.isoformat(),
        }
        if created:
            audit.info("revoked jti %s of %s until %s", shown, escape(self.issuer), entry.exp.isoformat())
            self._say(event, f"jti {shown!r} at {self.issuer}: rejected until {entry.exp.isoformat()}")
        else:
            self._say(
                event, f"jti {shown!r} at {self.issuer}: already rejected until {entry.exp.isoformat()}", changed=False
            )

    def _announce(self) -> None:
        info = revocation.announcement()
        if self.json:
            self.stdout.write(json.dumps({"changes": self.events, **info}, indent=2))
        elif any(e["changed"] for e in self.events):
            self.stdout.write(propagation_text())
        if not info["announced"] and info["cross_process_cache"]:
            self.stderr.write(
                self.style.WARNING(
                    "warning: the shared cache is unreachable, so workers were not notified; the change is "
                    "stored and workers find it in the database (at once if they cannot reach the cache "
                    "either, otherwise within REVOCATION_DB_CHECK_INTERVAL)"
                )
            )
