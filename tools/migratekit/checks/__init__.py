"""The audit: every rule, the one runner that turns hits into Findings, ignores and the cache."""
