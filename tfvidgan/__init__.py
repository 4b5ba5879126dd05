"""tfvidgan: video generation by navigating a GAN's image manifold, and learned CUP reconstruction."""

__version__ = "0.1.0"
