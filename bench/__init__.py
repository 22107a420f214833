"""Benchmarks: figures to read, never assertions (performance targets live here, not in tests)."""
