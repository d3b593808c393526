"""Builders of known-answer test data for tests and benchmarks (they may use every layer of
synthgen; nothing in the pipeline imports them)."""
