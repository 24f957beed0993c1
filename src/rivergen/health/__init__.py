"""Health history, summaries and scheduled checks."""
