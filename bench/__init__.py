"""Benchmarks (not tests): scripts that start a local test bed and print figures."""
