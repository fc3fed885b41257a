"""STUB: to be written."""
__all__ = ['max_pool2d_forward', 'max_pool2d_backward']

def max_pool2d_forward(*args, **kwargs):
    raise NotImplementedError('max_pool2d_forward')


def max_pool2d_backward(*args, **kwargs):
    raise NotImplementedError('max_pool2d_backward')


