"""The admin keeps no data of the platform: `Access` only holds the permission that
changes need (`django_admin.roles`), so that Django's users and groups can grant it."""

from __future__ import annotations

from django.db import models


class Access(models.Model):
    """What an operator may do beyond reading. Django hangs a permission on a model; its
    table stays empty (it is a table all the same, so that Django's generic views, such
    as the user admin's "view on site", find no row instead of failing on no table)."""

    class Meta:
        default_permissions = ()  # nobody adds, changes or deletes rows: there are none
        permissions = [
            (
                "manage_models",
                "Can manage models: upload and delete versions, create and rebind "
                "services, retrain, promote and roll back",
            )
        ]
