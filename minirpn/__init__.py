"""minirpn: Faster R-CNN written from scratch in NumPy.

No autograd: every layer has a hand-written backward pass, checked against
finite differences. See README.md for a tour.
"""
__version__ = "0.1.0"

from .backend import get_array_module, get_backend, set_backend, to_numpy
from .config import Config
from .faster_rcnn import FasterRCNN

__all__ = ["__version__", "set_backend", "get_backend", "get_array_module",
           "to_numpy", "Config", "FasterRCNN"]
