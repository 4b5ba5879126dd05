"""tfvidgan.data."""
