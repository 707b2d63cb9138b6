"""Helpers shared by the protocol area's tests."""

import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The cast's passwords are hashed for every test; the default hasher costs ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
