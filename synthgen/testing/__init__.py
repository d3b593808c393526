"""Builders of known-answer test data for tests and benchmarks (3DPW files, flow pairs, made
clips with known motion), quality measures (superpixels), and the suites every crop-flow backend
and every executor must pass. They may use every layer of synthgen; nothing in synthgen imports
them; tests and benchmarks import them (benchmarks never import tests)."""
