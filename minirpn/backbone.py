"""The feature network (Ren et al. 2015, section 3: the shared conv layers):
a VGG-style stack of 3x3 convs (Simonyan and Zisserman 2015).

A backbone is built from a channel list such as ``(64, 64, "M", 128, ...)``:
each number is a 3x3 conv (padding 1) followed by a ReLU, each ``"M"`` a 2x2
max-pool that halves the resolution. The feature stride is therefore
``2 ** (number of "M")``, derived from the list, never hard-coded.
Weights start from scratch (He initialisation): nothing is downloaded.
"""
import numpy as np

from .config import TOY_CHANNELS, VGG16_CHANNELS, feature_stride
from .nn import Conv2d, MaxPool2d, ReLU, Sequential

__all__ = ["Backbone", "vgg16", "toy_backbone"]


class Backbone(Sequential):
    """A VGG-style conv stack.

    Parameters
    ----------
    channels : sequence of int or "M"
        Conv widths; "M" is a 2x2 max-pool with stride 2.
    in_channels : int
        Channels of the input image (3).
    rng : numpy.random.Generator, optional
        Draws the initial weights.
    dtype : str
        "float32" or "float64".

    Forward: images (N, 3, H, W) -> features (N, C_out, H / stride, W / stride).
    ``backward`` returns None: the first conv computes no image gradient.
    """

    def __init__(self, channels, in_channels=3, rng=None, dtype="float32"):
        rng = rng if rng is not None else np.random.default_rng(0)
        layers, c = [], in_channels
        for spec in channels:
            if spec == "M":
                layers.append(MaxPool2d(2, 2))
            else:
                # In place, as torchvision's VGG: the conv's output is read
                # by nothing else (the conv caches its input), so the ReLU
                # needs no second array of the map's size.
                layers += [Conv2d(c, spec, 3, padding=1, rng=rng, dtype=dtype),
                           ReLU(inplace=True)]
                c = spec
        # The image needs no gradient: the first conv skips its dx (about a
        # tenth of a toy training step), as autograd does for inputs that
        # do not require grad. Its backward() then returns None.
        if isinstance(layers[0], Conv2d):
            layers[0].input_grad = False
        super().__init__(*layers)
        self.channels = tuple(channels)
        self.out_channels = c
        self.stride = feature_stride(channels)

    def extra_repr(self):
        return f"stride={self.stride}, out_channels={self.out_channels}"


def vgg16(rng=None, dtype="float32"):
    """The 13 conv layers of VGG16 (stride 16, 512 channels), from scratch."""
    return Backbone(VGG16_CHANNELS, rng=rng, dtype=dtype)


def toy_backbone(rng=None, dtype="float32"):
    """The small stride-8 backbone of ``Config.toy``."""
    return Backbone(TOY_CHANNELS, rng=rng, dtype=dtype)
