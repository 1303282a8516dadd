# The trading books become append-only in the database: triggers refuse deleting orders, fills,
# positions, equity points, adjustments (and the account of a bot with books), and refuse updates
# of what is history (trading.ledger_guards says which; core.append_only renders the SQL for
# PostgreSQL and SQLite). They are installed again after every migrate (trading.apps).

from django.db import migrations

from core import append_only
from trading.ledger_guards import TRADING_GUARDS


def install(apps, schema_editor):
    append_only.install(schema_editor.connection, TRADING_GUARDS)


def remove(apps, schema_editor):
    append_only.remove(schema_editor.connection, TRADING_GUARDS)


class Migration(migrations.Migration):

    dependencies = [
        ("trading", "0004_books_append_only"),
    ]

    operations = [migrations.RunPython(install, remove, elidable=False)]
