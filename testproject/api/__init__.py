"""service-b: a small DRF API protected by drf_m2m_auth, plus the demo and its process helpers."""
