"""The :class:`Module` base: parameters, gradients, children, modes.

A module owns its parameters and their gradients as two dicts of arrays
with the same keys. ``parameters()`` and ``gradients()`` return the LIVE
arrays (not copies), under dotted names for children ("0.weight",
"features.3.bias"): the optimizer updates them in place and a gradient
check perturbs them in place. Anything that replaces an array rather than
writing into it (``to``, ``astype``) therefore invalidates dicts taken
before, and an optimizer built on them must be built again.

``backward`` ADDS the parameter gradients of the last forward pass into the
gradient arrays, so gradients of several passes accumulate until
``zero_grad()``. A frozen module still returns the gradient w.r.t. its
input but leaves its own gradients untouched; the 4-step alternating
training of Faster R-CNN (section 3.2) freezes the shared convolutions in
steps 3 and 4.

Children are registered explicitly with ``add_module``; parameters with
``add_parameter``. No metaclass, no attribute magic.
"""
from ..backend import get_array_module, import_cupy, to_numpy

__all__ = ["Module"]


class Module:
    """Base class of every layer and network.

    Subclasses call ``super().__init__()``, register parameters and
    children, and implement ``forward(x)`` and ``backward(dout)``.
    """

    def __init__(self):
        self._params = {}
        self._grads = {}
        self._children = {}
        self.training = True
        self.frozen = False

    # -- registration ---------------------------------------------------
    def add_parameter(self, name, value):
        """Register ``value`` as parameter ``name`` with a zero gradient."""
        if "." in name or name in self._params or name in self._children:
            raise ValueError(f"parameter name {name!r} is taken or contains '.'")
        xp = get_array_module(value)
        self._params[name] = value
        self._grads[name] = xp.zeros_like(value)
        return value

    def add_module(self, name, module):
        """Register ``module`` as child ``name``; returns it."""
        if not isinstance(module, Module):
            raise TypeError(f"module {name!r} must be a Module, got "
                            f"{type(module).__name__}")
        if "." in name or name in self._params or name in self._children:
            raise ValueError(f"child name {name!r} is taken or contains '.'")
        self._children[name] = module
        return module

    def named_children(self):
        """Iterator of (name, child module) in registration order."""
        return iter(self._children.items())

    def modules(self):
        """This module and all its descendants, depth first."""
        yield self
        for child in self._children.values():
            yield from child.modules()

    # -- parameters and gradients --------------------------------------
    def _collect(self, which, trainable_only, prefix=""):
        out = {}
        if not (trainable_only and self.frozen):
            own = self._params if which == "params" else self._grads
            for name, value in own.items():
                out[prefix + name] = value
        for name, child in self._children.items():
            out.update(child._collect(which, trainable_only, f"{prefix}{name}."))
        return out

    def parameters(self, trainable_only=False):
        """Dict of dotted name -> LIVE parameter array.

        Parameters
        ----------
        trainable_only : bool
            Leave out the parameters of frozen modules.
        """
        return self._collect("params", trainable_only)

    def gradients(self, trainable_only=False):
        """Dict of dotted name -> LIVE gradient array; the keys of
        ``parameters(trainable_only)``."""
        return self._collect("grads", trainable_only)

    def zero_grad(self):
        """Set every gradient (of this module and its children) to zero, in
        place, so dicts from ``gradients()`` stay valid."""
        for module in self.modules():
            for g in module._grads.values():
                g[...] = 0

    def _accumulate(self, **grads):
        """Add gradients into ``_grads`` unless frozen (for subclasses)."""
        if self.frozen:
            return
        for name, g in grads.items():
            self._grads[name] += g

    def load_parameters(self, values, strict=True):
        """Copy arrays into the live parameters.

        Parameters
        ----------
        values : dict of str -> array
            Dotted names as in ``parameters()``; numpy or cupy arrays.
        strict : bool
            Require every key of ``parameters()``; with False a subset may
            be loaded (e.g. a pretrained backbone). Unknown keys are an
            error either way, never skipped.

        Raises
        ------
        ValueError
            On an unknown key, a missing one (when strict) or a shape
            mismatch.
        TypeError
            On a dtype mismatch (cast with ``astype`` first).
        """
        live = self.parameters()
        missing = sorted(set(live) - set(values)) if strict else []
        unknown = sorted(set(values) - set(live))
        if missing or unknown:
            raise ValueError(f"load_parameters: missing keys {missing}, "
                             f"unknown keys {unknown}")
        for key, value in values.items():
            target = live[key]
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"load_parameters: {key} must have shape "
                                 f"{tuple(target.shape)}, got {tuple(value.shape)}")
            if value.dtype != target.dtype:
                raise TypeError(f"load_parameters: {key} must have dtype "
                                f"{target.dtype}, got {value.dtype}")
        # all checked before anything is written: no half-loaded module
        for key, value in values.items():
            target = live[key]
            xp = get_array_module(target)
            target[...] = xp.asarray(value) if xp.__name__ == "cupy" \
                else to_numpy(value)

    # -- modes ----------------------------------------------------------
    def train(self, mode=True):
        """Set the ``training`` flag here and in every child; returns self."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self):
        """Inference mode (dropout off); same as ``train(False)``."""
        return self.train(False)

    def freeze(self):
        """Stop accumulating parameter gradients here and in every child.

        A frozen module still back-propagates to its input, and its
        parameters drop out of ``parameters(trainable_only=True)``.
        """
        for module in self.modules():
            module.frozen = True
        return self

    def unfreeze(self):
        """Undo :meth:`freeze` for this module and every child."""
        for module in self.modules():
            module.frozen = False
        return self

    # -- placement ------------------------------------------------------
    def _map_arrays(self, fn):
        for module in self.modules():
            for store in (module._params, module._grads):
                for name in store:
                    store[name] = fn(store[name])
            module.clear_cache()

    def to(self, backend_name):
        """Move parameters and gradients to ``"numpy"`` or ``"cupy"``.

        The arrays are replaced: dicts from ``parameters()`` taken earlier
        (and optimizers built on them) no longer refer to the module.
        """
        if backend_name == "numpy":
            self._map_arrays(to_numpy)
        elif backend_name == "cupy":
            cupy = import_cupy()
            self._map_arrays(cupy.asarray)
        else:
            raise ValueError("backend_name must be 'numpy' or 'cupy', "
                             f"got {backend_name!r}")
        return self

    def astype(self, dtype):
        """Cast parameters and gradients to ``dtype`` (replaces the arrays)."""
        self._map_arrays(lambda a: a.astype(dtype))
        return self

    # -- computation ----------------------------------------------------
    def clear_cache(self):
        """Drop what the last forward kept for backward (frees memory)."""
        self._cache = None

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, dout):
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _last_cache(self):
        cache = getattr(self, "_cache", None)
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before "
                               "forward (or after clear_cache)")
        return cache

    def extra_repr(self):
        """Arguments shown in ``repr``; subclasses override."""
        return ""

    def __repr__(self):
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._children:
            return head + ")"
        lines = [head]
        for name, child in self._children.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"
