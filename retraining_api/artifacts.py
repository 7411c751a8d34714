"""The files jobs make: challenger models until they are promoted, and explainer pages.
Named by job id, written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path


class Artifacts:
    """A folder of job outputs."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def challenger(self, job_id: int) -> Path:
        """Where a retraining job's challenger model file lives."""
        return self.root / "challengers" / f"job-{job_id}.pkl"

    def explainer(self, job_id: int) -> Path:
        """Where an explainer job's HTML page lives."""
        return self.root / "explainers" / f"job-{job_id}.html"

    def write(self, path: Path, content: bytes) -> None:
        """Write through a temporary file, so readers never see half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".partial")
        partial.write_bytes(content)
        os.replace(partial, path)
