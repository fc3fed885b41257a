"""Ctrl-C that waits for the end of an update or a checkpoint write.

Python raises KeyboardInterrupt between any two bytecodes, so a Ctrl-C in
the middle of ``SGD.step`` would leave some parameters updated and others
not, and one between the two files of a checkpoint would leave
``train_state.npz`` and ``model.npz`` at different steps. While a run lasts,
:class:`CriticalSections` installs a SIGINT handler that raises at once,
except inside :meth:`CriticalSections.critical`, where it only notes the
request and raises just after the section ends (as PyTorch Lightning and
Keras stop "gracefully" at a step boundary, but without waiting for the
rest of the step).
"""
import signal
import threading
from contextlib import contextmanager

__all__ = ["CriticalSections"]


class CriticalSections:
    """Sections Ctrl-C never cuts; ``busy`` says which one an error cut.

    Attributes
    ----------
    busy : str or None
        The section running, or the one an exception left (kept so the
        caller can tell "parameters half updated" from a clean stop; reset
        by :meth:`clear`).
    """

    def __init__(self):
        self.busy, self.pending = None, False

    @contextmanager
    def critical(self, what):
        """Run the body whole: a Ctrl-C during it raises KeyboardInterrupt
        right after it. An exception inside leaves ``busy == what``."""
        self.busy = what
        yield
        self.busy = None
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def clear(self):
        """Forget the section and any pending Ctrl-C; return what ``busy`` was."""
        busy, self.busy, self.pending = self.busy, None, False
        return busy

    @contextmanager
    def handling_ctrl_c(self):
        """Install the handler for the body's duration: only in the main
        thread, and only over Python's default handler (a program that
        ignores or handles SIGINT itself keeps its choice)."""
        if threading.current_thread() is not threading.main_thread() \
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield
            return

        def handler(signum, frame):
            if self.busy is None:
                raise KeyboardInterrupt
            self.pending = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
