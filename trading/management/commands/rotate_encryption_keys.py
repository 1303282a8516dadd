"""Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEY.

Rotation: put the new key first in FIELD_ENCRYPTION_KEY (the old ones after it, so the app keeps
reading the rows not yet rotated), deploy, run this command, then drop the old keys. It is
idempotent: a value already encrypted with the first key is left alone, so a second run changes
nothing. Values no configured key decrypts are reported (model, id, field) and left as they are;
the command then exits 1, because retiring a key would not be safe yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.db.models.functions import Cast

from trading.fields import Ciphertext, EncryptedTextField, current_fernet, fernet

BATCH = 500


@dataclass
class Counts:
    rotated: int = 0
    current: int = 0
    changed_meanwhile: int = 0
    unreadable: list[str] = field(default_factory=list)


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    return [
        (model, model_field)
        for model in apps.get_models()
        for model_field in model._meta.concrete_fields
        if isinstance(model_field, EncryptedTextField)
    ]


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEY (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        current = current_fernet()
        every_key = fernet()
        total = Counts()
        for model, model_field in encrypted_fields():
            counts = self._rotate(model, model_field, current=current, every_key=every_key, dry_run=dry_run)
            self.stdout.write(
                f"{model._meta.label}.{model_field.name}: {counts.rotated} "
                f"{'to re-encrypt' if dry_run else 're-encrypted'}, {counts.current} already on the first key, "
                f"{counts.changed_meanwhile} changed meanwhile, {len(counts.unreadable)} unreadable"
            )
            total.rotated += counts.rotated
            total.current += counts.current
            total.changed_meanwhile += counts.changed_meanwhile
            total.unreadable += counts.unreadable
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(
            f"{verb} {total.rotated}, {total.current} already on the first key, "
            f"{total.changed_meanwhile} changed meanwhile, {len(total.unreadable)} unreadable"
        )
        if total.unreadable:
            raise CommandError(
                "no key of FIELD_ENCRYPTION_KEY decrypts: "
                + ", ".join(total.unreadable[:50])
                + (" ..." if len(total.unreadable) > 50 else "")
                + ". They are left as they are: add the key they were written with to FIELD_ENCRYPTION_KEY and run "
                "again, or enter those keys again. Do not retire any key yet."
            )
        if not dry_run:
            self.stdout.write(self.style.SUCCESS("every secret is encrypted with the first key: the others can go"))

    def _rotate(
        self,
        model: type[models.Model],
        model_field: EncryptedTextField,
        *,
        current: Any,
        every_key: Any,
        dry_run: bool,
    ) -> Counts:
        counts = Counts()
        # The raw column (Cast to a plain text field skips the decrypting from_db_value).
        raw = Cast(model_field.name, output_field=models.TextField())
        rows = (
            model._default_manager.exclude(**{f"{model_field.name}__isnull": True})
            .annotate(_raw=raw)
            .exclude(_raw="")
            .order_by("pk")
            .values_list("pk", "_raw")
        )
        last_pk: Any = None
        while True:
            batch = list(rows.filter(pk__gt=last_pk)[:BATCH] if last_pk is not None else rows[:BATCH])
            if not batch:
                return counts
            last_pk = batch[-1][0]
            with transaction.atomic():
                for pk, token in batch:
                    try:
                        current.decrypt(token.encode())
                        counts.current += 1
                        continue
                    except InvalidToken:
                        pass
                    try:
                        rotated = every_key.rotate(token.encode()).decode()
                    except InvalidToken:
                        counts.unreadable.append(f"{model._meta.label} id={pk} {model_field.name}")
                        continue
                    if dry_run:
                        counts.rotated += 1
                        continue
                    # Conditional on the value read: a row the app rewrote meanwhile (with the
                    # first key, as it always encrypts) is left alone.
                    updated = model._default_manager.filter(pk=pk, **{model_field.name: Ciphertext(token)}).update(
                        **{model_field.name: Ciphertext(rotated)}
                    )
                    if updated:
                        counts.rotated += 1
                    else:
                        counts.changed_meanwhile += 1
