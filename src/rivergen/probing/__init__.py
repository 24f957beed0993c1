"""The connection test: thread pool, single-flight and their helpers."""
