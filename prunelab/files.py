"""Files prunelab writes for the user get the permissions any new file would get.

Atomic writes go through ``tempfile.mkstemp`` / ``mkdtemp``, which create private files (0600) and folders
(0700) whatever the umask, so a saved model or a sweep's rows could not be read by anyone else (found by a
new user: ``drwx------`` on a model meant for sharing). :func:`make_shareable` gives them the umask's usual
modes before they are renamed into place."""
from __future__ import annotations

import os
from pathlib import Path


def make_shareable(*paths: Path) -> None:
    """Give each path the mode a new file (0666) or folder (0777) gets under the current umask."""
    mask = os.umask(0)  # reading the umask means setting it: put it back at once
    os.umask(mask)
    for path in paths:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)
