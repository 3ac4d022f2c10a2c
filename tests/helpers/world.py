"""A mirrored torch.distributed: the collectives of a world of processes that all hold this process's numbers, so that
the multi-process arithmetic of the loop and the kinds is tested in one process (fast enough for the mutation run)."""

import torch


class Mirror:
    """Stands in for torch.distributed in a world of `size` processes that all hold this process's numbers;
    `gathered` overrides what all_gather_object returns for some ranks (for objects of the same type)."""

    def __init__(self, size: int):
        self.size, self.gathered, self.reduced = size, {}, 0

    def all_reduce(self, tensor, op=None, group=None, async_op=False):
        assert isinstance(tensor, torch.Tensor)
        with torch.inference_mode():  # as c10d's op, which also takes the inference tensors of evaluation loops
            tensor.mul_(self.size)
        self.reduced += 1

    def all_gather_object(self, object_list, obj, group=None):
        assert isinstance(object_list, list) and len(object_list) == self.size and obj is not None
        for rank in range(self.size):
            other = self.gathered.get(rank)
            object_list[rank] = other if isinstance(other, type(obj)) else obj

    def install(self, monkeypatch) -> "Mirror":
        """Put this mirror in torch.distributed's place for one test."""
        import torch.distributed as dist

        monkeypatch.setattr(dist, "all_reduce", self.all_reduce)
        monkeypatch.setattr(dist, "all_gather_object", self.all_gather_object)
        monkeypatch.setattr(dist, "get_backend", lambda group=None: "gloo")
        return self
