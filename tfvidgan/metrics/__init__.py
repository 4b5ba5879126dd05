"""tfvidgan.metrics."""
