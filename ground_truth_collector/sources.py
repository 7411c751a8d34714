"""Where true labels come from. A source answers, for production message ids, the
labels known for them; the collector does the rest."""

from __future__ import annotations

from typing import Any, Protocol

from gits_ml.demo import TARGET, DemoConfig, generate


class LabelSource(Protocol):
    """Labels for the production readings that have one."""

    def labels_for(self, message_ids: list[str]) -> dict[str, Any]:
        """{message_id: label} for the ids this source knows."""
        ...


class DemoLabels:
    """The demo's ground-truth split: the lab's quality for about one reading in
    `ground_truth_every_minutes`. data_source sends a demo row as `<row id>~<run>`, so
    the row id before the `~` finds the label, whichever run or replay sent it."""

    def __init__(self, config: DemoConfig) -> None:
        truth = generate(config).ground_truth
        self._labels = dict(zip(truth["message_id"], truth[TARGET].astype(float), strict=True))

    def labels_for(self, message_ids: list[str]) -> dict[str, Any]:
        """The demo label of each id whose row has one."""
        found = {mid: self._labels.get(mid.split("~", 1)[0]) for mid in message_ids}
        return {mid: label for mid, label in found.items() if label is not None}
