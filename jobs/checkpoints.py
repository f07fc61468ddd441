"""Fail fast on a checkpoint folder that cannot be written, instead of stalling later."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from contract.exits import UsageError

# Enough to notice a full disk before Spark tries to write offsets and state there.
_PROBE_BYTES = 64 * 1024


class CheckpointError(UsageError):
    """A checkpoint folder is missing, not a folder, read-only or on a full disk: a
    restart cannot fix it, so the job exits with a usage code."""


def local_path(root: str) -> Path | None:
    """The local folder behind a checkpoint root, or None for a remote filesystem."""
    if root.startswith("file:"):
        return Path(root.removeprefix("file:").removeprefix("//"))
    return None if "://" in root else Path(root)


def probe(root: str, names: Sequence[str]) -> None:
    """Create each query's checkpoint folder and write, sync and remove a probe file.

    Remote roots (gs://, hdfs://) are left to Spark, which reports their errors itself.
    """
    base = local_path(root)
    if base is None:
        return
    for name in names:
        folder = base / name
        probe_file = folder / f".write-probe-{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(probe_file, "wb") as out:
                out.write(b"\0" * _PROBE_BYTES)
                out.flush()
                os.fsync(out.fileno())
        except OSError as err:
            raise CheckpointError(
                f"checkpoint folder {folder} is not usable: {err.strerror or err}"
            ) from err
        finally:
            with contextlib.suppress(OSError):  # nothing to clean where nothing was made
                probe_file.unlink(missing_ok=True)
