"""Small shared foundations of synthgen and its consumers (the trainer may import
``synthgen.core`` and ``synthgen.store`` only): the config base, the SMPL model reader and the SMPL
joint forward pass, the joint sets, the typed input errors and the default flow quantum. Nothing
here imports the rest of synthgen."""
