"""Layers with hand-written backward passes.

``minirpn.nn.functional`` holds the forward/backward pairs; the modules here
wrap them and own the parameters and their gradients; ``SGD`` updates them;
``minirpn.nn.selfcheck`` gradient-checks every layer.
"""
from . import functional
from . import init
from .gradcheck import GradcheckReport, gradcheck, numerical_gradient, relative_error
from .module import Module
from .modules import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from .optim import SGD

__all__ = ["functional", "init", "gradcheck", "GradcheckReport",
           "numerical_gradient", "relative_error", "Module", "Sequential",
           "Conv2d", "ReLU", "MaxPool2d", "Linear", "Flatten", "Dropout", "SGD"]
