"""Data sources: per-engine configuration, encrypted credentials, tenancy."""
