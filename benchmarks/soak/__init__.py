"""The soak run: service-b under load while the issuer, Redis, PostgreSQL and workers fail.

``python benchmarks/soak/run.py --short|--long``; see benchmarks/soak/README.md.
"""
