"""Layers with hand-written backward passes.

``minirpn.nn.functional`` holds the forward/backward pairs; the modules here
wrap them and own the parameters and their gradients.
"""
from . import functional
from .gradcheck import GradcheckReport, gradcheck, numerical_gradient, relative_error

__all__ = ["functional", "gradcheck", "GradcheckReport", "numerical_gradient",
           "relative_error"]
