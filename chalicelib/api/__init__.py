"""HTTP routes, grouped by concept into Chalice blueprints."""
