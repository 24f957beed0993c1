"""Secret encryption, host policy and scrubbing."""
