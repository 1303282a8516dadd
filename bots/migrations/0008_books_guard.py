# The bots' books become append-only in the database: triggers refuse deleting cycles and LLM
# calls, deleting a bot that has books, and updates of what is history (bots.ledger_guards says
# which; core.append_only renders the SQL for PostgreSQL and SQLite). They are installed again
# after every migrate (bots.apps).

from django.db import migrations

from bots.ledger_guards import BOTS_GUARDS
from core import append_only


def install(apps, schema_editor):
    append_only.install(schema_editor.connection, BOTS_GUARDS)


def remove(apps, schema_editor):
    append_only.remove(schema_editor.connection, BOTS_GUARDS)


class Migration(migrations.Migration):

    dependencies = [
        ("bots", "0007_books_append_only"),
        ("trading", "0005_books_guard"),
    ]

    operations = [migrations.RunPython(install, remove, elidable=False)]
