# The deny-list matches any jti by its SHA-256, deleted clients leave a tombstone, and
# client ids refuse control and format characters. Written by hand; RunPython computes the digests.

import hashlib

import django.utils.timezone
from django.db import migrations, models

import drf_m2m_auth.models


def _escape(jti, limit=100):
    # A copy of drf_m2m_auth.ids.escape at the time of writing: migrations must not change meaning.
    import unicodedata

    out = []
    for char in jti:
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char) in ("Cc", "Cf") or char in "\u2028\u2029" or "\ud800" <= char <= "\udfff":
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def digest_jtis(apps, schema_editor):
    RevokedToken = apps.get_model("drf_m2m_auth", "RevokedToken")
    entries = RevokedToken.objects.using(schema_editor.connection.alias)
    for pk, jti in entries.values_list("pk", "jti"):
        digest = hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest()
        entries.filter(pk=pk).update(jti_sha256=digest, jti_display=_escape(jti))


def restore_jtis(apps, schema_editor):
    # Going back: the original jti is only known where the display kept it whole and unescaped.
    RevokedToken = apps.get_model("drf_m2m_auth", "RevokedToken")
    entries = RevokedToken.objects.using(schema_editor.connection.alias)
    for pk, digest, display in entries.values_list("pk", "jti_sha256", "jti_display"):
        if hashlib.sha256(display.encode("utf-8", "surrogatepass")).hexdigest() == digest:
            entries.filter(pk=pk).update(jti=display)
        else:
            entries.filter(pk=pk).update(jti=digest)  # unique, never matches: the entry is lost


class Migration(migrations.Migration):
    dependencies = [
        ("drf_m2m_auth", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="revokedtoken",
            name="jti_sha256",
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="revokedtoken",
            name="jti_display",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The jti, escaped and shortened for reading.",
                max_length=100,
                verbose_name="jti",
            ),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="revokedtoken",
            name="jti",
            field=models.CharField(max_length=255, null=True),
        ),
        migrations.RunPython(digest_jtis, restore_jtis),
        migrations.RemoveField(
            model_name="revokedtoken",
            name="jti",
        ),
        migrations.AlterField(
            model_name="revokedtoken",
            name="jti_sha256",
            field=models.CharField(
                help_text="The digest of the jti; what is matched.",
                max_length=64,
                unique=True,
                verbose_name="jti SHA-256",
            ),
        ),
        migrations.AlterField(
            model_name="client",
            name="client_id",
            field=models.CharField(
                help_text="The OAuth client id as the issuer's dashboard shows it (for Auth0, without the '@clients' suffix of the token's sub).",
                max_length=255,
                unique=True,
                validators=[drf_m2m_auth.models.validate_client_id],
                verbose_name="client id",
            ),
        ),
        migrations.CreateModel(
            name="DeletedClient",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("client_id", models.CharField(max_length=255, unique=True, verbose_name="client id")),
                ("was_active", models.BooleanField(verbose_name="was active")),
                ("tokens_valid_after", models.DateTimeField(blank=True, null=True, verbose_name="tokens valid after")),
                ("deleted", models.DateTimeField(default=django.utils.timezone.now, verbose_name="deleted")),
            ],
            options={
                "verbose_name": "deleted client (tombstone)",
                "verbose_name_plural": "deleted clients (tombstones)",
                "ordering": ["-deleted"],
            },
        ),
    ]
