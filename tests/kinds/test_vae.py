"""The VAE kind (Kingma & Welling 2014): its step and test terms against the same written out, its options (beta
and the KL warm-up, binarization, bf16, compile), in one process and as rank 1 of a mirrored world."""

import torch

from tests.helpers.tiny import CPU, SHAPE, make, uint8
from vaelab import kinds
from vaelab.device import World
from vaelab.noise import EVAL_SEED_OFFSET


def test_the_vae_and_cvae_test_terms_of_rank_1_cover_its_shard(tmp_path, mirror, monkeypatch):
    """The VAE's and the conditional VAE's logged test terms are those of this process's shard (rank 1 of 2),
    with the split's seeded noise, summed across the processes (here: the mirror's double)."""
    import vaelab.kinds.vae
    from vaelab.kinds.cvae import conditional_terms
    from vaelab.training.split import split_terms

    monkeypatch.setattr(vaelab.kinds.vae, "wrap", lambda module, compile, device, world: module)  # DDP wants a group
    world, images, labels = World(rank=1, size=2), uint8(11, seed=3), torch.arange(11) % 3
    vae = kinds.get("vae").trainer(make(tmp_path, epochs=2, seed=1, binarize=True), SHAPE, CPU, world)
    got = vae.test_terms(images, None, 1)
    seed = 1 + EVAL_SEED_OFFSET
    assert got == split_terms(vae.model, images, binarize=True, seed=seed, batch_size=4, world=world)
    assert got != split_terms(vae.model, images, binarize=True, seed=seed, batch_size=4)
    cvae = kinds.get("cvae").trainer(make(tmp_path, epochs=2, kind="cvae", classes=3, seed=1), SHAPE, CPU, world)
    got = cvae.test_terms(images, labels, 1)
    options = {"binarize_images": False, "seed": seed, "batch_size": 4, "device": CPU}
    assert got == conditional_terms(cvae.model, images, labels, world=world, **options)
    assert got != conditional_terms(cvae.model, images, labels, world=World(), **options)
