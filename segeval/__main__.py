"""``python -m segeval``: the same command line as ``segeval``."""

from segeval.cli import main

main()
