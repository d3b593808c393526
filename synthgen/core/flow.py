"""The stored crop flow's one shared constant, for builders, the store and its readers."""

from __future__ import annotations

#: Pixels per stored flow unit of every store synthgen builds (config ``store.flow_quantum``,
#: :func:`synthgen.store.create_store`; *decision*: 1/16 px, within 1/32 px of the computed flow).
DEFAULT_FLOW_QUANTUM = 1.0 / 16.0
