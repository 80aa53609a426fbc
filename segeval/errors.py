"""Errors that reach the user as one line: which file, what is wrong, what to do."""

from __future__ import annotations

import os


class SegevalError(Exception):
    """A problem with the user's input or options; the CLI prints it as one line and exits 2.

    Parameters
    ----------
    path : str or path-like or None
        The offending file or directory, when there is one.
    what : str
        What is wrong with it.
    todo : str
        What the user can do about it (may be empty).

    Messages name the library's parameters in backquotes (```num_classes```, ```label_map```); the
    command line shows its options there instead (``--num-classes``, ``--map``).
    """

    def __init__(self, path: str | os.PathLike | None, what: str, todo: str = "") -> None:
        self.path = None if path is None else os.fspath(path)
        self.what = what
        self.todo = todo
        super().__init__(self.message)

    def __reduce__(self) -> tuple[type[SegevalError], tuple[str | None, str, str]]:
        """Pickled as its three parts (an error met in a worker process is raised by the parent)."""
        return type(self), (self.path, self.what, self.todo)

    @property
    def message(self) -> str:
        head = f"{self.path}: {self.what}" if self.path else self.what
        return f"{head}; {self.todo}" if self.todo else head


class MaskError(SegevalError):
    """A mask file cannot be read or holds values that cannot be scored."""


class PairingError(SegevalError):
    """Prediction and ground-truth files do not pair up."""


class RunFileError(SegevalError):
    """A run file (``segeval score --json``) cannot be read or does not fit."""
