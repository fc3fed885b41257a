"""STUB: to be written."""
__all__ = ['linear_forward', 'linear_backward']

def linear_forward(*args, **kwargs):
    raise NotImplementedError('linear_forward')


def linear_backward(*args, **kwargs):
    raise NotImplementedError('linear_backward')


