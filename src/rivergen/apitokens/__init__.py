"""Service tokens: long-lived credentials of an organization for CI jobs and scripts."""
