"""The device log model moves here from the maintenance app; its table stays.

Only Django's state changes (the table ``maintenance_devicelogentry`` with its
rows, indexes and constraints is left as it is), and the content type follows
the model so permissions and admin history keep pointing at it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor, *, old="maintenance", new="devicelog"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    if not types.filter(app_label=new, model="devicelogentry").exists():
        types.filter(app_label=old, model="devicelogentry").update(app_label=new)


def move_content_type_back(apps, schema_editor):
    move_content_type(apps, schema_editor, old="devicelog", new="maintenance")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
        ("maintenance", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='DeviceLogEntry',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('at', models.DateTimeField(db_index=True, verbose_name='time')),
                        ('category', models.CharField(choices=[('security', 'Security'), ('communication', 'Communication'), ('load_management', 'Load management'), ('configuration', 'Configuration')], max_length=20, verbose_name='category')),
                        ('level', models.CharField(choices=[('info', 'Information'), ('warning', 'Warning'), ('error', 'Error')], default='info', max_length=10, verbose_name='level')),
                        ('event', models.CharField(help_text='Machine-readable event code.', max_length=64, verbose_name='event')),
                        ('message', models.TextField(verbose_name='message')),
                        ('station_identity', models.CharField(blank=True, db_index=True, max_length=30, verbose_name='station')),
                        ('zone_name', models.CharField(blank=True, max_length=64, verbose_name='zone')),
                        ('username', models.CharField(blank=True, max_length=150, verbose_name='user')),
                        ('remote_addr', models.GenericIPAddressField(blank=True, null=True, verbose_name='remote address')),
                        ('data', models.JSONField(blank=True, default=dict, verbose_name='details')),
                        ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'device log entry',
                        'verbose_name_plural': 'device log',
                        'db_table': 'maintenance_devicelogentry',
                        'ordering': ['-at', '-id'],
                        'indexes': [models.Index(fields=['category', '-at'], name='devicelog_category_at')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, move_content_type_back, elidable=True),
    ]
