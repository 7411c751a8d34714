"""`make run` runs its processes under supervisord with the configuration
scripts/supervisord_conf.py writes: a crash is logged and restarted with supervisor's
back-off while the others keep running, a one-shot stops once it succeeded, every line
says whose it is, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from supervisor.datatypes import RestartUnconditionally, RestartWhenExitUnexpected
from supervisor.options import ServerOptions

from scripts import supervisord_conf
from scripts.supervisord_conf import Program

BIN = Path(sys.executable).parent
SERVICES = {
    "ml_data_api",
    "queue_manager",
    "monitoring_api",
    "retraining_api",
    "django_admin",
    "data_source",
    "ground_truth_collector",
}


class Supervised:
    """supervisord running a configuration written by scripts/supervisord_conf.py, its
    terminal output in a file."""

    def __init__(self, listed: list[Program], token: str) -> None:
        self.token = token
        # Short: a unix socket's path may not be much longer than 100 characters.
        self.run_dir = Path(tempfile.mkdtemp(prefix="gits-sv-"))
        self.conf = supervisord_conf.write(self.run_dir, listed)
        self.out = self.run_dir / "terminal.log"
        # Appending, as a terminal does: supervisord and the programs write it through
        # different descriptors.
        with self.out.open("ab") as out:
            self.process = subprocess.Popen(
                [BIN / "supervisord", "-c", self.conf], stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        """What the terminal shows so far."""
        return self.out.read_text(errors="replace")

    def wait_for(self, pattern: str, *, count: int = 1, seconds: float = 60) -> str:
        """The output once `pattern` occurs `count` times in it."""
        deadline = time.monotonic() + seconds
        while len(re.findall(pattern, output := self.output())) < count:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no {count} x {pattern!r} in:\n{output}")
            time.sleep(0.2)
        return output

    def ctl(self, *args: str) -> str:
        """supervisorctl's answer."""
        done = subprocess.run(
            [BIN / "supervisorctl", "-c", self.conf, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout

    def pid(self, name: str) -> int:
        """The pid of a running process."""
        return int(self.ctl("pid", name))

    def interrupt(self) -> int:
        """Ctrl-C: supervisord's exit status once it stopped everything."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=90)

    def close(self) -> None:
        """Kill what a failed test may have left: supervisord and its programs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for leftover in processes_with(self.token):
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        shutil.rmtree(self.run_dir, ignore_errors=True)


@pytest.fixture
def supervise() -> Iterator[Callable[[list[Program], str], Supervised]]:
    """Start supervisord on programs whose command lines hold a token; killed and
    cleaned up after the test."""
    started: list[Supervised] = []

    def start(listed: list[Program], token: str) -> Supervised:
        started.append(Supervised(listed, token))
        return started[-1]

    yield start
    for supervised in started:
        supervised.close()


def python(code: str, token: str) -> str:
    """Arguments of python running `code`, with `token` in the command line to find it."""
    return f'-c "{code}" {token}'


def processes_with(token: str) -> list[psutil.Process]:
    """Every process whose command line holds `token`."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(token in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def times_of(output: str, pattern: str) -> list[datetime]:
    """When supervisord logged each line matching `pattern`."""
    stamps = re.findall(rf"^(\S+ \S+) \w+ {pattern}", output, re.MULTILINE)
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in stamps]


def test_a_crash_is_logged_and_restarted_with_back_off_while_the_others_run(supervise):
    token = f"gits-sv-test-{uuid.uuid4().hex}"
    steady = python("import time; print('steady up'); time.sleep(600)", token)
    crash = python("import time; time.sleep(0.1); print('crashing'); raise SystemExit(3)", token)
    supervised = supervise(
        [
            Program("steady", steady, "stores"),
            Program("crasher", crash, "stream", startsecs=5, startretries=3),
        ],
        token,
    )
    supervised.wait_for("steady up")
    steady_pid = supervised.pid("stores:steady")

    output = supervised.wait_for("gave up: crasher entered FATAL state")

    # Every crash was logged, and each start came later after the crash than the one before.
    assert output.count("exited: crasher (exit status 3; not expected)") == 4
    exits = times_of(output, r"exited: crasher")
    spawns = times_of(output, r"spawned: 'crasher'")
    assert len(spawns) == 4
    delays = [(s - e).total_seconds() for e, s in zip(exits, spawns[1:], strict=False)]
    for attempt, delay in enumerate(delays, start=1):  # 1 s, 2 s, 3 s (+ up to a tick)
        assert attempt - 0.1 < delay < attempt + 1.5, delays
    # Its output is shown, named; the other process ran on untouched.
    assert len(re.findall(r"^crasher +\| crashing$", output, re.MULTILINE)) == 4
    assert re.search(r"^steady +\| steady up$", output, re.MULTILINE)
    assert supervised.pid("stores:steady") == steady_pid
    assert output.count("spawned: 'steady'") == 1
    assert "FATAL" in supervised.ctl("status", "stream:crasher")

    assert supervised.interrupt() == 0
    assert processes_with(token) == []


def test_a_killed_process_comes_back_at_once_a_done_one_shot_never_and_ctrl_c_stops_all(
    supervise, tmp_path
):
    token = f"gits-sv-test-{uuid.uuid4().hex}"
    # Fails its first run, succeeds its second.
    oneshot = python(
        "import pathlib, sys; marker = pathlib.Path(sys.argv[2]); first = not marker.exists();"
        " marker.touch(); print('first' if first else 'second'); sys.exit(1 if first else 0)",
        f"{token} {tmp_path / 'ran-once'}",
    )
    # Has a child of its own, which Ctrl-C must stop too.
    parent = python(
        "import subprocess, sys, time;"
        " subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', sys.argv[1]]);"
        " print('parent up'); time.sleep(600)",
        token,
    )
    victim = python("import time; print('victim up'); time.sleep(600)", token)
    supervised = supervise(
        [
            Program("parent", parent, "stores", startsecs=1),
            Program("oneshot", oneshot, "apps", oneshot=True),
            Program("victim", victim, "stream", replicas=2, startsecs=1),
        ],
        token,
    )
    supervised.wait_for("success: victim_1 entered RUNNING")
    supervised.wait_for("success: parent entered RUNNING")
    parent_pid, victim_pid = supervised.pid("stores:parent"), supervised.pid("stream:victim_1")

    os.kill(victim_pid, signal.SIGKILL)

    output = supervised.wait_for(r"success: victim_1 entered RUNNING", count=2)
    assert "exited: victim_1 (terminated by SIGKILL; not expected)" in output
    assert supervised.pid("stream:victim_1") not in (0, victim_pid)
    assert supervised.pid("stores:parent") == parent_pid
    assert output.count("spawned: 'victim_2'") == 1
    # The one-shot ran again after its failure, and not after its success.
    assert "exited: oneshot (exit status 1; not expected)" in output
    assert "exited: oneshot (exit status 0; expected)" in output
    assert output.count("spawned: 'oneshot'") == 2
    assert re.search(r"^oneshot +\| second$", output, re.MULTILINE)
    assert "EXITED" in supervised.ctl("status", "apps:oneshot")
    assert len(processes_with(token)) > 4  # programs, the child, the output copiers

    assert supervised.interrupt() == 0
    assert processes_with(token) == []
    assert "stopped: parent" in supervised.output()


@pytest.mark.parametrize("replicas", [1, 3])
def test_the_make_run_configuration_runs_every_service_and_the_worker_replicas(
    replicas, monkeypatch, tmp_path
):
    monkeypatch.setenv("WORKER_REPLICAS", str(replicas))
    path = supervisord_conf.write(
        tmp_path, supervisord_conf.programs(supervisord_conf.worker_replicas())
    )

    options = ServerOptions()  # supervisord's own reading of the file
    options.realize(args=["-c", str(path)])

    configs = {c.name: c for g in options.process_group_configs for c in g.process_configs}
    workers = {
        f"worker{own}_{n}"
        for own in ("", "_quality_class", "_sensor_anomaly")
        for n in range(1, replicas + 1)
    }
    streams = {
        f"{program}_{demo}"
        for program in ("data_source", "ground_truth_collector")
        for demo in ("quality_class", "sensor_anomaly")
    }
    assert set(configs) == SERVICES | workers | streams | {"setup"}
    for name in SERVICES | workers | streams:
        assert configs[name].autorestart is RestartUnconditionally
        assert configs[name].startsecs > 0
    # Each demo's workers consume its own service, each collector labels its own use case.
    assert "SERVICE_NAME" not in (configs["worker_1"].environment or {})
    assert configs["worker_quality_class_1"].environment["SERVICE_NAME"] == (
        "service_quality_class_A"
    )
    assert configs["worker_sensor_anomaly_1"].environment["SERVICE_NAME"] == (
        "service_sensor_anomaly_A"
    )
    collector = configs["ground_truth_collector_sensor_anomaly"]
    assert collector.environment["GROUND_TRUTH_USE_CASE"] == "sensor_anomaly"
    assert "--use-case quality_class" in configs["data_source_quality_class"].command
    setup = configs["setup"]
    assert "-m ml_data_loader --wait 60 --bootstrap-model" in setup.command
    assert setup.autorestart is RestartWhenExitUnexpected
    assert (setup.startsecs, setup.exitcodes) == (0, [0])
    for config in configs.values():
        assert config.stopasgroup and config.killasgroup
        assert config.redirect_stderr
        assert (config.stdout_logfile, config.stdout_logfile_maxbytes) == ("/dev/fd/1", 0)
        assert f"--name {config.name} -- " in config.command
    assert options.parse_warnings == options.parse_criticals == []
    # The stream stops first, ml_data_api and queue_manager last.
    order = [g.name for g in sorted(options.process_group_configs, key=lambda g: g.priority)]
    assert order == ["stores", "apps", "stream"]
    assert path.stat().st_mode & 0o077 == 0  # it holds the control socket's password


def test_no_worker_replicas_means_no_worker_program(monkeypatch):
    monkeypatch.setenv("WORKER_REPLICAS", "0")
    names = [p.name for p in supervisord_conf.programs(supervisord_conf.worker_replicas())]
    assert not [n for n in names if n.startswith("worker")]
    assert "data_source" in names


def test_demo_use_cases_choose_the_streams(monkeypatch):
    monkeypatch.setenv("DEMO_USE_CASES", "sensor_anomaly")
    names = [p.name for p in supervisord_conf.programs(1, supervisord_conf.demo_use_cases())]
    assert "worker_sensor_anomaly" in names and "worker" not in names
    monkeypatch.setenv("DEMO_USE_CASES", "sensor_anomaly,nope")
    with pytest.raises(SystemExit, match="nope"):
        supervisord_conf.demo_use_cases()


def test_every_metrics_server_of_make_run_has_a_port_of_its_own(monkeypatch, tmp_path):
    path = supervisord_conf.write(tmp_path, supervisord_conf.programs(3))

    options = ServerOptions()
    options.realize(args=["-c", str(path)])

    configs = {c.name: c for g in options.process_group_configs for c in g.process_configs}
    ports = {
        name: int(port)
        for name, config in configs.items()
        for setting, port in (config.environment or {}).items()
        if setting.endswith("_METRICS_PORT")
    }
    streams = {n for n in configs if n.startswith(("worker", "data_source", "ground_truth"))}
    assert set(ports) == streams  # the APIs serve theirs at their own port's /metrics
    assert len(set(ports.values())) == len(ports)
    assert not set(ports.values()) & set(range(8000, 8007))
    assert [ports[f"worker_{n}"] for n in (1, 2, 3)] == [8100, 8101, 8102]
    assert ports["worker_quality_class_1"] == 8103
    assert (ports["data_source"], ports["ground_truth_collector_sensor_anomaly"]) == (8010, 8022)
    assert options.parse_warnings == options.parse_criticals == []

    monkeypatch.setenv("WORKER_METRICS_PORT", "0")  # off: every replica gets 0
    monkeypatch.setenv("DATA_SOURCE_METRICS_PORT", "9010")
    off = supervisord_conf.programs(2, ports=supervisord_conf.metrics_ports())
    text = supervisord_conf.render(off, run_dir=tmp_path)
    assert set(re.findall(r'WORKER_METRICS_PORT="(\d+)"', text)) == {"0"}
    assert re.findall(r'DATA_SOURCE_METRICS_PORT="(\d+)"', text) == ["9010", "9011", "9012"]

    # A first port whose followers would pass 65535 stops `make run`, naming the setting
    monkeypatch.setenv("DATA_SOURCE_METRICS_PORT", "65535")
    with pytest.raises(SystemExit, match="DATA_SOURCE_METRICS_PORT=65535"):
        supervisord_conf.programs(2, ports=supervisord_conf.metrics_ports())

    # A first port that is no port stops it too, naming the setting as the processes would
    monkeypatch.setenv("WORKER_METRICS_PORT", "-5")
    with pytest.raises(SystemExit, match="WORKER_METRICS_PORT is '-5'"):
        supervisord_conf.metrics_ports()
