"""One process at a time: an exclusive lock on a file, for work several workers may start
together (a compiled guardrail gate, an int8 model made once).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> with exclusive(Path(tempfile.mkdtemp()) / ".lock"):
    ...     pass  # what only one process may do at a time
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

fcntl: Any
try:  # pragma: no cover - Windows has no flock: processes there work side by side
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["exclusive"]


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (made if missing) for the block."""
    if fcntl is None:
        yield
        return
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
