"""``python -m segeval``: the same command line as ``segeval``."""

from .cli import main

main()
