"""STUB: to be written."""
__all__ = ['softmax_cross_entropy_forward', 'softmax_cross_entropy_backward', 'smooth_l1_forward', 'smooth_l1_backward']

def softmax_cross_entropy_forward(*args, **kwargs):
    raise NotImplementedError('softmax_cross_entropy_forward')


def softmax_cross_entropy_backward(*args, **kwargs):
    raise NotImplementedError('softmax_cross_entropy_backward')


def smooth_l1_forward(*args, **kwargs):
    raise NotImplementedError('smooth_l1_forward')


def smooth_l1_backward(*args, **kwargs):
    raise NotImplementedError('smooth_l1_backward')


