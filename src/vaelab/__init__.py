"""vaelab: train, evaluate and explore variational autoencoders on images."""

__version__ = "0.1.0"
