"""tfvidgan.models."""
