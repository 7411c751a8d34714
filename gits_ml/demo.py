"""The demo use case `product_quality`: a deterministic stand-in for the public
roasting-machine "production quality" data set the original GITS used.

Sensors are read every minute: three temperatures in each of five chambers
(`T_data_1_1` .. `T_data_5_3`), the layer height `H_data` and the absolute humidity
`AH_data`. The product's quality (roughly 220-500) is a noisy, non-linear function of the
sensors, measured about once an hour. Each sensor follows a stationary AR(1) process, so
hourly samples (training/testing) and per-minute readings (production) share the same
distribution until the drift knob shifts one chamber's temperatures.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from gits_common.schemas import Column, ColumnType, Task, UseCase
from gits_common.settings import config

CHAMBERS = 5
SENSORS_PER_CHAMBER = 3
TEMPERATURES = [
    f"T_data_{c}_{s}" for c in range(1, CHAMBERS + 1) for s in range(1, SENSORS_PER_CHAMBER + 1)
]
FEATURES = [*TEMPERATURES, "H_data", "AH_data"]
TARGET = "quality"
TIME_COLUMN = "timestamp"

PRODUCT_QUALITY = UseCase(
    name="product_quality",
    task=Task.regression,
    features=[Column(name=name, type=ColumnType.float) for name in FEATURES],
    target=Column(name=TARGET, type=ColumnType.float),
    time_column=TIME_COLUMN,
    description="Roasting machine: predict product quality from chamber temperatures "
    "and humidity (synthetic demo data)",
)

# Mean and spread of each chamber's temperature (degrees C), then H_data and AH_data.
CHAMBER_MEAN = np.array([250.0, 360.0, 480.0, 360.0, 250.0])
CHAMBER_SD = np.array([25.0, 40.0, 45.0, 40.0, 25.0])
SENSOR_OFFSET = np.array([-8.0, 0.0, 8.0])
H_MEAN, H_SD = 175.0, 10.0
AH_MEAN, AH_SD = 9.0, 2.0
# Minute-to-minute persistence. Kept low: a window of a few hundred readings must look
# like the whole process, or a drift detector sees drift where there is none.
PHI_PER_MINUTE = 0.3


@dataclass(frozen=True)
class DemoConfig:
    """Every knob of the generator; the same config always yields the same data."""

    seed: int = 7
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    history_hours: int = 6000  # labelled hourly samples before production starts
    test_fraction: float = 0.3  # the last part of the history is the testing split
    production_minutes: int = 20_000
    label_every_minutes: int = 60  # the quality lab measures about once an hour
    ground_truth_every_minutes: int = 60  # production readings that get a label
    ground_truth_delay_minutes: int = 60  # labels arrive this long after the reading
    drift_after_minute: int | None = None  # production minute from which the drift applies
    drift_chamber: int = 3
    drift_shift: float = 40.0  # degrees added to every sensor of the drifting chamber
    noise_sd: float = 6.0

    @property
    def digest(self) -> str:
        """A short fingerprint of everything, for production message ids."""
        return _fingerprint(asdict(self))

    @property
    def history_digest(self) -> str:
        """A fingerprint of what shapes the history alone, for training and testing ids:
        turning the drift knob must not make the same history look like new rows."""
        fields = asdict(self)
        return _fingerprint({k: fields[k] for k in HISTORY_FIELDS})


HISTORY_FIELDS = (
    "seed",
    "start",
    "history_hours",
    "test_fraction",
    "label_every_minutes",
    "noise_sd",
)


def _fingerprint(fields: dict[str, object]) -> str:
    return hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class DemoData:
    """The four splits. Production has no label; ground truth carries it, delayed."""

    training: pd.DataFrame
    testing: pd.DataFrame
    production: pd.DataFrame
    ground_truth: pd.DataFrame


def _ar1(rng: np.random.Generator, n: int, width: int, phi: float) -> np.ndarray:
    """`width` independent stationary AR(1) series of length n, in standard units."""
    shocks = rng.standard_normal((n, width)) * np.sqrt(1.0 - phi**2)
    shocks[0] = rng.standard_normal(width)  # start in the stationary distribution
    return np.asarray(lfilter([1.0], [1.0, -phi], shocks, axis=0))


def _sensors(rng: np.random.Generator, n: int, phi: float) -> pd.DataFrame:
    """n consecutive sensor readings, taken `phi`-correlated apart."""
    states = _ar1(rng, n, CHAMBERS + 2, phi)
    own = rng.standard_normal((n, CHAMBERS, SENSORS_PER_CHAMBER))
    chamber = states[:, :CHAMBERS, None] * 0.9 + own * 0.436  # ~unit variance, 0.9 shared
    temps = CHAMBER_MEAN[None, :, None] + SENSOR_OFFSET + CHAMBER_SD[None, :, None] * chamber
    frame = pd.DataFrame(temps.reshape(n, -1).round(1), columns=TEMPERATURES)
    frame["H_data"] = (H_MEAN + H_SD * states[:, CHAMBERS]).round(2)
    frame["AH_data"] = (AH_MEAN + AH_SD * states[:, CHAMBERS + 1]).clip(0.5).round(2)
    return frame


def _chamber_mean(frame: pd.DataFrame, chamber: int) -> pd.Series:
    cols = [f"T_data_{chamber}_{s}" for s in range(1, SENSORS_PER_CHAMBER + 1)]
    return frame[cols].mean(axis=1)


def quality(frame: pd.DataFrame, rng: np.random.Generator, noise_sd: float) -> np.ndarray:
    """The product quality the lab would measure for these sensor readings."""
    t1, t2, t3, t4, t5 = (_chamber_mean(frame, c) for c in range(1, CHAMBERS + 1))
    clean = (
        360.0
        + 70.0 * np.tanh((t3 - 480.0) / 50.0)  # the hottest chamber roasts the product
        - 0.0035 * (t2 - 360.0) ** 2  # chamber 2 has a sweet spot
        + 18.0 * np.sin((t4 - 360.0) / 30.0)
        + 0.0012 * (t1 - 250.0) * (t5 - 250.0)
        + 0.6 * (frame["H_data"] - H_MEAN)
        - 6.0 * (frame["AH_data"] - AH_MEAN)
    )
    noisy = clean.to_numpy() + rng.normal(0.0, noise_sd, len(frame))
    return np.clip(noisy, 221.0, 505.0).round(2)


def _apply_drift(frame: pd.DataFrame, config: DemoConfig) -> None:
    if config.drift_after_minute is None:
        return
    cols = [f"T_data_{config.drift_chamber}_{s}" for s in range(1, SENSORS_PER_CHAMBER + 1)]
    frame.loc[frame.index >= config.drift_after_minute, cols] += config.drift_shift


def _label_minutes(rng: np.random.Generator, minutes: int, every: int) -> np.ndarray:
    """About one sample every `every` minutes, each a few minutes late."""
    marks = np.arange(0, minutes - every, every)
    return marks + rng.integers(0, max(1, every // 6), len(marks))


def generate(config: DemoConfig | None = None) -> DemoData:
    """The demo's training, testing, production and ground-truth splits."""
    config = config or DemoConfig()
    history_rng, production_rng, label_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3)
    )

    # History: one labelled sample per hour-ish, sampled from the same AR(1) processes.
    history = _sensors(
        history_rng, config.history_hours, PHI_PER_MINUTE**config.label_every_minutes
    )
    hours = np.arange(config.history_hours) * config.label_every_minutes
    jitter = history_rng.integers(0, max(1, config.label_every_minutes // 6), config.history_hours)
    history.insert(
        0, TIME_COLUMN, pd.Timestamp(config.start) + pd.to_timedelta(hours + jitter, "min")
    )
    history[TARGET] = quality(history, history_rng, config.noise_sd)
    history_digest, digest = config.history_digest, config.digest
    history.insert(0, "message_id", [f"pq-{history_digest}-h{i:07d}" for i in range(len(history))])
    n_test = round(len(history) * config.test_fraction)
    training, testing = history.iloc[: len(history) - n_test], history.iloc[len(history) - n_test :]

    # Production: every minute after the history, with the drift knob applied.
    production = _sensors(production_rng, config.production_minutes, PHI_PER_MINUTE)
    _apply_drift(production, config)
    prod_start = config.start + timedelta(minutes=int(hours[-1]) + config.label_every_minutes)
    production.insert(
        0, TIME_COLUMN, pd.date_range(prod_start, periods=len(production), freq="min")
    )
    production.insert(0, "message_id", [f"pq-{digest}-p{i:07d}" for i in range(len(production))])
    true_quality = quality(production, production_rng, config.noise_sd)

    labelled = _label_minutes(label_rng, len(production), config.ground_truth_every_minutes)
    ground_truth = production.iloc[labelled].copy()
    ground_truth[TARGET] = true_quality[labelled]
    ground_truth["available_at"] = ground_truth[TIME_COLUMN] + timedelta(
        minutes=config.ground_truth_delay_minutes
    )
    return DemoData(
        training=training.reset_index(drop=True),
        testing=testing.reset_index(drop=True),
        production=production,
        ground_truth=ground_truth.reset_index(drop=True),
    )


def example_row() -> dict[str, object]:
    """One typical production reading, for API examples and documentation."""
    temps = {
        f"T_data_{c}_{s}": float(CHAMBER_MEAN[c - 1] + SENSOR_OFFSET[s - 1])
        for c in range(1, CHAMBERS + 1)
        for s in range(1, SENSORS_PER_CHAMBER + 1)
    }
    return {
        "message_id": "example-0001",
        TIME_COLUMN: "2025-01-01T12:00:00+00:00",
        **temps,
        "H_data": H_MEAN,
        "AH_data": AH_MEAN,
    }


def demo_config() -> DemoConfig:
    """The demo generator's knobs from DEMO_* variables (for the settings modules of
    data_source and the ground truth collector, which must agree on them: they determine
    the demo's message ids)."""
    drift_after = config("DEMO_DRIFT_AFTER_MINUTE", default="")
    return DemoConfig(
        seed=config("DEMO_SEED", default=7, cast=int),
        drift_after_minute=int(drift_after) if drift_after.strip() else None,
        drift_shift=config("DEMO_DRIFT_SHIFT", default=40.0, cast=float),
        ground_truth_every_minutes=config("DEMO_GROUND_TRUTH_EVERY", default=60, cast=int),
    )
