"""Small shared foundations of synthgen and its consumers (the trainer may import
``synthgen.core`` and ``synthgen.store`` only): the config base, the SMPL model reader and the SMPL
joint forward pass."""
