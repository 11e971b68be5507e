"""A sweep's rows on disk: the JSON list ``prunelab eval --json`` writes, rewritten after every row so a sweep
that is stopped (or crashes) keeps what it measured, and read back so a rerun resumes instead of starting over."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

from ..errors import PrunelabError
from ..files import make_shareable
from .data import Utterance
from .evaluate import EvalRow


class RowFile:
    """The rows of ``path`` (a JSON list of :class:`EvalRow` dicts), checked to belong to this run.

    Rows measured on another model, with another seed, on another number of utterances or on other clips
    (``data``: a fingerprint of the clips' ids and reference texts, :func:`data_fingerprint`) make the file
    refuse to open (``PrunelabError``): resuming from them would mix two runs in one table. Rows written before
    rows carried a fingerprint are taken as this data's.
    """

    def __init__(self, path: str | os.PathLike, *, model: str, seed: int, utterances: int, data: str | None = None):
        self.path = Path(path)
        self.data = data
        self.rows: list[EvalRow] = self._read(model, seed, utterances) if self.path.exists() else []

    def _read(self, model: str, seed: int, utterances: int) -> list[EvalRow]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "[]")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PrunelabError(f"Cannot resume from {self.path}: it is not a readable JSON file ({e}). "
                                "Give another --json file, or move this one away to start over.") from None
        if not isinstance(data, list) or not all(isinstance(d, dict) and "method" in d and "wer" in d for d in data):
            raise PrunelabError(f"Cannot resume from {self.path}: it is not a list of `prunelab eval` rows. "
                                "Give another --json file, or move this one away to start over.")
        for d in data:  # rows written before rows carried their model and seed are taken as this run's
            theirs = (d.get("model", model), d.get("seed", seed), d.get("utterances"))
            if theirs != (model, seed, utterances):
                raise PrunelabError(
                    f"Cannot resume from {self.path}: it holds rows of another run (model {theirs[0]}, seed {theirs[1]}, "
                    f"{theirs[2]} utterances; this run: model {model}, seed {seed}, {utterances} utterances). "
                    "Give another --json file, or move this one away to start over.")
            if self.data is not None and d.get("data", self.data) != self.data:
                raise PrunelabError(
                    f"Cannot resume from {self.path}: its rows were measured on other clips (other names or "
                    "reference texts) than this --data. Give another --json file, or move this one away to start over.")
        return [EvalRow.from_dict(d) for d in data]

    def add(self, row: EvalRow) -> None:
        """Append ``row`` (replacing an older row of the same cell) and rewrite the file."""
        self.rows = [r for r in self.rows if r.key != row.key] + [row]
        self.write(self.rows)

    def write(self, rows: Sequence[EvalRow]) -> None:
        """Replace the file's content with ``rows`` atomically (a reader never sees half a file)."""
        self.rows = list(rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                extra = {"data": self.data} if self.data is not None else {}
                json.dump([{**r.as_dict(), **extra} for r in self.rows], f, indent=2)
            make_shareable(Path(tmp))  # mkstemp makes it private; the table is as shareable as any file
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def finish(self, grid_rows: Sequence[EvalRow]) -> None:
        """Write the sweep's rows in grid order, then any older rows of cells this sweep did not ask for."""
        keys = {r.key for r in grid_rows}
        self.write([*grid_rows, *(r for r in self.rows if r.key not in keys)])



def data_fingerprint(utterances: Sequence[Utterance]) -> str:
    """A short hash of the clips' ids and reference texts: the same clips (wherever they lie) give the same one."""
    digest = hashlib.sha256()
    for u in utterances:
        digest.update(f"{u.id}\t{u.text}\n".encode("utf-8"))
    return digest.hexdigest()[:16]
