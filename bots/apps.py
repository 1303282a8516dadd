from django.apps import AppConfig
from django.db.models.signals import post_migrate

GUARD_MIGRATION = ("bots", "0008_books_guard")


class BotsConfig(AppConfig):
    name = "bots"
    verbose_name = "Bots"

    def ready(self) -> None:
        from bots.ledger_guards import BOTS_GUARDS
        from core.append_only import reinstall_after_migrate

        # After every migrate: a migration that rebuilds a table (SQLite) drops its triggers.
        post_migrate.connect(
            reinstall_after_migrate(BOTS_GUARDS, migration=GUARD_MIGRATION),
            sender=self,
            weak=False,
            dispatch_uid="bots.ledger_guards",
        )
