"""STUB: to be written."""
__all__ = ['dropout_forward', 'dropout_backward']

def dropout_forward(*args, **kwargs):
    raise NotImplementedError('dropout_forward')


def dropout_backward(*args, **kwargs):
    raise NotImplementedError('dropout_backward')


