"""vaelab: train, evaluate and explore variational autoencoders on images."""

__version__ = "0.1.0"


def load(run_dir, device="cpu"):
    """The trained model of a run directory, in eval mode (see `vaelab.run.load`)."""
    from vaelab.run import load as _load

    return _load(run_dir, device)
