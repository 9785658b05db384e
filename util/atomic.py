"""Files that are either absent, as they were, or complete: never half written."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` under a temporary name beside it (``.<name>.<pid>.tmp``) and rename.

    An ``OSError`` propagates after the temporary file is removed; ``path`` is then as it was.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
