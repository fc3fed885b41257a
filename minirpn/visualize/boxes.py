"""Drawing boxes on an image, the mapping from network to original pixels, PNG output,
and the argument checks and small helpers every picture in this package shares."""
import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..backend import to_numpy
from ..checks import check_array, check_image_size, check_positive_int, first_bad_row
from ..preprocess import rescale_boxes

POSITIVE, NEGATIVE, IGNORED, GT = "#2ca02c", "#d62728", "#a0a0a0", "white"

#: Longest side, in pixels, of the copy of an image that a figure shows.
#: matplotlib resamples what imshow gets through float RGBA buffers, about
#: 30 bytes per source pixel (1.9 GB for a 5000 x 5000 photo), while a
#: 6-inch panel at 100 dpi is 600 pixels wide: twice that is enough for a
#: 2x (retina) screen, and the box coordinates stay in original pixels.
MAX_DRAW_SIDE = 1200


# ---- checks and small helpers ---------------------------------------------------
def _image(image, name="image"):
    check_array(image, name, shape=(None, None, 3))
    if image.dtype != np.uint8:
        raise TypeError(f"{name} must be an (H, W, 3) uint8 image in original pixels "
                        f"(trace.image, a dataset image), got dtype {image.dtype}")
    return to_numpy(image)


def _boxes(boxes, name):
    boxes = to_numpy(boxes)
    check_array(boxes, name, shape=(None, 4))
    if boxes.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a numeric (K, 4) array, got dtype {boxes.dtype}")
    boxes = boxes.astype(np.float64)
    bad = first_bad_row(~np.isfinite(boxes).all(axis=1)
                        | (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if bad is not None:
        raise ValueError(f"{name} must hold finite (x1, y1, x2, y2) rows with x2 >= x1 "
                         f"and y2 >= y1, got {boxes[bad].tolist()} at row {bad}")
    return boxes


def _field(obj, name, what):
    """``obj.name`` or ``obj[name]``: a result object, a dict or a trace Stage."""
    if hasattr(obj, name):
        return getattr(obj, name)
    try:
        return obj[name]
    except (KeyError, TypeError, IndexError):
        raise TypeError(f"{what} must have a {name!r} field, got {type(obj).__name__}") \
            from None


def _spread(indices, n):
    """At most n of ``indices``, evenly spaced (anchor order is spatial)."""
    if len(indices) <= n:
        return indices
    return indices[np.linspace(0, len(indices) - 1, n).round().astype(int)]


def _name(label, class_names):
    if class_names is None:
        return str(int(label))
    if not 1 <= label <= len(class_names):
        raise ValueError(f"label {int(label)} has no name: class_names names "
                         f"labels 1..{len(class_names)}")
    return str(class_names[int(label) - 1])


def class_color(label):
    """The colour of class ``label`` (tab10, class 1 first)."""
    return colormaps["tab10"]((int(label) - 1) % 10)


def _display_copy(image):
    """(h, w, 3) uint8: ``image`` box-filtered down by the smallest integer
    factor that brings its longest side to MAX_DRAW_SIDE (itself if already
    small enough)."""
    factor = math.ceil(max(image.shape[:2]) / MAX_DRAW_SIDE)
    if factor <= 1:
        return image
    from PIL import Image
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).reduce(factor))


def _new_axes(ax, shape, ncols=1, width=6.0):
    """(Figure, [axes]) sized to an (H, W) image, or ax's own figure."""
    if ax is not None:
        return ax.figure, [ax]
    h, w = shape[:2]
    fig = Figure(figsize=(width * ncols, min(width * h / w, 12.0) + 0.5), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _missing(ax, name, why=None):
    ax.text(0.5, 0.5, why or f"stage {name!r} has not run", ha="center", va="center")
    ax.set_axis_off()


# ---- boxes ------------------------------------------------------------------------
def network_to_original(boxes, network_size, original_size):
    """Map boxes from the network's pixels back to the original image's.

    Parameters
    ----------
    boxes : (K, 4) float, (x1, y1, x2, y2) in network pixels
    network_size : (h', w'), the resized size (``trace["preprocess"]["image_size"]``)
    original_size : (H, W), the image's size

    Returns
    -------
    (K, 4) float64, ``boxes * (W / w', H / h', W / w', H / h')``
    """
    return _mapped(boxes, network_size, original_size, "boxes")


def _mapped(boxes, network_size, original_size, name):
    """Checked (K, 4) float64 boxes, scaled to original pixels unless network_size is None."""
    boxes = _boxes(boxes, name)
    if network_size is None:
        return boxes
    return rescale_boxes(boxes, check_image_size(network_size, "network_size"),
                         check_image_size(original_size, "original_size"))


def draw_boxes(ax, image, boxes, labels=None, scores=None, class_names=None, color=None,
               linestyle="-", linewidth=1.5, captions=True):
    """Draw boxes, and optionally the image under them, on an Axes.

    Shapes: K boxes, H x W image, C classes.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    image : (H, W, 3) uint8 or None
        Drawn in continuous coordinates (pixel (0, 0) covers [0, 1) x [0, 1));
        None draws the boxes only (on an image drawn before).
    boxes : (K, 4) float, (x1, y1, x2, y2) in the image's pixels
    labels : (K,) int in 1..C, optional
        Colours each box by class and captions it with the class name.
    scores : (K,) float, optional
        Added to the caption: "circle 0.93".
    class_names : sequence of C str, optional
        Names of labels 1..C (``dataset.class_names``); numbers when None.
    color : matplotlib colour, optional
        One colour for every box; by class otherwise (yellow without labels).
    linestyle, linewidth : matplotlib line settings ("--" for ground truth)
    captions : bool or sequence of K str
        Caption boxes from labels and scores, not at all, or with these texts.

    Returns
    -------
    list of K matplotlib.patches.Rectangle, in the order of ``boxes``
    """
    boxes = _boxes(boxes, "boxes")
    k = len(boxes)
    labels = None if labels is None else to_numpy(labels).reshape(-1)
    scores = None if scores is None else to_numpy(scores).reshape(-1)
    for name, v in (("labels", labels), ("scores", scores)):
        if v is not None and len(v) != k:
            raise ValueError(f"{name} must have shape ({k},) like boxes, got {v.shape}")
    if image is not None:
        image = _image(image)
        ax.imshow(_display_copy(image), extent=(0, image.shape[1], image.shape[0], 0),
                  interpolation="nearest")
        ax.set_axis_off()
    if captions is True:
        captions = None if labels is None and scores is None else [
            " ".join(([] if labels is None else [_name(labels[i], class_names)])
                     + ([] if scores is None else [f"{scores[i]:.2f}"])) for i in range(k)]
    elif captions is False:
        captions = None
    elif len(captions) != k:
        raise ValueError(f"captions must hold {k} texts like boxes, got {len(captions)}")
    top, bottom = sorted(ax.get_ylim())
    patches = []
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        c = color if color is not None else class_color(labels[i]) if labels is not None \
            else "yellow"
        patches.append(ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                                              edgecolor=c, linestyle=linestyle,
                                              linewidth=linewidth)))
        if captions is not None:
            # Above the box, or just inside it where the top of the view would cut it off.
            inside = y1 - top < 0.05 * (bottom - top)
            ax.text(x1, y1, captions[i], fontsize=7, color="white", clip_on=True,
                    va="top" if inside else "bottom",
                    bbox=dict(facecolor=c, alpha=0.75, pad=1, edgecolor="none"))
    return patches


def _show_image(ax, image):
    """Draw the (H, W, 3) uint8 image alone, in continuous coordinates, axes hidden."""
    draw_boxes(ax, image, np.zeros((0, 4)))


# ---- output -----------------------------------------------------------------------------
def save_figure(fig, path, dpi=100):
    """Write ``fig`` as a PNG (parent folders created); returns the Path."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path
