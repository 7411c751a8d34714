"""The `gits` command against ml_data_api and queue_manager served in this process, the
real broker and a real worker: a user's files with their own names, loads that add
nothing the second time, a stream waited for until its predictions are stored, and
every mistake one line with what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer
from typer.testing import CliRunner

from gits_cli.main import app
from tests.workers.conftest import (  # noqa: F401
    DEMO,
    apis,
    ml_data_server,
    model_files,
    platform,
    queue_manager_app,
    queue_manager_port,
)

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def gits(apis, monkeypatch):  # noqa: F811
    """Run `gits ARGS` against the served APIs; (exit code, output)."""
    monkeypatch.setenv("ML_DATA_API_URL", apis["ml_data_api"])
    monkeypatch.setenv("QUEUE_MANAGER_URL", apis["queue_manager"])
    monkeypatch.setenv("MONITORING_API_URL", "http://127.0.0.1:9")  # nobody there
    monkeypatch.setenv("RETRAINING_API_URL", "http://127.0.0.1:9")

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result.exit_code, result.output

    return run


@pytest.fixture
def cancer_files(tmp_path) -> dict[str, Path]:
    """scikit-learn's breast cancer set, whose names have spaces: training, testing, a
    stream without labels, and its labels."""
    frame = load_breast_cancer(as_frame=True).frame
    frame.insert(0, "message_id", [f"bc-{i}" for i in frame.index])
    files = {name: tmp_path / f"cancer_{name}.csv" for name in ("training", "testing", "labels")}
    frame[:400].to_csv(files["training"], index=False)
    frame[400:480].to_csv(files["testing"], index=False)
    frame[480:][["message_id", "target"]].to_csv(files["labels"], index=False)
    return files


def test_names_that_break_the_rule_are_refused_with_it_then_mapped_and_kept(gits, cancer_files):
    name = f"cancer_{Path(cancer_files['training']).stat().st_ino % 10**6}"

    code, refused = gits("use-case", "create", name, "--from-csv", str(cancer_files["training"]),
                         "--target", "target")  # fmt: skip
    created = gits("use-case", "create", name, "--from-csv", str(cancer_files["training"]),
                   "--target", "target", "--normalize-names")  # fmt: skip
    shown = gits("use-case", "show", name)

    assert code == 1
    assert "a letter, then up to 62 letters, digits or '_'" in refused
    assert "--normalize-names" in refused
    assert created[0] == 0, created[1]
    assert "classification" in created[1]
    assert "mean radius" in shown[1] and "mean_radius" in shown[1]

    # the file's own names load, and a second load adds nothing
    first = gits("load", name, "--training", str(cancer_files["training"]),
                 "--testing", str(cancer_files["testing"]))  # fmt: skip
    again = gits("load", name, "--training", str(cancer_files["training"]))
    assert first[0] == 0, first[1]
    assert "training: 400 rows new, 0 already there" in first[1]
    assert "testing: 80 rows new, 0 already there" in first[1]
    assert "training: 0 rows new, 400 already there" in again[1]

    # labels for predictions not made yet label nothing, and say so
    labelled = gits("labels", name, str(cancer_files["labels"]))
    assert labelled[0] == 0, labelled[1]
    assert "0 predictions labelled; 89 ids not (yet) stored" in labelled[1]


def test_a_stream_is_published_and_waited_for_until_its_predictions_are_stored(
    gits,
    platform,  # noqa: F811
    tmp_path,
):
    rows = DEMO.production.iloc[:300][["message_id", *platform.use_case.feature_names]]
    stream = tmp_path / "stream.csv"
    rows.to_csv(stream, index=False)
    platform.start_worker()

    code, output = gits("publish", platform.use_case.name, str(stream), "--rate", "500")
    again = gits("publish", platform.use_case.name, str(stream), "--rate", "500")

    assert code == 0, output
    assert "published 300 messages" in output
    assert again[0] == 0 and "published 300 messages" in again[1]
    jobs = platform.jobs()
    assert len(jobs) == 300  # the second time stored nothing twice
    assert {job["last_status"] for job in jobs} == {"finished"}


def test_a_stream_with_no_worker_says_so_when_it_gives_up(gits, platform, tmp_path):  # noqa: F811
    rows = DEMO.production.iloc[:5][["message_id", *platform.use_case.feature_names]]
    stream = tmp_path / "s.csv"
    rows.to_csv(stream, index=False)

    code, output = gits("publish", platform.use_case.name, str(stream), "--wait-seconds", "2")

    assert code == 3  # something is down
    assert "5 of 5 messages have no prediction after 2 s" in output
    assert "workers running?" in output


def test_a_use_case_a_service_uses_is_not_deleted(gits, platform):  # noqa: F811
    code, output = gits("use-case", "delete", platform.use_case.name, "--yes")

    assert code == 1
    assert platform.service in output


def test_a_bad_file_is_one_line_naming_the_column_and_line(gits, platform, tmp_path):  # noqa: F811
    rows = DEMO.production.iloc[:3][["message_id", *platform.use_case.feature_names]].copy()
    feature = platform.use_case.feature_names[0]
    rows[feature] = rows[feature].astype(object)
    rows.iloc[1, rows.columns.get_loc(feature)] = "n/a?"
    bad = tmp_path / "bad.csv"
    rows.to_csv(bad, index=False)

    code, output = gits("publish", platform.use_case.name, str(bad))
    missing = gits("publish", platform.use_case.name, str(tmp_path / "none.csv"))

    assert code == 1
    assert f"bad.csv, line 3: {feature} 'n/a?' is not a valid value" in output
    assert missing[0] == 1 and "no file" in missing[1]


def test_status_names_what_is_down_and_exits_3(gits, platform):  # noqa: F811
    code, output = gits("status")

    assert code == 3
    assert "monitoring_api" in output and "DOWN" in output
    assert platform.service in output  # the services queue_manager knows, with their queues
    assert f"service {platform.service} has no worker (`gits worker {platform.service}`" in output


def test_readings_of_one_use_case_are_not_sent_to_another_ones_service(
    gits,
    platform,  # noqa: F811
    tmp_path,
):
    other = platform.use_case.model_copy(update={"name": f"{platform.use_case.name}_b"})
    with platform.http("ml_data_api") as ml:
        ml.post("/ml_data_api/use_cases", json=other.model_dump(mode="json")).raise_for_status()
    rows = DEMO.production.iloc[:3][["message_id", *other.feature_names]]
    stream = tmp_path / "s.csv"
    rows.to_csv(stream, index=False)

    code, output = gits("publish", other.name, str(stream), "--service", platform.service)

    assert code == 1
    assert f"service {platform.service} serves use case {platform.use_case.name}" in output


def test_an_unreachable_platform_is_one_line_with_what_to_do(monkeypatch, tmp_path):
    env = {
        "ML_DATA_API_URL": "http://127.0.0.1:9",
        "PATH": "/usr/bin:/bin",
        "GITS_ENV_DIR": str(tmp_path),
    }
    from tests.conftest import TOKENS

    env |= {f"GITS_{role.upper()}_TOKEN": t for role, t in TOKENS.items()}
    done = subprocess.run(
        [sys.executable, "-m", "gits_cli", "use-case", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )

    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("gits: ml_data_api unreachable at http://127.0.0.1:9")
    assert "make run" in lines[1]


def test_every_verb_has_help():
    verbs = [
        ["status"], ["load"], ["publish"], ["labels"], ["train"], ["job"], ["promote"],
        ["rollback"], ["models"], ["bind"], ["report"], ["history"], ["worker"],
        ["use-case", "create"],
        ["use-case", "list"], ["use-case", "show"], ["use-case", "delete"],
    ]  # fmt: skip
    for verb in verbs:
        result = runner.invoke(app, [*verb, "--help"])
        assert result.exit_code == 0, (verb, result.output)
        assert "Usage: gits" in result.output


def test_a_bad_version_is_a_usage_error():
    result = runner.invoke(app, ["bind", "svc", "model:two"])

    assert result.exit_code == 2
    assert "'two' is not a version number" in result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["train", "x", "--tune-seconds", "nan"], "--tune-seconds"),
        (["train", "x", "--tune-seconds", "0"], "--tune-seconds"),
        (["train", "x", "--trials", "0"], "--trials"),
        (["performance", "x", "--last", "0"], "--last"),
        (["anomalies", "x", "--last", "-1"], "--last"),
    ],
)
def test_option_values_no_request_could_take_are_usage_errors(args, option):
    # `--tune-seconds nan` was "unexpected ValueError ... a bug: please report" (#14 review)
    result = runner.invoke(app, args)

    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output


def test_the_gits_entry_point_is_installed():
    gits = Path(sys.executable).parent / "gits"

    done = subprocess.run([str(gits), "--help"], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0
    assert "use-case" in done.stdout
