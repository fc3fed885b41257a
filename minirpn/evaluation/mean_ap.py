"""Mean average precision: VOC2007, VOC2010+ and COCO flavours.

The steps, per class c (py-faster-rcnn ``voc_eval`` / COCOeval order):

1. in each image, sort the detections of class c by score, descending
   (stable: equal scores keep their order); "coco101" keeps the first
   :data:`COCO_MAX_DETECTIONS` (COCOeval's maxDets, per image and class);
2. match them to that image's ground truths of class c
   (:mod:`.matching`): each becomes TP, FP or ignored;
3. pool all images and sort by score again (stable: ties in image order);
4. precision/recall curve over the non-ignored detections, recall
   relative to the non-difficult ground truths (:func:`.curves.pr_curve`);
5. AP from the curve by the chosen method (:mod:`.curves`).

The mean is over the classes that have at least one non-difficult ground
truth; the rest are listed in ``classes_without_gt``.
"""
import numpy

from .curves import AP_FUNCTIONS, pr_curve
from .inputs import check_iou_threshold, prepare_images
from .matching import FALSE_POSITIVE, match_coco, match_voc, overlaps
from .results import APResult, COCOResult

__all__ = ["average_precision", "coco_map", "COCO_MAX_DETECTIONS",
           "COCO_IOU_THRESHOLDS", "METHODS"]

METHODS = ("voc07", "area", "coco101")

#: COCOeval's largest maxDets: detections kept per image *and class*
#: (``evaluateImg``: ``dt = [dt[i] for i in dtind[0:maxDet]]`` on the
#: detections of one image and one category).
COCO_MAX_DETECTIONS = 100

#: COCOeval's iouThrs: .50:.05:.95.
COCO_IOU_THRESHOLDS = numpy.linspace(0.5, 0.95, 10)


def _match_image(image, label, coco, thresholds):
    """Steps 1-2 for one image and class: (scores (K,), states (T, K),
    number of non-difficult ground truths)."""
    det = image.det_labels == label
    gt = image.gt_labels == label
    scores = image.det_scores[det]
    # 1. this image's detections of the class, best first
    order = numpy.argsort(-scores, kind="stable")
    if coco:
        order = order[:COCO_MAX_DETECTIONS]
    difficult = image.gt_difficult[gt]
    npos = int(numpy.count_nonzero(~difficult))
    if not difficult.size:  # no object of the class here: all FP
        states = numpy.full((len(thresholds), len(order)), FALSE_POSITIVE,
                            dtype=numpy.int8)
        return scores[order], states, npos
    # difficult boxes are COCO's crowd regions under "coco101" (see
    # average_precision, Notes); the VOC devkit uses plain IoU for all.
    crowd = difficult if coco else numpy.zeros_like(difficult)
    iou = overlaps(image.det_boxes[det][order], image.gt_boxes[gt], crowd)
    # 2. TP / FP / ignored at every threshold
    match = match_coco if coco else match_voc
    states = numpy.stack([match(iou, difficult, t) for t in thresholds])
    return scores[order], states, npos


def _class_curves(images, method, thresholds):
    """Steps 1-4 for every class seen in detections or ground truths.

    Returns
    -------
    curves : dict of int -> list of T (recall, precision) pairs
        Classes with at least one non-difficult ground truth.
    num_gt : dict of int -> int
        Every class seen.
    """
    coco = method == "coco101"
    scores, states, num_gt = {}, {}, {}
    for image in images:
        for label in numpy.union1d(image.det_labels, image.gt_labels):
            label = int(label)
            s, st, npos = _match_image(image, label, coco, thresholds)
            scores.setdefault(label, []).append(s)
            states.setdefault(label, []).append(st)
            num_gt[label] = num_gt.get(label, 0) + npos
    num_gt = dict(sorted(num_gt.items()))
    curves = {}
    for label, npos in num_gt.items():
        if npos == 0:
            continue
        # 3. pool the images; stable, so equal scores stay in image order
        order = numpy.argsort(-numpy.concatenate(scores[label]),
                              kind="stable")
        pooled = numpy.concatenate(states[label], axis=1)[:, order]
        # 4. one curve per threshold
        curves[label] = [pr_curve(row, npos) for row in pooled]
    return curves, num_gt


def _mean_over_classes(values):
    if not values:
        raise ValueError("no ground-truth boxes in any image (difficult "
                         "ones do not count): the mean AP is undefined")
    return float(numpy.mean(list(values)))


def average_precision(detections, ground_truths, iou_threshold=0.5,
                      method="area"):
    """Per-class average precision and their mean at one IoU threshold.

    Shapes: per image, K detections and G ground-truth boxes; C classes.

    Parameters
    ----------
    detections : list of dict
        One per image, as the model returns them: ``boxes`` (K, 4) float
        (x1, y1, x2, y2), ``scores`` (K,) float, ``labels`` (K,) int in
        1..C. numpy or cupy arrays.
    ground_truths : list of dict
        One per image, as the datasets give them: ``boxes`` (G, 4) float,
        ``labels`` (G,) int in 1..C, optional ``difficult`` (G,) bool.
    iou_threshold : float
        In (0, 1]. A match needs IoU >= iou_threshold, for every method.
    method : {"voc07", "area", "coco101"}
        "voc07": 11-point interpolated AP, VOC devkit matching.
        "area": all-point AP (area under the precision envelope), VOC
        devkit matching. "coco101": 101-point AP with COCOeval matching,
        at most 100 detections per image and class.

    Returns
    -------
    APResult
        ``per_class``, ``map``, raw ``precision``/``recall`` curves,
        ``num_gt``, ``classes_without_gt``, ``method``, ``iou_threshold``.

    Raises
    ------
    ValueError
        Bad input (see :func:`.inputs.prepare_images`), an unknown method,
        a threshold outside (0, 1], or no non-difficult ground truth in any
        image (the mean over no class is undefined).

    Notes
    -----
    Choices, and where they depart from the reference code:

    * IoU is continuous, width = x2 - x1, for every method. The VOC devkit
      adds +1 to widths and heights (pixel-inclusive boxes); that is the
      one deliberate deviation from it. COCO uses (x, y, w, h) with no +1,
      as we do.
    * Threshold: IoU >= t. ``VOCevaldet.m`` (the MATLAB devkit) tests
      ``ovmax>=VOCopts.minoverlap``; py-faster-rcnn's ``voc_eval.py``
      port tests ``ovmax > ovthresh``. We follow the devkit, so a
      detection at IoU exactly t is a TP here and an FP in the port.
      COCOeval matches at iou >= min(t, 1 - 1e-10).
    * Ties in score are broken by a stable sort (image order, then order
      within the image), like COCOeval's mergesort. voc_eval.py uses an
      unstable quicksort, so its order of equal scores is unspecified.
    * "voc07" recall points are i / 10 exactly (see
      :data:`.curves.VOC07_RECALL_POINTS`).
    * ``difficult`` boxes never count as positives, and a detection
      matched to one is neither TP nor FP. Under "voc07"/"area" that is
      the devkit's rule (the detection's best-IoU box is difficult).
      Under "coco101" a difficult box is a COCO crowd region, as
      mmdetection's VOC-to-COCO converter writes it (``iscrowd = 1``;
      pycocotools ignores exactly its crowd boxes): it is matched only
      when no regular box is free at IoU >= t, overlap with it is
      intersection / detection area, and it absorbs any number of
      detections. "coco101" thus equals pycocotools' AP@t (area "all",
      maxDets 100) on the same data with difficult written as iscrowd.
    * Classes seen only in detections (or only as difficult boxes) have no
      positives; their AP is undefined, so they are left out of
      ``per_class`` and of the mean and listed in ``classes_without_gt``
      (COCOeval likewise skips categories without ground truth). A class
      with ground truth but no detection has AP 0.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    iou_threshold = check_iou_threshold(iou_threshold)
    images = prepare_images(detections, ground_truths)
    curves, num_gt = _class_curves(images, method, [iou_threshold])
    ap_of = AP_FUNCTIONS[method]
    per_class = {c: ap_of(*curve[0]) for c, curve in curves.items()}
    return APResult(
        per_class=per_class,
        map=_mean_over_classes(per_class.values()),
        precision={c: curve[0][1] for c, curve in curves.items()},
        recall={c: curve[0][0] for c, curve in curves.items()},
        num_gt=num_gt,
        classes_without_gt=tuple(c for c in num_gt if c not in curves),
        method=method,
        iou_threshold=iou_threshold)


def _check_thresholds(iou_thresholds):
    values = numpy.asarray(iou_thresholds, dtype=numpy.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"iou_thresholds must be a non-empty 1-D sequence, "
                         f"got shape {values.shape}")
    for t in values:
        check_iou_threshold(float(t), "each of iou_thresholds")
    return values


def _mean_at(per_threshold, thresholds, t):
    """Mean over classes of the AP at threshold t, or None if t is absent."""
    hits = numpy.flatnonzero(numpy.isclose(thresholds, t, rtol=0, atol=1e-9))
    if hits.size == 0:
        return None
    return float(numpy.mean([ap[hits[0]] for ap in per_threshold.values()]))


def coco_map(detections, ground_truths, iou_thresholds=COCO_IOU_THRESHOLDS):
    """COCO's AP@[.50:.95]: "coco101" AP averaged over IoU thresholds.

    Shapes: T IoU thresholds; inputs as in :func:`average_precision`.

    Parameters
    ----------
    detections, ground_truths : list of dict
        As in :func:`average_precision`.
    iou_thresholds : sequence of float, (T,)
        Each in (0, 1]; default np.linspace(0.5, 0.95, 10) like COCOeval.

    Returns
    -------
    COCOResult
        ``map`` (COCOeval ``stats[0]``), ``map50`` (``stats[1]``), ``map75``
        (``stats[2]``), ``per_class``, ``per_threshold``.

    Notes
    -----
    COCOeval's stats[0] is the mean of all defined precision entries over
    (threshold, recall point, class). Every class with ground truth has all
    its entries defined (at every threshold), so that is the mean over
    classes of the mean over thresholds of the 101-point AP, computed here
    in that order (equal up to float summation order). Matching and
    ``difficult`` handling: see :func:`average_precision` ("coco101").
    """
    thresholds = _check_thresholds(iou_thresholds)
    images = prepare_images(detections, ground_truths)
    curves, num_gt = _class_curves(images, "coco101", thresholds)
    ap_of = AP_FUNCTIONS["coco101"]
    per_threshold = {c: numpy.array([ap_of(*rp) for rp in curve])
                     for c, curve in curves.items()}
    per_class = {c: float(ap.mean()) for c, ap in per_threshold.items()}
    return COCOResult(
        map=_mean_over_classes(per_class.values()),
        map50=_mean_at(per_threshold, thresholds, 0.5),
        map75=_mean_at(per_threshold, thresholds, 0.75),
        per_class=per_class,
        per_threshold=per_threshold,
        iou_thresholds=thresholds,
        num_gt=num_gt,
        classes_without_gt=tuple(c for c in num_gt if c not in curves))
