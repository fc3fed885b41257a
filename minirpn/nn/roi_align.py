"""STUB: to be written."""
__all__ = ['roi_align_forward', 'roi_align_backward']

def roi_align_forward(*args, **kwargs):
    raise NotImplementedError('roi_align_forward')


def roi_align_backward(*args, **kwargs):
    raise NotImplementedError('roi_align_backward')


