"""Layer modules: thin owners of parameters around the functional pairs.

Each module's ``forward`` calls ``x_forward`` from
:mod:`minirpn.nn.functional` and keeps the cache of that (last) call;
``backward`` calls ``x_backward`` on it, ADDS the parameter gradients into
the module's gradient arrays (unless frozen) and returns the gradient
w.r.t. the input. See :class:`minirpn.nn.module.Module` for the contract.
"""
import numpy as np

from . import functional as F
from . import init
from .module import Module

__all__ = ["Module", "Sequential", "Conv2d", "ReLU", "MaxPool2d", "Linear",
           "Flatten", "Dropout"]


class Sequential(Module):
    """Layers applied in order; children are named "0", "1", ...

    Examples
    --------
    >>> net = Sequential(Conv2d(3, 8, 3, padding=1), ReLU(), MaxPool2d())
    >>> sorted(net.parameters())
    ['0.bias', '0.weight']
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)

    def __len__(self):
        return len(self._children)

    def __getitem__(self, index):
        return list(self._children.values())[index]

    def forward(self, x):
        for layer in self._children.values():
            x = layer(x)
        return x

    def backward(self, dout):
        for layer in reversed(list(self._children.values())):
            dout = layer.backward(dout)
        return dout


class _WeightBias(Module):
    """A layer owning ``weight`` and ``bias`` (Conv2d, Linear)."""

    def _add_weight_bias(self, shape, out, std, rng, dtype):
        """weight of ``shape``: He initialisation when ``std`` is None, else
        N(0, std^2); bias (out,) zeros."""
        w = init.he_normal(shape, rng, dtype) if std is None \
            else init.normal(shape, std, rng, dtype)
        self.add_parameter("weight", w)
        self.add_parameter("bias", init.zeros((out,), dtype))

    @property
    def weight(self):
        return self._params["weight"]

    @property
    def bias(self):
        return self._params["bias"]


class Conv2d(_WeightBias):
    """2-D convolution, weight (F, C, KH, KW), bias (F,).

    Parameters
    ----------
    in_channels, out_channels : int
        C and F.
    kernel_size : int or (int, int)
        KH, KW.
    stride, padding : int
    std : float, optional
        Gaussian std of the weights; He initialisation when None.
    rng : numpy.random.Generator, optional
    dtype : str
        float32 (default) or float64.

    Forward: x (N, C, H, W) -> y (N, F, H', W'), dtype of x.

    Attributes
    ----------
    input_grad : bool
        True (default): ``backward`` returns dx. False: it returns None and
        skips that product, for a first layer whose input is the image.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 padding=0, std=None, rng=None, dtype="float32"):
        super().__init__()
        self.input_grad = True
        kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) \
            else tuple(kernel_size)
        self.stride, self.padding = stride, padding
        self._add_weight_bias((out_channels, in_channels, kh, kw), out_channels,
                              std, rng, dtype)

    def extra_repr(self):
        f, c, kh, kw = self.weight.shape
        return f"{c}, {f}, kernel_size=({kh}, {kw}), stride={self.stride}, " \
               f"padding={self.padding}"

    def forward(self, x):
        y, self._cache = F.conv2d_forward(x, self.weight, self.bias,
                                          stride=self.stride, padding=self.padding)
        return y

    def backward(self, dout):
        dx, dw, db = F.conv2d_backward(dout, self._last_cache(),
                                       need_dx=self.input_grad)
        self._accumulate(weight=dw, bias=db)
        return dx


class Linear(_WeightBias):
    """Fully connected layer ``y = x @ w + b``, weight (IN, OUT), bias (OUT,).

    The weight is stored input-major (IN, OUT), unlike PyTorch's (OUT, IN).
    Forward: x (N, IN) -> y (N, OUT). ``std=None`` gives He initialisation.
    """

    def __init__(self, in_features, out_features, std=None, rng=None,
                 dtype="float32"):
        super().__init__()
        self._add_weight_bias((in_features, out_features), out_features, std,
                              rng, dtype)

    def extra_repr(self):
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"

    def forward(self, x):
        y, self._cache = F.linear_forward(x, self.weight, self.bias)
        return y

    def backward(self, dout):
        # dw is added straight into the gradient: no (IN, OUT) temporary
        weight_grad = None if self.frozen else self._grads["weight"]
        dx, _, db = F.linear_backward(dout, self._last_cache(), add_dw_to=weight_grad)
        self._accumulate(bias=db)
        return dx


class ReLU(Module):
    """Elementwise max(x, 0); any shape.

    Parameters
    ----------
    inplace : bool
        Overwrite the input with the result, as ``torch.nn.ReLU(inplace=True)``,
        and in ``backward`` the incoming gradient with dx: for a layer
        between two whose arrays nothing else reads afterwards, such as the
        fresh output of the conv before it and the fresh dx of the layer
        after it.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""

    def forward(self, x):
        y, self._cache = F.relu_forward(x, inplace=self.inplace)
        return y

    def backward(self, dout):
        return F.relu_backward(dout, self._last_cache(), inplace=self.inplace)


class MaxPool2d(Module):
    """Max pooling over KxK windows: (N, C, H, W) -> (N, C, H', W')."""

    def __init__(self, kernel_size=2, stride=2):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def forward(self, x):
        y, self._cache = F.max_pool2d_forward(x, kernel_size=self.kernel_size,
                                              stride=self.stride)
        return y

    def backward(self, dout):
        return F.max_pool2d_backward(dout, self._last_cache())


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...); backward restores the shape."""

    def forward(self, x):
        self._cache = x.shape
        # The width is spelt out, not -1: NumPy cannot infer it from an
        # empty array, and a batch with zero RoIs (an image smaller than one
        # feature cell) is valid input.
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))

    def backward(self, dout):
        return dout.reshape(self._last_cache())


class Dropout(Module):
    """Inverted dropout with drop probability ``p``; identity in eval mode.

    Parameters
    ----------
    p : float in [0, 1)
        Probability of zeroing an element.
    rng : numpy.random.Generator, optional
        The module's own generator (a fresh unseeded one when omitted);
        ``forward(x, rng=...)`` overrides it for one call.
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng()

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, x, rng=None):
        y, mask = F.dropout_forward(
            x, self.p, rng if rng is not None else self.rng, train=self.training)
        # The functional cache is None for the identity (eval, p = 0); wrap it
        # so "no forward yet" stays distinguishable from "identity".
        self._cache = (mask,)
        return y

    def backward(self, dout):
        return F.dropout_backward(dout, self._last_cache()[0])
