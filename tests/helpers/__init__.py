"""What the tests share (a test module never imports another): `tiny`, the in-process trainer's configuration,
images and recording progress bar; `world`, the mirrored torch.distributed; `processes`, `python -m vaelab` and
torchrun on this checkout (`ddp_step.py` is the worker torchrun runs); `runs`, the end-to-end training runs'
helpers; `files`, the data files the tests write; `fuzz`, the property tests' settings; `html`, reading reports;
`fixtures`, the paths of tests/fixtures/."""
