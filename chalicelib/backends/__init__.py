"""VM backends: one module per provider behind the interface in `base`."""
