"""Benchmarks: `make bench` (see README.md here). Deselected from `make test`."""
