"""Layers with hand-written backward passes.

``minirpn.nn.functional`` holds the forward/backward pairs; the modules here
wrap them and own the parameters and their gradients; ``SGD`` updates them;
``minirpn.nn.selfcheck`` gradient-checks every layer.
``minirpn.nn.reference`` holds the plain-loop conv2d, RoI Pool and RoI Align
(``*_forward_reference`` / ``*_backward_reference``) that the fast layers are
tested to match: read those first.
"""
from . import functional
from . import init
from . import reference
from .gradcheck import GradcheckReport, gradcheck, numerical_gradient, relative_error
from .module import Module
from .modules import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from .optim import SGD

__all__ = ["functional", "init", "reference", "gradcheck", "GradcheckReport",
           "numerical_gradient", "relative_error", "Module", "Sequential",
           "Conv2d", "ReLU", "MaxPool2d", "Linear", "Flatten", "Dropout", "SGD"]
