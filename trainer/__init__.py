"""Motion HMR trainer. Stands beside ``synthgen`` and reads it through ``synthgen.store`` and
``synthgen.core`` only, as ``tests/test_architecture.py`` enforces (``trainer predict`` reads the
video stores ``synthgen build-video`` writes)."""
