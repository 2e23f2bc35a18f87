# A client is (issuer, client_id). Written by hand. This migration adds a nullable
# issuer to clients, tombstones and the jti deny-list, and fills it when exactly one issuer is
# configured (DRF_M2M_AUTH, read now). With several, nothing is guessed: the rows stay empty until
# `manage.py m2m_set_issuer --issuer ISS [--client ID ...]` fills them, and 0005 (issuer required)
# refuses to run while any client has none. Meanwhile an empty client's revocation state applies
# at every issuer and its grants at none; an empty tombstone or denied jti applies at every issuer.

from django.db import migrations, models

import drf_m2m_auth.models

MODELS = ("Client", "DeletedClient", "RevokedToken")


def fill_issuer(apps, schema_editor):
    from drf_m2m_auth.revocation_issuers import only_issuer

    issuer = only_issuer()
    if issuer is None:
        return  # several issuers (or none valid): m2m_set_issuer says which rows belong where
    for name in MODELS:
        model = apps.get_model("drf_m2m_auth", name)
        model.objects.using(schema_editor.connection.alias).filter(issuer__isnull=True).update(issuer=issuer)


def check_unique_without_issuer(apps, schema_editor):
    # Going back: client ids (and jti digests, and tombstones) become unique on their own again.
    for name, field in (("Client", "client_id"), ("DeletedClient", "client_id"), ("RevokedToken", "jti_sha256")):
        model = apps.get_model("drf_m2m_auth", name)
        rows = model.objects.using(schema_editor.connection.alias)
        values = list(rows.values_list(field, flat=True))
        if len(values) != len(set(values)):
            raise RuntimeError(
                f"Cannot unapply 0003: some {name} {field} values exist at several issuers; "
                "delete the duplicates first."
            )


class Migration(migrations.Migration):
    dependencies = [
        ("drf_m2m_auth", "0002_jti_digest_tombstones"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="client",
            options={"ordering": ["client_id", "issuer"], "verbose_name": "client", "verbose_name_plural": "clients"},
        ),
        migrations.AddField(
            model_name="client",
            name="issuer",
            field=models.CharField(
                help_text=(
                    "The trusted issuer (the iss of its tokens) that issued this client id. Left empty, it is "
                    "filled in when exactly one issuer is configured."
                ),
                max_length=255,
                null=True,
                verbose_name="issuer",
            ),
        ),
        migrations.AddField(
            model_name="deletedclient",
            name="issuer",
            field=models.CharField(
                blank=True,
                help_text="Empty: the client had no issuer recorded, and the tombstone applies at every issuer.",
                max_length=255,
                null=True,
                verbose_name="issuer",
            ),
        ),
        migrations.AddField(
            model_name="revokedtoken",
            name="issuer",
            field=models.CharField(
                blank=True,
                help_text="The jti is denied in this issuer's tokens only; empty (older entries): at every issuer.",
                max_length=255,
                null=True,
                verbose_name="issuer",
            ),
        ),
        migrations.RunPython(fill_issuer, check_unique_without_issuer),
        migrations.AlterField(
            model_name="client",
            name="client_id",
            field=models.CharField(
                help_text=(
                    "The OAuth client id as the issuer's dashboard shows it (for Auth0, without "
                    "the '@clients' suffix of the token's sub)."
                ),
                max_length=255,
                validators=[drf_m2m_auth.models.validate_client_id],
                verbose_name="client id",
            ),
        ),
        migrations.AlterField(
            model_name="deletedclient",
            name="client_id",
            field=models.CharField(max_length=255, verbose_name="client id"),
        ),
        migrations.AlterField(
            model_name="revokedtoken",
            name="client_id",
            field=models.CharField(
                blank=True,
                db_index=True,
                help_text="For the record only; the jti (at its issuer) is matched.",
                max_length=255,
                verbose_name="client id",
            ),
        ),
        migrations.AlterField(
            model_name="revokedtoken",
            name="jti_sha256",
            field=models.CharField(
                db_index=True,
                help_text="The digest of the jti; what is matched.",
                max_length=64,
                verbose_name="jti SHA-256",
            ),
        ),
        migrations.AddConstraint(
            model_name="client",
            constraint=models.UniqueConstraint(fields=("issuer", "client_id"), name="drf_m2m_auth_client_unique"),
        ),
        migrations.AddConstraint(
            model_name="deletedclient",
            constraint=models.UniqueConstraint(fields=("issuer", "client_id"), name="drf_m2m_auth_tombstone_unique"),
        ),
        migrations.AddConstraint(
            model_name="revokedtoken",
            constraint=models.UniqueConstraint(fields=("issuer", "jti_sha256"), name="drf_m2m_auth_revoked_unique"),
        ),
    ]
