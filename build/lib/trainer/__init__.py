"""Motion HMR trainer. Stands beside ``synthgen`` and imports none of its internals."""
