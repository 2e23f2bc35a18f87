"""A local OAuth 2.0 client_credentials issuer: the stand-in for Auth0 in the demo and the tests.

NOT A PRODUCTION ISSUER. It exists so that ``manage.py demo`` and the end-to-end tests can play
the machine-to-machine scenario on a laptop with no account anywhere. It keeps its private signing
keys in the database in clear, answers only loopback callers, has no rate limiting, no audit log,
no consent, no MFA for the dashboard and no key escrow. Use Auth0, Okta, Keycloak, Entra ID or
another real authorization server for anything that matters.

What it does, shaped like Auth0 so that the app is tested against realistic tokens:

* ``POST oauth/token`` (authlib's Django ``AuthorizationServer`` and its client_credentials grant):
  client_secret_basic or client_secret_post, form or JSON body, a required ``audience``;
  RFC 9068 JWT access tokens (``typ: at+jwt``; ``sub`` is ``<client_id>@clients`` as Auth0 writes
  it; ``client_id``, ``azp``, ``scope``, ``iat``, ``exp``, ``jti``) signed RS256 with a ``kid``;
* errors as Auth0 answers them: ``access_denied`` (unknown API, no client grant for it, scopes not
  granted), ``unauthorized_client`` (grant type not allowed), ``invalid_client``;
* ``.well-known/jwks.json`` publishing the current key, the *next* key (so that a rotation never
  surprises a resource server that cached the JWKS) and recently retired keys;
* ``.well-known/openid-configuration`` (and RFC 8414's ``oauth-authorization-server``).

Operator commands: ``issuer_api``, ``issuer_client``, ``issuer_rotate_key``, ``issuer_token``.
"""
