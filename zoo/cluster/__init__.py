"""Placement on a Ray cluster: node profiles, planning on each node, the engine-server actor.

Ray is an optional extra (``zoo-launcher[ray]``) and zoo must be installed on every node: each node
plans for itself (its hardware, engines, engine environments and hub caches) and runs the
engine's own server under a small supervisor actor. Only ``zoo.cluster.actor`` imports ray at
the top, and it is imported inside functions, so nothing here slows the CLI or the core.
"""
