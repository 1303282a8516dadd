from django.apps import AppConfig
from django.db.models.signals import post_migrate

GUARD_MIGRATION = ("trading", "0005_books_guard")


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from core.append_only import reinstall_after_migrate
        from trading.ledger_guards import TRADING_GUARDS

        # After every migrate: a migration that rebuilds a table (SQLite) drops its triggers.
        post_migrate.connect(
            reinstall_after_migrate(TRADING_GUARDS, migration=GUARD_MIGRATION),
            sender=self,
            weak=False,
            dispatch_uid="trading.ledger_guards",
        )
