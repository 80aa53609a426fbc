"""Training helpers (the optional ``[train]`` extra): losses, two small models, a trainer.

Importing this package loads no torch; its modules ``losses``, ``models`` and ``trainer`` do, and
say ``pip install 'segeval-cli[train]'`` when torch is missing. ``segeval train`` lives in ``command``,
which imports torch only when the command runs.
"""
