"""Benchmarks: ``python -m benchmarks [name ...]`` runs ``benchmarks/bench_<name>.py``'s ``main``."""
