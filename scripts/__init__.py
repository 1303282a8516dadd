"""Developer and CI scripts (run from the repository root); importable so tests can exercise them."""
