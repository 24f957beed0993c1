"""Primitives shared by connectors, tunnels and probing: deadlines and classified failures."""
