# Every grant names its API. Written by hand. Fills the grants 0004 left empty with this
# project's DRF_M2M_AUTH["API"]; refuses to run, naming the setting, while it cannot be determined
# (several audiences and no "API": nothing is guessed). Until then those grants apply at no API.

from django.db import migrations


def require_api(apps, schema_editor):
    ResourceGrant = apps.get_model("drf_m2m_auth", "ResourceGrant")
    grants = ResourceGrant.objects.using(schema_editor.connection.alias).filter(api="")
    count = grants.count()
    if not count:
        return
    from django.core.exceptions import ImproperlyConfigured

    from drf_m2m_auth.conf import m2m_settings

    try:
        api = m2m_settings.API
    except ImproperlyConfigured as exc:
        raise RuntimeError(
            f"{count} existing grant(s) need the API they belong to, and DRF_M2M_AUTH['API'] cannot be "
            f"determined ({exc}). Set DRF_M2M_AUTH['API'] to the identifier of the API these grants are "
            "for (usually its audience), then run migrate again. Until then they grant nothing."
        ) from exc
    grants.update(api=api)


class Migration(migrations.Migration):
    dependencies = [
        ("drf_m2m_auth", "0005_client_issuer_required"),
    ]

    operations = [
        migrations.RunPython(require_api, migrations.RunPython.noop),
    ]
