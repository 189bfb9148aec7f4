"""Customer SSH public keys: format checks and storage."""
