"""Writing a file whole or not at all: what changebot writes for people (the evidence report,
an export of the trail) goes to a temporary file beside it, which replaces it only once all
of it is written; on any failure the temporary file goes and the old file stands."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


class CannotWrite(Exception):
    """The output cannot be written; the message says which file and why."""


class replacing:
    """A text file in the output's directory that replaces the output when all went well,
    and is removed when anything failed; an OSError while it is open (a full disk) is
    CannotWrite, naming the output."""

    def __init__(self, output: Path, *, newline: str | None = None) -> None:
        self.output = output
        self.newline = newline
        self.path: str | None = None

    def __enter__(self) -> Any:
        if self.output.exists() and not (self.output.is_file() or self.output.is_dir()):
            # A device or a pipe (-o /dev/stdout): nothing to replace; written as it is.
            try:
                self.file = self.output.open("w", encoding="utf-8", newline=self.newline)
            except OSError as error:
                raise CannotWrite(f"cannot write {self.output}: {error.strerror}.") from error
            return self.file
        directory = self.output.parent
        try:
            handle, self.path = tempfile.mkstemp(
                prefix=f".{self.output.name}.", suffix=".tmp", dir=directory
            )
        except OSError as error:
            raise CannotWrite(f"cannot write {self.output}: {error.strerror}.") from error
        self.file = os.fdopen(handle, "w", encoding="utf-8", newline=self.newline)
        return self.file

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        try:
            self.file.close()
            if error is None and self.path is not None:
                os.chmod(self.path, 0o666 & ~_umask())  # as open() would have made it
                os.replace(self.path, self.output)
                self.path = None
        except OSError as failed:  # a directory at the output path, a full disk
            raise CannotWrite(f"cannot write {self.output}: {failed.strerror}.") from failed
        finally:
            if self.path is not None:
                Path(self.path).unlink(missing_ok=True)
        if isinstance(error, OSError):  # writing it (or a spool beside it) failed: a full disk
            raise CannotWrite(f"cannot write {self.output}: {error.strerror}.") from error


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
