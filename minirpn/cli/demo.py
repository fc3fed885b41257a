"""``minirpn demo``: the main job, end to end on a laptop CPU.

1. generate the shapes dataset (circles, squares, triangles) for training
   and, from another seed, held-out images for evaluation;
2. train ``Config.toy`` with approximate joint training, a progress bar
   showing the four losses;
3. evaluate on the held-out images and print the per-class AP table;
4. write to the output folder: ``detections.png`` (held-out images with
   their detections and ground truth), ``losses.png`` (loss curves),
   ``model.npz``, ``log.jsonl`` and ``metrics.json``.
"""
import os

from ..config import Config
from ..data import ShapesDataset
from ..faster_rcnn import FasterRCNN

__all__ = ["run_demo", "DEMO_TRAIN_IMAGES", "DEMO_VAL_IMAGES", "demo_train_config"]

DEMO_TRAIN_IMAGES = 400
DEMO_VAL_IMAGES = 100


def demo_train_config(seed=0, minutes=None):
    """The demo's training schedule: 2700 steps of one image each (3.3-3.5
    minutes on 2 cores; mAP@0.5 0.94 on the held-out images).

    One image per step, as py-faster-rcnn's end-to-end recipe
    (``experiments/cfgs/faster_rcnn_end2end.yml``: ``IMS_PER_BATCH: 1``):
    a batch of two is padded to the larger height and the larger width,
    and on the shapes images that padding is a fifth of the network's
    work. The base rate is halved with the batch (0.01; at one image per
    step 0.02 and 0.006 both trained worse), with a step decay at 75% of
    the run as in py-faster-rcnn's solvers. :func:`run_demo` also scales
    the images to a shorter side of 224 px (``Config.toy``: 256): a step
    costs three quarters as much per image, so more images fit the time.
    """
    from ..train import TrainConfig
    options = dict(iterations=2700, batch_size=1, lr=0.01, warmup_iterations=100,
                   lr_steps=(0.75,), seed=seed, flip=True,
                   eval_every=0, checkpoint_every=500)
    if minutes is not None:
        options["minutes"] = minutes
    return TrainConfig(**options)


def run_demo(out_dir="minirpn_demo", minutes=None, seed=0, progress=True, overwrite=False):
    """Train on generated shapes, evaluate, and write the results.

    ``overwrite`` replaces an earlier run in ``out_dir`` (see
    :func:`minirpn.train.train`); without it such a folder is refused.

    Returns
    -------
    dict
        The metrics written to ``metrics.json`` (``map``, ``per_class``,
        ``method``, ``seconds``, ``iterations``).
    """
    from .commands import check_some_steps_ran
    from ..train import train
    from ..visualize import detection_grid, plot_loss_curves, save_figure
    os.makedirs(out_dir, exist_ok=True)
    train_set = ShapesDataset(DEMO_TRAIN_IMAGES, seed=seed)
    val_set = ShapesDataset(DEMO_VAL_IMAGES, seed=seed + 1)
    names = list(train_set.class_names)
    print(f"minirpn demo: {len(train_set)} training and {len(val_set)} held-out "
          f"shapes images; writing to {out_dir}/")
    # 224 px rather than the toy config's 256: a cheaper step, so more
    # steps fit the demo's few minutes (see demo_train_config)
    model = FasterRCNN(Config.toy(len(names), class_names=tuple(names), seed=seed,
                                  target_size=224, max_size=350))
    result = train(model, train_set, out_dir, demo_train_config(seed, minutes),
                   val_dataset=val_set, progress=progress, class_names=names,
                   overwrite=overwrite)
    check_some_steps_ran(result)
    print(result.ap.table(class_names=[None] + names))
    images = [val_set[i][0] for i in range(8)]
    targets = [val_set[i][1] for i in range(8)]
    detections = result.model.detect(images)
    save_figure(detection_grid(images, detections, names, targets=targets, min_score=0.5),
                os.path.join(out_dir, "detections.png"))
    save_figure(plot_loss_curves(os.path.join(out_dir, "log.jsonl")),
                os.path.join(out_dir, "losses.png"))
    m = result.metrics
    print(f"mAP@0.5 ({m['method']}) = {m['map']:.3f} after {m['iterations']} "
          f"iterations in {m['seconds'] / 60:.1f} min; see {out_dir}/detections.png")
    return m
