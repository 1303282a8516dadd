"""CSV export: `?format=csv` on a list endpoint that offers it gives every matching row as CSV.

The rows are the endpoint's JSON rows, one column per field, in the serializer's order; decimals
and times as the JSON has them. An export is not paginated (the filters narrow it instead).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        if isinstance(data, Mapping) and "results" in data:
            data = data["results"]
        if isinstance(data, Mapping):
            # A single object (errors never get here: core.api.JSONErrors answers them in JSON).
            for key, value in data.items():
                writer.writerow([key, _cell(value)])
            return buffer.getvalue().encode()
        rows = list(data or [])
        if rows:
            header = list(rows[0])
            writer.writerow(header)
            for row in rows:
                writer.writerow([_cell(row.get(name)) for name in header])
        return buffer.getvalue().encode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # A cell a spreadsheet would run as a formula (=, +, -, @) is quoted as text; a negative
    # number is a number, not a formula.
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
