"""Small shared foundations of synthgen and the trainer (the config base, ...)."""
