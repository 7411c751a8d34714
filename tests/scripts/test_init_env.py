"""`make env`: secrets are generated once, kept after, and new settings appended."""

from __future__ import annotations

from pathlib import Path

from scripts import init_env

ROOT = Path(__file__).resolve().parents[2]


def read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )
    return {k: v for k, v in pairs}


def test_first_run_generates_distinct_secrets_and_later_runs_keep_them(tmp_path):
    env = tmp_path / ".env"
    init_env.main(env, ROOT / ".env.example")
    first = read_env(env)

    init_env.main(env, ROOT / ".env.example")

    secrets = [first[k] for k in ("GITS_API_TOKEN", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD")]
    assert all(len(s) >= 32 for s in secrets)
    assert len(set(secrets)) == 3
    assert read_env(env) == first
    assert env.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_settings_added_to_the_example_are_appended_without_touching_the_rest(tmp_path):
    example = tmp_path / "example"
    example.write_text("# token (generated)\nGITS_API_TOKEN=\nPORT=1\n")
    env = tmp_path / ".env"
    env.write_text("GITS_API_TOKEN=mine\nPORT=2\n")
    example.write_text(
        example.read_text() + "# new knob\nKNOB=on\n# a new secret\nRABBITMQ_PASSWORD=\n"
    )

    init_env.main(env, example)

    values = read_env(env)
    assert values["GITS_API_TOKEN"] == "mine"
    assert values["PORT"] == "2"
    assert values["KNOB"] == "on"
    assert len(values["RABBITMQ_PASSWORD"]) >= 32
    assert "# new knob" in env.read_text()


def test_no_secret_has_a_value_in_the_example():
    values = read_env(ROOT / ".env.example")
    assert all(values[k] == "" for k in init_env.SECRETS if k in values)
