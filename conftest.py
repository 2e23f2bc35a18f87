"""Registers the package's pytest plugin (drf_m2m_auth.testing) for a checkout that is not pip-installed.

An installed package registers it through its ``pytest11`` entry point; a plain checkout has no
entry point, so ``m2m_issuer`` would be "not found". Registering twice is avoided.
"""


def pytest_configure(config):
    import drf_m2m_auth.testing as plugin

    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "drf_m2m_auth.testing")
