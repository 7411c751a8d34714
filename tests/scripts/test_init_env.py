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

    names = ("GITS_ADMIN_TOKEN", "GITS_RUNTIME_TOKEN", "GITS_READ_TOKEN")
    secrets = [first[k] for k in (*names, "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD")]
    assert all(len(s) >= 32 for s in secrets)
    assert len(set(secrets)) == 5
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


def test_every_checkout_on_a_machine_gets_the_same_service_passwords(tmp_path):
    # Given two fresh clones on one machine (their own tokens, one machine file)
    machine = tmp_path / "machine" / "services.env"
    first, second = tmp_path / "first.env", tmp_path / "second.env"

    init_env.main(first, ROOT / ".env.example", machine)
    init_env.main(second, ROOT / ".env.example", machine)

    # Then they share the servers' passwords (the second cannot lock the first out) but
    # not their own secrets, and the machine file is its owner's only
    one, two = read_env(first), read_env(second)
    for key in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"):
        assert one[key] == two[key] and len(one[key]) >= 32
    assert one["GITS_ADMIN_TOKEN"] != two["GITS_ADMIN_TOKEN"]
    assert machine.stat().st_mode & 0o077 == 0


def test_an_existing_checkout_gives_the_machine_its_passwords_first(tmp_path):
    machine = tmp_path / "services.env"
    env = tmp_path / ".env"
    env.write_text("POSTGRES_PASSWORD=mine-from-before\nRABBITMQ_PASSWORD=rabbit-from-before\n")

    init_env.main(env, ROOT / ".env.example", machine)

    assert read_env(env)["POSTGRES_PASSWORD"] == "mine-from-before"
    assert "POSTGRES_PASSWORD=mine-from-before" in machine.read_text()


def test_an_old_default_left_unchanged_takes_the_new_one_and_a_chosen_value_stays(tmp_path):
    example = tmp_path / ".env.example"
    example.write_text("WORKER_BATCH_SIZE=500\n# WORKER_PREFETCH=2000\nOTHER=1\n")
    untouched, chosen = tmp_path / "untouched.env", tmp_path / "chosen.env"
    untouched.write_text("WORKER_BATCH_SIZE=100\nWORKER_PREFETCH=200\nOTHER=1\n")
    chosen.write_text("WORKER_BATCH_SIZE=64\nWORKER_PREFETCH=256\nOTHER=1\n")
    for env in (untouched, chosen):
        init_env.main(env, example, machine=tmp_path / "machine.env")
    assert init_env.read_pairs(untouched) == {"WORKER_BATCH_SIZE": "500", "OTHER": "1"}
    assert init_env.read_pairs(chosen) == {
        "WORKER_BATCH_SIZE": "64",
        "WORKER_PREFETCH": "256",
        "OTHER": "1",
    }
