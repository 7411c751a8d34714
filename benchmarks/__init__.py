"""Benchmarks: `make bench`. Each reports ratios against a baseline from the same run."""
