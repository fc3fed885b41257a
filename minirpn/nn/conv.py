"""STUB: to be written."""
__all__ = ['conv2d_forward', 'conv2d_backward']

def conv2d_forward(*args, **kwargs):
    raise NotImplementedError('conv2d_forward')


def conv2d_backward(*args, **kwargs):
    raise NotImplementedError('conv2d_backward')


