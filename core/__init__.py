"""The bottom layer: shared infrastructure every app may use, which imports no app and no project.

- `core.errors`: `DomainError`, the one base of the domain errors; each carries its HTTP status.
- `core.api`: the API's one error format and exception handler, the JSON parser, pagination,
  throttles and the error pages of /api/ paths.
- `core.env`: typed readers of environment variables (the settings use them).
- `core.redis`: one Redis client per process and URL.
- `core.admin`: the owner-scoped admin base (a user sees and picks only their own rows).

`make lint` checks with import-linter (pyproject.toml) that nothing here imports an app.
"""
