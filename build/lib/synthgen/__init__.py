"""synthgen: synthetic motion training data for sim2real 3D human pose (Doersch & Zisserman 2019)."""

__version__ = "0.1.0"
