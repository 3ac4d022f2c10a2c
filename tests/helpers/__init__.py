"""What the tests share (a test module never imports another): the tiny in-process trainer, the mirrored
torch.distributed world, launching processes, and the end-to-end runs' helpers."""
