# Grants belong to an API, and every change is numbered. Generated, then edited by
# hand: existing grants get this project's API (DRF_M2M_AUTH["API"], by default its single
# audience) when it can be determined, else they stay empty (granted at no API) until 0006, which
# refuses to run without it; this migration never refuses, so that 0005's refusal (clients
# without an issuer) leaves a schema the code can run on. The change sequence starts where the
# old stamps' count of changes stood, so the version the status view reports never goes backwards.

import django.utils.timezone
from django.db import migrations, models

STAMP_STEP = 1 << 20  # querysets.STAMP_STEP when this was written


def fill_api(apps, schema_editor):
    from django.core.exceptions import ImproperlyConfigured

    from drf_m2m_auth.conf import m2m_settings

    ResourceGrant = apps.get_model("drf_m2m_auth", "ResourceGrant")
    grants = ResourceGrant.objects.using(schema_editor.connection.alias).filter(api="")
    if grants.exists():
        try:
            grants.update(api=m2m_settings.API)
        except ImproperlyConfigured:
            pass  # 0006 refuses, naming the setting


def start_sequence(apps, schema_editor):
    RevocationState = apps.get_model("drf_m2m_auth", "RevocationState")
    states = RevocationState.objects.using(schema_editor.connection.alias)
    state, _ = states.get_or_create(pk=1)
    start = state.clients_stamp // STAMP_STEP + state.tokens_stamp // STAMP_STEP
    states.filter(pk=1).update(sequence=start, pruned_through=start)


class Migration(migrations.Migration):
    dependencies = [
        ("drf_m2m_auth", "0003_client_issuer"),
    ]

    operations = [
        migrations.CreateModel(
            name="RevocationChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("sequence", models.BigIntegerField(db_index=True)),
                ("kind", models.CharField(max_length=8)),
                ("issuer", models.CharField(blank=True, max_length=255)),
                ("key", models.CharField(blank=True, max_length=255)),
                ("created", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                "verbose_name": "revocation change",
                "default_permissions": (),
            },
        ),
        migrations.AlterModelOptions(
            name="resourcegrant",
            options={
                "ordering": ["api", "resource"],
                "verbose_name": "resource grant",
                "verbose_name_plural": "resource grants",
            },
        ),
        migrations.RemoveConstraint(
            model_name="resourcegrant",
            name="drf_m2m_auth_grant_unique",
        ),
        migrations.AddField(
            model_name="resourcegrant",
            name="api",
            field=models.CharField(
                db_index=True,
                default="",
                help_text="The API's identifier (its DRF_M2M_AUTH['API'], usually its audience). Empty: this project's API.",
                max_length=255,
                verbose_name="API",
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="revocationstate",
            name="pruned_through",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="revocationstate",
            name="sequence",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(fill_api, migrations.RunPython.noop),
        migrations.RunPython(start_sequence, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="resourcegrant",
            constraint=models.UniqueConstraint(
                fields=("client", "api", "resource"), name="drf_m2m_auth_grant_api_unique"
            ),
        ),
    ]
