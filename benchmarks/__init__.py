"""Benchmarks run by `ivr bench`."""
