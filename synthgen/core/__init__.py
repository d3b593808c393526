"""Code shared by synthgen and its consumers (the trainer may import ``synthgen.core`` and
``synthgen.store`` only): the SMPL model reader and the SMPL joint forward pass."""
