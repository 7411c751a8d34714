"""The three demo use cases `make run` streams side by side, one of each task:

- `product_quality` (regression, `gits_ml.demo`): the roasting machine's product quality.
- `quality_class` (classification): the same kind of roasting sensors, and whether the
  product is in spec or off spec, as the quality lab grades it. Imbalanced: about one
  product in ten is off spec.
- `sensor_anomaly` (anomaly detection): a pump's six sensors, minute by minute, with
  injected anomalies of known kind, sensor, start and end (spikes, level shifts, stuck
  sensors). Its target `anomaly` (1 inside an injected anomaly) is what a maintenance log
  would say afterwards: it judges the model and is never a feature of it.

Every generator is deterministic: the same `DemoConfig` always yields the same rows and
message ids, which is how data_source and the ground-truth collector agree on labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

import numpy as np
import pandas as pd

from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_ml.demo import (
    FEATURES,
    PRODUCT_QUALITY,
    TIME_COLUMN,
    DemoConfig,
    DemoData,
    _ar1,
    _fingerprint,
    generate,
)

# --- quality_class ---

GRADE = "grade"
IN_SPEC, OFF_SPEC = "in_spec", "off_spec"
# The quality below which the lab grades a product off spec: about the 10th percentile of
# the demo's quality (gits_ml.demo.quality), so that one product in ten is off spec.
OFF_SPEC_BELOW = 300.0

QUALITY_CLASS = UseCase(
    name="quality_class",
    task=Task.classification,
    features=[Column(name=name, type=ColumnType.float) for name in FEATURES],
    target=Column(name=GRADE, type=ColumnType.text),
    time_column=TIME_COLUMN,
    description="Roasting machine: is the product in spec or off spec? Imbalanced: about "
    "one in ten is off spec (synthetic demo data)",
)


def _graded(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    out = frame.copy()
    out["message_id"] = out["message_id"].str.replace("pq-", prefix, n=1, regex=False)
    if "quality" in out:
        out[GRADE] = np.where(out.pop("quality") < OFF_SPEC_BELOW, OFF_SPEC, IN_SPEC)
    return out


def generate_quality_class(config: DemoConfig | None = None) -> DemoData:
    """The classification demo: product_quality's generator with another seed (its own
    readings), the quality graded against `OFF_SPEC_BELOW`, ids prefixed `qc-`."""
    config = config or DemoConfig()
    data = generate(replace(config, seed=config.seed + 1000))
    return DemoData(
        training=_graded(data.training, "qc-"),
        testing=_graded(data.testing, "qc-"),
        production=_graded(data.production, "qc-"),
        ground_truth=_graded(data.ground_truth, "qc-"),
    )


# --- sensor_anomaly ---

ANOMALY = "anomaly"
# Each sensor: (mean, how strongly it follows the pump's load, how strongly its speed,
# its own noise), in the sensor's unit. Load and speed are standard AR(1) processes.
PUMP_SENSORS = {
    "vibration_mm_s": (2.5, 0.10, 0.40, 0.15),
    "bearing_temp_c": (55.0, 4.0, 1.5, 0.6),
    "motor_current_a": (40.0, 8.0, 1.0, 0.6),
    "pressure_bar": (6.0, 0.8, 0.2, 0.08),
    "flow_m3_h": (120.0, 25.0, 3.0, 2.0),
    "speed_rpm": (1480.0, 2.0, 15.0, 2.0),
}
PUMP_FEATURES = list(PUMP_SENSORS)
PUMP_PHI = 0.6  # minute-to-minute persistence of load and speed
ANOMALY_KINDS = ("spike", "level_shift", "stuck")
# Each kind's length in minutes (inclusive range) and size in the sensor's own spread.
ANOMALY_MINUTES = {"spike": (1, 3), "level_shift": (15, 45), "stuck": (20, 60)}
SPIKE_SIZE, SHIFT_SIZE = 8.0, 5.0
ANOMALY_EVERY_MINUTES = 240  # one injected anomaly in about this many minutes

SENSOR_ANOMALY = UseCase(
    name="sensor_anomaly",
    task=Task.anomaly,
    features=[Column(name=name, type=ColumnType.float) for name in PUMP_FEATURES],
    target=Column(name=ANOMALY, type=ColumnType.int),
    time_column=TIME_COLUMN,
    description="Pump: flag anomalous minutes (spikes, level shifts, stuck sensors) in six "
    "sensors; the target is the maintenance log's verdict (synthetic demo data)",
)


@dataclass(frozen=True)
class AnomalyDemoData(DemoData):
    """DemoData with the injected anomalies of each split: one row per anomaly with
    `split`, `kind` (one of ANOMALY_KINDS), `sensor`, `first_row` and `last_row` (row
    positions in the split, inclusive), `start` and `end` (demo times, inclusive), and
    `first_id` / `last_id` (message ids)."""

    events: pd.DataFrame = field(default_factory=pd.DataFrame)


def _pump(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """n minutes of normal pump readings, and each sensor's spread (standard deviation)."""
    load, speed = _ar1(rng, n, 2, PUMP_PHI).T
    columns, spread = {}, []
    for name, (mean, by_load, by_speed, noise) in PUMP_SENSORS.items():
        columns[name] = mean + by_load * load + by_speed * speed + rng.normal(0.0, noise, n)
        spread.append(float(np.sqrt(by_load**2 + by_speed**2 + noise**2)))
    return pd.DataFrame(columns), np.array(spread)


def _inject(
    rng: np.random.Generator, frame: pd.DataFrame, spread: np.ndarray, split: str
) -> tuple[np.ndarray, list[dict[str, object]]]:
    """Inject anomalies into `frame` in place, one about every ANOMALY_EVERY_MINUTES
    minutes, never overlapping; the 0/1 label of each row and the list of anomalies."""
    n = len(frame)
    label = np.zeros(n, dtype=int)
    events: list[dict[str, object]] = []
    position = int(rng.integers(30, ANOMALY_EVERY_MINUTES))
    while position < n - 1:
        kind = str(rng.choice(ANOMALY_KINDS))
        low, high = ANOMALY_MINUTES[kind]
        last = min(n - 1, position + int(rng.integers(low, high + 1)) - 1)
        sensor = int(rng.integers(len(PUMP_FEATURES)))
        column = frame.columns[sensor]
        rows = slice(position, last + 1)
        if kind == "spike":
            sign = rng.choice([-1.0, 1.0])
            frame.iloc[rows, sensor] += sign * SPIKE_SIZE * spread[sensor]
        elif kind == "level_shift":
            sign = rng.choice([-1.0, 1.0])
            frame.iloc[rows, sensor] += sign * SHIFT_SIZE * spread[sensor]
        else:  # stuck: the sensor repeats the reading it had when it froze
            frame.iloc[rows, sensor] = frame.iat[max(position - 1, 0), sensor]
        label[rows] = 1
        events.append(
            {
                "split": split,
                "kind": kind,
                "sensor": column,
                "first_row": position,
                "last_row": last,
            }
        )
        position = (
            last + 1 + int(rng.integers(ANOMALY_EVERY_MINUTES // 2, ANOMALY_EVERY_MINUTES * 3 // 2))
        )
    return label, events


def _pump_split(
    rng: np.random.Generator, n: int, start: pd.Timestamp, prefix: str, split: str
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    frame, spread = _pump(rng, n)
    label, events = _inject(rng, frame, spread, split)
    frame = frame.round(3)
    frame.insert(0, TIME_COLUMN, pd.date_range(start, periods=n, freq="min"))
    frame.insert(0, "message_id", [f"{prefix}{i:07d}" for i in range(n)])
    frame[ANOMALY] = label
    for event in events:
        first, last = int(event["first_row"]), int(event["last_row"])  # type: ignore[call-overload]
        event.update(
            start=frame[TIME_COLUMN].iat[first],
            end=frame[TIME_COLUMN].iat[last],
            first_id=frame["message_id"].iat[first],
            last_id=frame["message_id"].iat[last],
        )
    return frame, events


def generate_sensor_anomaly(config: DemoConfig | None = None) -> AnomalyDemoData:
    """The anomaly demo: `history_hours` minutes of history (the last `test_fraction` of
    it testing), then `production_minutes` of production, each with
    injected anomalies; every production minute gets its label, `ground_truth_delay_minutes`
    later (a maintenance log reviewed afterwards). Ids are `sa-<digest>-<split><row>`."""
    config = config or DemoConfig()
    history_rng, production_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed + 2000).spawn(2)
    )
    start = pd.Timestamp(config.start)
    history_minutes = config.history_hours
    history_digest = _fingerprint({"history": config.history_digest, "demo": "sensor_anomaly"})
    history, history_events = _pump_split(
        history_rng, history_minutes, start, f"sa-{history_digest}-h", "history"
    )
    n_test = round(history_minutes * config.test_fraction)
    training = history.iloc[: history_minutes - n_test].reset_index(drop=True)
    testing = history.iloc[history_minutes - n_test :].reset_index(drop=True)
    for event in history_events:
        in_test = int(event["first_row"]) >= history_minutes - n_test  # type: ignore[call-overload]
        event["split"] = "testing" if in_test else "training"
    production_start = start + timedelta(minutes=history_minutes)
    digest = _fingerprint({"all": config.digest, "demo": "sensor_anomaly"})
    production, production_events = _pump_split(
        production_rng,
        config.production_minutes,
        production_start,
        f"sa-{digest}-p",
        "production",
    )
    ground_truth = production.copy()
    ground_truth["available_at"] = ground_truth[TIME_COLUMN] + timedelta(
        minutes=config.ground_truth_delay_minutes
    )
    return AnomalyDemoData(
        training=training,
        testing=testing,
        production=production.drop(columns=[ANOMALY]),
        ground_truth=ground_truth,
        events=pd.DataFrame(history_events + production_events),
    )


# --- The registry ---


@dataclass(frozen=True)
class Demo:
    """A demo use case as `make run` runs it: its definition, the service and routing key
    its workers consume, and its deterministic generator."""

    use_case: UseCase
    service: str
    routing_key: str
    generate: Callable[[DemoConfig], DemoData]

    @property
    def target(self) -> str:
        """The target column's name."""
        assert self.use_case.target is not None  # every demo has one
        return self.use_case.target.name


DEMOS: dict[str, Demo] = {
    demo.use_case.name: demo
    for demo in (
        Demo(PRODUCT_QUALITY, "service_product_quality_A", "gits_product_quality_A", generate),
        Demo(
            QUALITY_CLASS,
            "service_quality_class_A",
            "gits_quality_class_A",
            generate_quality_class,
        ),
        Demo(
            SENSOR_ANOMALY,
            "service_sensor_anomaly_A",
            "gits_sensor_anomaly_A",
            generate_sensor_anomaly,
        ),
    )
}
