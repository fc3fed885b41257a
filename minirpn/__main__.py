"""``python -m minirpn``: the same command line as the ``minirpn`` script."""
import sys

from .cli import main

sys.exit(main())
