"""The `manage_models` permission and the "Model managers" group that holds it."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

APP_LABEL = "gits_site"
CODENAME = "manage_models"
PERMISSION_NAME = (
    "Can manage models: upload and delete versions, create and rebind services, retrain, "
    "promote and roll back"
)
GROUP = "Model managers"  # django_admin.roles.MANAGERS_GROUP, frozen here as migrations are


def create_group(apps: Any, schema_editor: Any) -> None:
    """The group, holding the permission. Django creates a model's permissions only after
    every migration ran (post_migrate), so this one makes it now, as Django would."""
    content_types = apps.get_model("contenttypes", "ContentType")
    permissions = apps.get_model("auth", "Permission")
    groups = apps.get_model("auth", "Group")
    content_type, _ = content_types.objects.get_or_create(app_label=APP_LABEL, model="access")
    permission, _ = permissions.objects.get_or_create(
        content_type=content_type, codename=CODENAME, defaults={"name": PERMISSION_NAME}
    )
    group, _ = groups.objects.get_or_create(name=GROUP)
    group.permissions.add(permission)


def remove_group(apps: Any, schema_editor: Any) -> None:
    """Undo `create_group` (the permission goes with its model's content type)."""
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    initial = True
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [
        migrations.CreateModel(
            name="Access",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                )
            ],
            options={
                "default_permissions": (),
                "permissions": [("manage_models", PERMISSION_NAME)],
            },
        ),
        migrations.RunPython(create_group, remove_group),
    ]
