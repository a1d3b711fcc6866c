"""Benchmarks that run djtui side by side with the tools users use today."""
