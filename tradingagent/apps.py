"""Django's admin app, on the project's own AdminSite (tradingagent.admin_site)."""

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    default_site = "tradingagent.admin_site.AdminSite"
