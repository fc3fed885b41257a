"""Batches for SGD: shuffled epochs, difficult objects dropped, flips.

Every random choice comes from the run's one ``numpy.random.Generator``, in
a fixed order per step: a new permutation when an epoch runs out, then one
flip draw per image (then the model's anchor/RoI sampling and dropout).
The stream's position (permutation, index into it, epoch) is part of the
checkpoint, so a resumed run sees exactly the batches it would have seen.
"""
import numpy as np

from ..data import RandomHorizontalFlip, drop_difficult

__all__ = ["BatchStream"]


class BatchStream:
    """Endless batches of ``batch_size`` images from shuffled epochs.

    Parameters
    ----------
    dataset : indexable dataset
        ``dataset[i] -> (image (H, W, 3) uint8, target dict)``.
    batch_size : int
        Images per batch. A batch that crosses the end of an epoch is
        completed from the next permutation, so every batch has this size.
    rng : numpy.random.Generator
        The run's generator (shuffles and flips).
    flip : bool
        Mirror each image left-right with probability 1/2.
    """

    def __init__(self, dataset, batch_size, rng, flip=True):
        if len(dataset) == 0:
            raise ValueError("train_dataset must hold at least one image, got 0")
        self.dataset, self.batch_size, self.rng = dataset, int(batch_size), rng
        self.flip = RandomHorizontalFlip(0.5) if flip else None
        self.order = None          # (N,) int64 permutation of the current epoch
        self.position = 0          # images of ``order`` already used
        self.epoch = 0             # permutations drawn so far

    def next_indices(self):
        """Dataset indices of the next batch (advances the stream)."""
        n, out = len(self.dataset), []
        while len(out) < self.batch_size:
            if self.order is None or self.position == n:
                self.order = self.rng.permutation(n)
                self.position, self.epoch = 0, self.epoch + 1
            take = min(self.batch_size - len(out), n - self.position)
            out.extend(int(i) for i in self.order[self.position:self.position + take])
            self.position += take
        return out

    def next_batch(self):
        """The next batch: (list of (H, W, 3) uint8 images, list of target
        dicts with ``boxes`` (K, 4) float32 and ``labels`` (K,) int64)."""
        images, targets = [], []
        for index in self.next_indices():
            image, target = self.dataset[index]
            # py-faster-rcnn trains without difficult objects (use_diff=False)
            target = drop_difficult(target)
            if self.flip is not None:
                image, target = self.flip(image, target, self.rng)
            images.append(image)
            targets.append({"boxes": target["boxes"], "labels": target["labels"]})
        return images, targets

    def state(self):
        """JSON-serialisable position of the stream."""
        return {"epoch": self.epoch, "position": self.position,
                "order": None if self.order is None else self.order.tolist()}

    def load_state(self, state):
        """Restore :meth:`state` (the generator is restored separately)."""
        order = state["order"]
        if order is not None and sorted(order) != list(range(len(self.dataset))):
            raise ValueError(f"saved data order is a permutation of {len(order)} "
                             f"images, but train_dataset has {len(self.dataset)}")
        self.order = None if order is None else np.asarray(order, dtype=np.int64)
        self.position, self.epoch = int(state["position"]), int(state["epoch"])
