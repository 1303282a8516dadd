from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """User accounts: registration, passwords (change, reset by email), staff's second factor
    (TOTP) and the admin account. No models of its own: Django's user, django-otp's devices."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
