"""Motion HMR trainer. Stands beside ``synthgen`` and reads it through ``synthgen.store`` and
``synthgen.core`` only, as ``tests/test_architecture.py`` enforces (``trainer.predict`` still runs
synthgen's video-clip code: the one exception listed there)."""
