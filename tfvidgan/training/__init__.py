"""tfvidgan.training."""
