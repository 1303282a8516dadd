"""Django's admin app, on the project's own AdminSite (tradingagent.admin_site).

Not named apps.py: the project package is not one of the apps (the Makefile lists those by it).
"""

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    default_site = "tradingagent.admin_site.AdminSite"
