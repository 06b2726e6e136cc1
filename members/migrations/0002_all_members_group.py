"""The all-members trust group always exists: default publications go to it."""

from django.db import migrations


def create_all_members_group(apps, schema_editor):
    TrustGroup = apps.get_model("members", "TrustGroup")
    TrustGroup.objects.get_or_create(
        is_all_members=True,
        defaults={"name": "All members", "slug": "all-members",
                  "description": "Every member of the exchange."},
    )


class Migration(migrations.Migration):
    dependencies = [("members", "0001_initial")]

    operations = [migrations.RunPython(create_all_members_group, migrations.RunPython.noop)]
