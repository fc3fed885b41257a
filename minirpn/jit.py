"""numba's ``njit`` with an on-disk cache where one can be written.

``numba.njit(cache=True)`` keeps compiled machine code between runs, next
to the source (``__pycache__``) or in the user's cache folder
(``~/.cache/numba``). Where neither is writable (a read-only install with a
read-only HOME, as in many containers) numba refuses to decorate the
function at all ("cannot cache function ...: no locator available"), so
``import minirpn`` would fail. :func:`njit` compiles without the cache
there instead: the code is the same, only the first call of each kernel in
every process pays the compile time again. Setting ``NUMBA_CACHE_DIR`` to a
writable folder brings the cache back (numba's documented override,
https://numba.readthedocs.io/en/stable/reference/envvars.html#numba-cache-dir).
"""
import numba

__all__ = ["njit"]


def njit(**options):
    """Decorator: ``numba.njit(cache=True, **options)``, or without the
    cache where numba finds no writable cache folder.

    Parameters
    ----------
    **options
        Passed to :func:`numba.njit` (``parallel``, ``error_model``,
        ``inline``, ...).

    Returns
    -------
    decorator : callable
        Turns a Python function into a numba dispatcher.
    """
    def decorate(func):
        try:
            return numba.njit(cache=True, **options)(func)
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            return numba.njit(**options)(func)
    return decorate
