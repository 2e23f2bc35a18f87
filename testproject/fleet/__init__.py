"""A fleet on one machine: a control plane and three API services sharing drf_m2m_auth's database.

``testproject.controlplane`` is the control plane (admin + the app, read-write on the shared
database); ``testproject.fleet.orders``, ``.billing`` and ``.shipping`` are three API services
(``base`` holds what they share). Every service keeps Django's own tables in its own SQLite file
(``default``) and reads drf_m2m_auth's tables through the ``fleet`` alias, routed by
``drf_m2m_auth.routers.M2MRouter``; in the real-engine test it connects to PostgreSQL as a role
with SELECT only. Everything else comes from the environment (see ``base.fleet_database``).
"""
