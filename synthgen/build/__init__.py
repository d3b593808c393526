"""Build: the shard engine, its executors (serial, Ray), the store lock and one job per kind of
store (synthetic, 3DPW, video) and the camera-motion cache."""
