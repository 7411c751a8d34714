"""The first model of a service: trained on the training split, uploaded to
queue_manager and bound, so messages succeed from the first one, with no manual step."""

from __future__ import annotations

import asyncio
import logging

import pandas as pd

from gits_common import errors
from gits_common.clients import QueueManagerClient
from gits_common.registry import ServiceRead
from gits_common.schemas import Task, UseCase
from gits_ml import modeling

log = logging.getLogger(__name__)


async def bootstrap_model(
    queue_manager: QueueManagerClient,
    use_case: UseCase,
    training: pd.DataFrame,
    *,
    service: str,
    routing_key: str,
    evaluation: pd.DataFrame | None = None,
) -> ServiceRead:
    """The service's binding: the existing one, or a fresh model bound to it. A
    classifier is trained with PyCaret's `fix_imbalance` (SMOTE from imbalanced-learn:
    a rare class is what a plant cares about); an anomaly model gets its score threshold
    chosen on the labelled `evaluation` rows (`modeling.train`), when given."""
    try:
        existing = await queue_manager.service(service)
        log.info(
            "service %s already uses %s:%s; no model trained",
            service,
            existing.algorithm_name,
            existing.resolved_version,
        )
        return existing
    except errors.NotFound:
        pass
    log.info("training a first model for %s on %d rows", use_case.name, len(training))
    options = {"fix_imbalance": True} if use_case.task is Task.classification else None
    labelled = evaluation if use_case.task is Task.anomaly and use_case.target else None
    pipeline, board = await asyncio.to_thread(
        modeling.train, use_case, training, evaluation=labelled, setup_options=options
    )
    content = modeling.to_bytes(pipeline)
    best = board.index[0] if len(board) else type(pipeline.steps[-1][1]).__name__
    algorithm = await queue_manager.upload_algorithm(
        name=f"{use_case.name}_baseline",
        content=content,
        use_case=use_case,
        description=f"{best}, trained by ml_data_loader on {len(training)} rows",
        uploaded_by="ml_data_loader",
        sha256=modeling.sha256(content),
    )
    bound = await queue_manager.bind_service(
        service,
        routing_key=routing_key,
        algorithm_name=algorithm.name,
        algorithm_version=algorithm.version,
        use_case=use_case.name,
        updated_by="ml_data_loader",
    )
    log.info("bound %s to %s", service, algorithm.label)
    return bound
