"""The device log model now belongs to the devicelog app (state only: the table stays)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("maintenance", "0001_initial"),
        ("devicelog", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="DeviceLogEntry")],
            database_operations=[],
        ),
    ]
