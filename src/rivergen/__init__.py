"""RiverGen data-source service."""

__version__ = "0.1.0"
