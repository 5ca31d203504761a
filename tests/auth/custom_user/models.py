"""A custom user model unlike Django's: another USERNAME_FIELD, short, no PermissionsMixin."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models


class PioneerManager(BaseUserManager):  # type: ignore[type-arg]
    def create_user(self, handle: str, password: str | None = None, **fields: Any) -> Pioneer:
        user = self.model(handle=handle, **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user


class Pioneer(AbstractBaseUser):
    handle = models.CharField(max_length=20, unique=True)
    is_active = models.BooleanField(default=True)

    USERNAME_FIELD = "handle"

    objects = PioneerManager()
