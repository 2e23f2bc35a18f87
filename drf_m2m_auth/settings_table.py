"""The rows of conf.SETTINGS: every DRF_M2M_AUTH key's default, validator, check id and doc (reST).

Import the table from :mod:`drf_m2m_auth.conf` (``conf.SETTINGS``); it lives in this module only so
that conf.py stays readable. The docs' settings reference is generated from it.
"""

from __future__ import annotations

from typing import Any

from . import validation as v
from .settings_row import Setting
from .settings_status import STATUS_LIST_SETTINGS

__all__: list[str] = []  # public through drf_m2m_auth.conf


SETTINGS: dict[str, Setting] = {
    "ISSUERS": Setting(
        None,
        v.issuers,
        "E030",
        """The trusted issuers, one dict per issuer: ``issuer`` (required, the exact
``iss``), ``audience`` (required in every entry: a string or a list), and optionally
``issuer_aliases``, ``jwks_url`` (else OIDC discovery), ``algorithms``, ``scope_claims``,
``client_id_claims``, ``leeway``, ``require_at_jwt_typ``, ``unregistered_clients``,
``status_list``, ``status_list_hosts`` and ``preset`` (``"auth0"``, ``"okta"``, ``"entra"``,
``"keycloak"``). A key left out comes from the preset, then from the top-level setting. A token's
``iss`` picks its entry before any key is fetched; an ``iss`` no entry names is a 401. Cannot be
combined with ``ISSUER``, ``AUDIENCE`` or ``JWKS_URL``. See :doc:`/guide/issuers`.""",
    ),
    "ISSUER": Setting(
        None,
        v.strings(required=False),
        "E003",
        """The one-issuer shorthand (with ``AUDIENCE``): the ``iss`` your tokens carry,
exactly. Auth0's ends with a slash (``https://tenant.auth0.com/``). A list of issuers still
works but is deprecated (warning ``W030``): use ``ISSUERS``.""",
    ),
    "AUDIENCE": Setting(
        None,
        v.strings(required=False),
        "E004",
        """With ``ISSUER``: your API's identifier; a string or a list. A token's ``aud``
(a string or a list) must hold one of them.""",
    ),
    "JWKS_URL": Setting(
        None,
        v.jwks_url,
        "E006",
        """``None``: OIDC discovery of each issuer. A URL for all issuers, or a dict
``{issuer: url}``. Keys are fetched over ``https`` only (loopback hosts and
``INSECURE_JWKS_HOSTS`` excepted).""",
    ),
    "ALGORITHMS": Setting(
        ["RS256"],
        v.algorithms,
        "E005",
        """Allowed signing algorithms: RS*, PS*, ES*, EdDSA. ``none`` and HS* are
refused.""",
    ),
    "LEEWAY": Setting(
        0,
        v.number(),
        "E007",
        """Seconds of clock skew allowed for ``exp``, ``nbf`` and ``iat``. A few seconds
(5) avoids rejecting tokens minted by an issuer whose clock runs slightly ahead.""",
    ),
    "SCOPE_CLAIMS": Setting(
        ["scope", "scp", "permissions"],
        v.string_list(what="a non-empty list of claim names"),
        "E008",
        """Claims whose values are unioned into the scopes.""",
    ),
    "CACHE": Setting(
        "default",
        v.cache_alias,
        "E009",
        """The Django cache alias shared by all workers, for the JWKS and the
revocation generation. ``None`` keeps the JWKS per process; revocation changes then reach
other processes by each one reading the database's revocation stamps every
``REVOCATION_CHECK_INTERVAL`` (one primary-key query per interval).""",
    ),
    "CACHE_KEY_PREFIX": Setting(
        "drf_m2m_auth",
        v.cache_key_prefix,
        "E013",
        """Prefix of every key the package writes to ``CACHE``: identical
across one fleet's services, different between deployments that share one cache server
(staging and production), so neither sees the other's entries. Independent of Django's own
``CACHES[...]["KEY_PREFIX"]``, which Django prepends to every key of that cache, ours included:
this one separates the package's entries, Django's separates whole projects. Changing it starts
every shared entry afresh (keys fetched again, one extra fetch per fleet). 1 to 64 characters
from ``A-Z a-z 0-9 _ . -`` (no ``:``, which separates a key's parts, and no space).""",
    ),
    "DATABASE": Setting(
        "default",
        v.database_alias,
        "E025",
        """The database alias that holds drf_m2m_auth's tables (clients, grants,
revocation). With ``drf_m2m_auth.routers.M2MRouter`` in ``DATABASE_ROUTERS``, every service of a
fleet points this alias at one shared database (the control plane's).""",
    ),
    "API": Setting(
        None,
        v.api_identifier,
        "E032",
        """This service's API identifier in a fleet: its grants are the ``ResourceGrant``
rows whose ``api`` is this value (a grant for another API gives nothing here). ``None``: the
audience, when every trusted issuer entry has that same single audience; with several audiences
(or entries that differ) it must be set. 1 to 255 characters, no control characters or surrounding
spaces. See :doc:`/guide/fleet`.""",
    ),
    "REALM": Setting(
        "api",
        v.realm,
        "E014",
        """The ``realm`` in ``WWW-Authenticate``.""",
    ),
    "REQUIRE_AT_JWT_TYP": Setting(
        False,
        v.boolean,
        "E012",
        """Require ``typ: at+jwt`` (RFC 9068). Auth0 sets it only when the API's
Token Dialect is an RFC 9068 profile; turn this on when your issuer always types its tokens.""",
    ),
    "MAX_TOKEN_BYTES": Setting(
        8192,
        v.number(positive=True, integer=True),
        "E007",
        """Longer tokens are rejected before any parsing.""",
    ),
    "HTTP_TIMEOUT": Setting(
        5.0,
        v.number(positive=True),
        "E007",
        """Seconds, a total deadline for one JWKS or discovery request.""",
    ),
    "JWKS_MAX_BYTES": Setting(
        512 * 1024,
        v.number(positive=True, integer=True),
        "E007",
        """Larger JWKS or discovery responses are refused.""",
    ),
    "JWKS_DEFAULT_TTL": Setting(
        600,
        v.number(),
        "E007",
        """Seconds to keep a JWKS whose response has no ``max-age``.""",
    ),
    "JWKS_MIN_TTL": Setting(
        60,
        v.number(),
        "E007",
        """The smallest TTL, whatever ``max-age`` says.""",
    ),
    "JWKS_MAX_TTL": Setting(
        86400,
        v.number(),
        "E007",
        """The largest TTL, whatever ``max-age`` says.""",
    ),
    "JWKS_REFRESH_COOLDOWN": Setting(
        30,
        v.number(),
        "E007",
        """At most one refresh per this many seconds for unknown ``kid`` values,
across every process sharing ``CACHE``.""",
    ),
    "JWKS_STALE_IF_ERROR": Setting(
        6 * 3600,
        v.number(),
        "E007",
        """Seconds past the TTL during which the last good keys keep being served
while the issuer is unreachable.""",
    ),
    "JWKS_COLD_RETRY": Setting(
        2,
        v.number(),
        "E007",
        """Seconds before a process with no keys at all asks again (doubling up to the
cooldown); meanwhile requests get a 503 with ``Retry-After``.""",
    ),
    "INSECURE_JWKS_HOSTS": Setting(
        [],
        v.string_list(required=False, what="a list of host names"),
        "E015",
        """Host names allowed to serve JWKS or discovery over plain ``http`` (loopback
hosts always are).""",
    ),
    "VERIFIED_TOKEN_CACHE_SIZE": Setting(
        10000,
        v.number(integer=True),
        "E007",
        """Verified tokens kept per process; ``0`` disables the cache.""",
    ),
    "UNREGISTERED_CLIENTS": Setting(
        "allow",
        v.choice("allow", "deny"),
        "E010",
        """Whether a valid token from a client with no ``Client`` row authenticates
(``"allow"``) or is a 401 (``"deny"``). ``HasResourceGrant`` denies unregistered clients
either way.""",
    ),
    "REVOCATION_CHECK_INTERVAL": Setting(
        1.0,
        v.number(),
        "E007",
        """Seconds between a process's looks at the shared revocation generation: the
bound on how long a revocation takes to reach every worker.""",
    ),
    "REVOCATION_DB_CHECK_INTERVAL": Setting(
        60.0,
        v.number(optional=True),
        "E007",
        """Seconds between a process's direct looks at the database's revocation
stamps, which bounds staleness even if a change never reached the cache. ``None`` or ``0``
turns this periodic check off.""",
    ),
    "DPOP": Setting(
        "allowed",
        v.choice("disabled", "allowed", "required"),
        "E020",
        """``"allowed"``: ``DPoP`` and ``Bearer`` tokens are both accepted, and
a DPoP-bound token (``cnf.jkt``) always needs a valid proof. ``"required"``: a plain bearer
token is a 401 (certificate-bound tokens still pass). ``"disabled"``: the ``DPoP`` scheme is
left to other authenticators, and DPoP-bound tokens are still refused as bearer tokens.""",
    ),
    "DPOP_ALGORITHMS": Setting(
        ["ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"],
        v.algorithms,
        "E021",
        """Proof signing algorithms
accepted, sent as ``algs`` in DPoP challenges; asymmetric only.""",
    ),
    "DPOP_PROOF_MAX_AGE": Setting(
        60,
        v.number(positive=True),
        "E022",
        """Seconds after its ``iat`` during which a proof is accepted.""",
    ),
    "DPOP_CLOCK_SKEW": Setting(
        5,
        v.number(positive=True),
        "E022",
        """Seconds a proof's ``iat`` may lie in the future (and the age window widens).""",
    ),
    "DPOP_NONCE": Setting(
        False,
        v.boolean,
        "E012",
        """Require server nonces (RFC 9449 section 9): a proof without the current
nonce is a 401 ``use_dpop_nonce`` with a ``DPoP-Nonce`` header. Nonces are stateless (an
HMAC keyed by ``SECRET_KEY``), so every worker accepts every other worker's.""",
    ),
    "DPOP_NONCE_LIFETIME": Setting(
        300,
        v.number(positive=True),
        "E022",
        """Seconds a nonce stays valid; a fresh one is sent once half of it has passed.""",
    ),
    "DPOP_REPLAY_CACHE_DOWN": Setting(
        "local",
        v.choice("local", "reject"),
        "E024",
        """What DPoP replay protection does while ``CACHE`` is unreachable:
``"local"`` claims proofs in the worker's own memory (a replay to the same worker is still
refused), ``"reject"`` answers 503 with ``Retry-After`` to DPoP requests until it is back.""",
    ),
    "DPOP_FORWARDED_HEADERS": Setting(
        False,
        v.boolean,
        "E012",
        """Build the URL a proof's ``htu`` must match from ``X-Forwarded-Proto``
and ``X-Forwarded-Host`` (the right-most value of each), only for requests from
``TRUSTED_PROXIES``. Otherwise Django's ``request.scheme`` and ``get_host()`` are used.

The proxy contract: every proxy in ``TRUSTED_PROXIES`` *sets* both headers on every request
(nginx: ``proxy_set_header X-Forwarded-Proto $scheme;`` and
``proxy_set_header X-Forwarded-Host $host;``), overwriting whatever the client sent. A request
from a trusted proxy without either header is a 401 ``invalid_dpop_proof``
(``forwarded_headers_missing``), and the forwarded host must be one of ``ALLOWED_HOSTS``
(``forwarded_headers_invalid`` otherwise), so a client can never choose the ``htu`` host.""",
    ),
    "TRUSTED_PROXIES": Setting(
        [],
        v.trusted_proxies,
        "E023",
        """IP addresses or networks (``"10.0.0.0/8"``) of your TLS terminators: the
only peers whose forwarded client certificate and ``X-Forwarded-*`` headers are believed.""",
    ),
    "MTLS_CERT_HEADER": Setting(
        None,
        v.header_name,
        "E023",
        """The header in which the TLS terminator forwards the verified client
certificate (nginx: ``proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;`` and
``"X-SSL-Client-Cert"`` here). Without it, certificate-bound tokens are always refused.""",
    ),
}

SETTINGS.update(STATUS_LIST_SETTINGS)  # last in the reference, as in the table before the split

# name -> default, as users write it (README and benchmarks read it).
DEFAULTS: dict[str, Any] = {name: row.default for name, row in SETTINGS.items()}
