"""STUB: to be written."""
__all__ = ['roi_pool_forward', 'roi_pool_backward']

def roi_pool_forward(*args, **kwargs):
    raise NotImplementedError('roi_pool_forward')


def roi_pool_backward(*args, **kwargs):
    raise NotImplementedError('roi_pool_backward')


