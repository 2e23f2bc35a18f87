# Every client names its issuer. Written by hand. Refuses to run, naming the command
# that fixes it, while a client has no issuer (0003 fills it only when exactly one issuer is
# configured: with several, nothing is guessed).

from django.db import migrations, models

SET_ISSUER_HINT = "manage.py m2m_set_issuer --issuer ISSUER [--client CLIENT_ID ...]"


def require_issuers(apps, schema_editor):
    Client = apps.get_model("drf_m2m_auth", "Client")
    empty = Client.objects.using(schema_editor.connection.alias).filter(issuer__isnull=True)
    count = empty.count()
    if count:
        sample = ", ".join(repr(c) for c in empty.order_by("client_id").values_list("client_id", flat=True)[:5])
        raise RuntimeError(
            f"{count} client(s) have no issuer yet ({sample}{', ...' if count > 5 else ''}): several issuers are "
            f"configured, so none was guessed. Say which issuer each belongs to with `{SET_ISSUER_HINT}`, "
            "then run migrate again. Until then their revocation state applies at every issuer and their "
            "grants at none."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("drf_m2m_auth", "0004_grant_api_change_sequence"),
    ]

    operations = [
        migrations.RunPython(require_issuers, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="client",
            name="issuer",
            field=models.CharField(
                help_text=(
                    "The trusted issuer (the iss of its tokens) that issued this client id. Left empty, it is "
                    "filled in when exactly one issuer is configured."
                ),
                max_length=255,
                verbose_name="issuer",
            ),
        ),
    ]
