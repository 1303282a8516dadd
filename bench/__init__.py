"""Benchmarks and fault drills; each script prints its figures (see the README's Benchmarks table)."""
