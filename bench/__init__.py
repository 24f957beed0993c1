"""Benchmarks that print ratios against the raw drivers; run with `make bench`."""
