"""Configuration every layer reads: the service settings and the channel configuration."""
