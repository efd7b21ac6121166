"""convlens web service."""
