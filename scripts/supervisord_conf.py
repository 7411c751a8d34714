"""Write the supervisord configuration `make run` starts: every GITS process, with
WORKER_REPLICAS worker replicas, each restarted when it exits, and the one-shot setup
(demo data and a first model) run until it succeeds.

    python scripts/supervisord_conf.py var/supervisor   # writes var/supervisor/supervisord.conf

`make run` then runs `supervisord -c var/supervisor/supervisord.conf` in the foreground,
and `make status` (`supervisorctl -c var/supervisor/supervisord.conf status`) shows what
runs. The processes are listed in `programs` below.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from decouple import AutoConfig, Csv

from data_source.settings import METRICS_PORT as DATA_SOURCE_METRICS_PORT
from gits_common.settings import MAX_PORT, MissingSetting, port_setting
from gits_ml.demo import PRODUCT_QUALITY
from gits_ml.demos import DEMOS
from ground_truth_collector.settings import METRICS_PORT as GROUND_TRUTH_METRICS_PORT
from workers.settings import METRICS_PORT as WORKER_METRICS_PORT

ROOT = Path(__file__).resolve().parents[1]
config = AutoConfig(search_path=str(ROOT))

# supervisord starts groups in this order and stops them in the reverse one, a group's
# programs together: the stream stops first, so that workers finish their batch while
# queue_manager and ml_data_api still answer, and those two stop last.
GROUPS = {"stores": 100, "apps": 200, "stream": 300}


@dataclass(frozen=True)
class Program:
    """One line of the old Procfile: a name, the arguments of the virtualenv's python
    (run from the repository root), and how supervisord treats it."""

    name: str
    args: str
    group: str  # one of GROUPS
    replicas: int | None = None  # None: one process named `name`; n: `name_1`..`name_n`
    oneshot: bool = False  # run until it exits 0, then never again
    startsecs: int = 10  # up this long counts as started (see the back-off comment)
    startretries: int = 10
    stopwaitsecs: int = 20  # SIGTERM, then SIGKILL after this long
    environment: tuple[tuple[str, str], ...] = ()  # set for this program over .env
    # (setting, port) of the process's metrics server; replica n gets port + n - 1,
    # so that replicas on one host do not share one. Port 0: no metrics server.
    metrics: tuple[str, int] | None = None

    @property
    def process_name(self) -> str:
        """supervisord's name of each process (a replica's number filled in by it)."""
        return self.name if self.replicas is None else f"{self.name}_%(process_num)d"

    @property
    def widest_name(self) -> int:
        """The length of its longest process name."""
        return len(self.name) + (0 if self.replicas is None else 1 + len(str(self.replicas)))


@dataclass(frozen=True)
class MetricsPorts:
    """The first metrics port of each kind of process (0: that kind serves none). The
    k-th demo's data_source and collector take the first + k; worker replicas take
    consecutive ports from the first, demo after demo. The APIs serve theirs at their
    own port's /metrics."""

    worker: int = WORKER_METRICS_PORT
    data_source: int = DATA_SOURCE_METRICS_PORT
    ground_truth: int = GROUND_TRUTH_METRICS_PORT


def programs(
    worker_replicas: int, demos: list[str] | None = None, ports: MetricsPorts | None = None
) -> list[Program]:
    """Every process of `make run`; with 0 replicas, no worker. Each demo use case of
    `demos` (DEMO_USE_CASES; `gits_ml.demos.DEMOS`) gets its own worker replicas (its
    service's), data_source and ground-truth collector; product_quality's keep their
    original names (`worker`, `data_source`, `ground_truth_collector`) and settings.
    Each of those serves its metrics on a port of its own (`ports`)."""
    demos = list(DEMOS) if demos is None else demos
    ports = ports or MetricsPorts()
    listed = [
        Program("ml_data_api", "-m ml_data_api", "stores"),
        Program("queue_manager", "-m queue_manager", "stores"),
        Program("setup", "-m ml_data_loader --wait 60 --bootstrap-model", "apps", oneshot=True),
        Program("monitoring_api", "-m monitoring_api", "apps"),
        Program("retraining_api", "-m retraining_api", "apps"),
        Program("django_admin", "-m django_admin", "apps"),
    ]
    for k, name in enumerate(demos):
        own = "" if name == PRODUCT_QUALITY.name else f"_{name}"
        service = () if not own else (("SERVICE_NAME", DEMOS[name].service),)
        listed += [
            # The batch in hand is finished before a worker exits.
            Program(
                f"worker{own}",
                "-m workers",
                "stream",
                replicas=worker_replicas,
                stopwaitsecs=30,
                environment=service,
                metrics=_nth(
                    "WORKER_METRICS_PORT", ports.worker, k * worker_replicas, worker_replicas
                ),
            ),
            Program(
                f"data_source{own}",
                f"-m data_source --loop --use-case {name}",
                "stream",
                metrics=_nth("DATA_SOURCE_METRICS_PORT", ports.data_source, k),
            ),
            Program(
                f"ground_truth_collector{own}",
                "-m ground_truth_collector",
                "stream",
                environment=(("GROUND_TRUTH_USE_CASE", name),),
                metrics=_nth("GROUND_TRUTH_METRICS_PORT", ports.ground_truth, k),
            ),
        ]
    return [p for p in listed if p.replicas != 0]


def _nth(setting: str, first: int, offset: int, count: int = 1) -> tuple[str, int]:
    """(setting, the port `offset` after `first`, the setting's value), for `count`
    processes taking consecutive ports from there; 0 (no metrics server) stays 0.
    SystemExit naming the setting when the last of them would be beyond 65535."""
    if not first:
        return setting, 0
    last = first + offset + max(count, 1) - 1
    if last > MAX_PORT:
        raise SystemExit(
            f"{setting}={first}: its processes need ports {first} to {last}, "
            f"which must be from 1 to {MAX_PORT}"
        )
    return setting, first + offset


def metrics_ports() -> MetricsPorts:
    """The first metrics ports from WORKER_METRICS_PORT, DATA_SOURCE_METRICS_PORT and
    GROUND_TRUTH_METRICS_PORT in the environment or .env, each checked as the processes
    check it (`port_setting`: SystemExit naming a setting that is no port)."""
    try:
        return MetricsPorts(
            worker=port_setting("WORKER_METRICS_PORT", default=WORKER_METRICS_PORT),
            data_source=port_setting("DATA_SOURCE_METRICS_PORT", default=DATA_SOURCE_METRICS_PORT),
            ground_truth=port_setting(
                "GROUND_TRUTH_METRICS_PORT", default=GROUND_TRUTH_METRICS_PORT
            ),
        )
    except MissingSetting as exc:
        raise SystemExit(str(exc)) from None


def demo_use_cases() -> list[str]:
    """DEMO_USE_CASES from the environment or .env (default: every demo), checked."""
    names = config("DEMO_USE_CASES", default=",".join(DEMOS), cast=Csv(post_process=list))
    unknown = sorted(set(names) - set(DEMOS))
    if unknown:
        raise SystemExit(f"DEMO_USE_CASES names {unknown}; the demos are {', '.join(DEMOS)}")
    return list(dict.fromkeys(names))


HEADER = """\
; Written by scripts/supervisord_conf.py for `make run`: change that file, not this one.
;
; Every program is restarted whenever it exits (the one-shot setup only until it has
; succeeded), with supervisor's back-off: a process that exits within `startsecs` of its
; start has not started; it goes to BACKOFF and is started again after 1 s, then 2 s,
; then 3 s (one second more per failed start), and after `startretries` failed starts in
; a row it is FATAL and stays down until `supervisorctl start <name>`. A process that
; ran longer than `startsecs` and then exits (a crash, kill -9) is started again at once,
; and its count of failed starts begins again at zero. supervisord logs every exit, with
; its status or signal, and every start and give-up.
;
; Every program's stdout and stderr go to supervisord's stdout (the terminal), each line
; prefixed with the process's name by scripts/prefix_output.py.

[supervisord]
; In the foreground: Ctrl-C (SIGINT) or SIGTERM stops the groups in the reverse order of
; their priority, each process with SIGTERM to its whole process group, then SIGKILL
; after its `stopwaitsecs`, and supervisord exits once all are stopped.
nodaemon=true
; supervisord's own log: printed in the terminal, and kept here.
logfile={run_dir}/supervisord.log
logfile_maxbytes=5MB
logfile_backups=1
pidfile={run_dir}/supervisord.pid
directory={root}
{user}environment=PYTHONUNBUFFERED="1"

; `make status`, or supervisorctl -c {run_dir}/supervisord.conf status|restart <name>|...
; The socket is its owner's only; the password (new at every start) is there so that
; supervisord does not warn about a server without authentication.
[unix_http_server]
file={run_dir}/supervisor.sock
chmod=0700
username=gits
password={password}

[supervisorctl]
serverurl=unix://{run_dir}/supervisor.sock
username=gits
password={password}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
"""

GROUP = """
[group:{name}]
programs={programs}
priority={priority}
"""

PROGRAM = """
[program:{name}]
command={command}
process_name={process_name}
numprocs={numprocs}
numprocs_start=1
directory={root}
autostart=true
autorestart={autorestart}
startsecs={startsecs}
startretries={startretries}
stopsignal=TERM
stopwaitsecs={stopwaitsecs}
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=/dev/fd/1
stdout_logfile_maxbytes=0
"""

ENVIRONMENT = "environment={pairs}\n"

ONESHOT = """\
; One-shot: exit status 0 is success and ends it; anything else runs it again. Started
; from its first moment (startsecs=0): a quick success must not count as a failed start.
exitcodes=0
"""


def render(listed: list[Program], *, run_dir: Path, python: str = sys.executable) -> str:
    """The configuration file's text."""
    paths = {
        "run_dir": escape(str(run_dir.resolve())),
        "root": escape(str(ROOT)),
        "python": escape(python),
    }
    # As root, saying so stops supervisord's warning that privileges were not dropped.
    user = "user=root\n" if os.getuid() == 0 else ""
    sections = [HEADER.format(user=user, password=secrets.token_urlsafe(16), **paths)]
    for group, priority in GROUPS.items():
        members = ",".join(s.name for p in listed if p.group == group for s in sections_of(p))
        if members:
            sections.append(GROUP.format(name=group, programs=members, priority=priority))
    width = max(p.widest_name for p in listed)
    for program in listed:
        for section in sections_of(program):
            sections.append(_program_text(program, section, width=width, paths=paths))
    return "".join(sections)


@dataclass(frozen=True)
class Section:
    """One [program:x] section of a Program: all its replicas, or one of them."""

    name: str
    process_name: str
    numprocs: int
    environment: tuple[tuple[str, str], ...]


def sections_of(program: Program) -> list[Section]:
    """The program's sections: one (with `numprocs` replicas), or one a replica when each
    needs a metrics port of its own, which supervisord's expansions cannot compute."""
    if program.metrics is None:
        return [
            Section(program.name, program.process_name, program.replicas or 1, program.environment)
        ]
    setting, first = program.metrics
    if program.replicas is None:
        return [
            Section(program.name, program.name, 1, (*program.environment, (setting, str(first))))
        ]
    return [
        Section(
            name := f"{program.name}_{n}",
            name,
            1,
            (*program.environment, (setting, str(first + n - 1 if first else 0))),
        )
        for n in range(1, program.replicas + 1)
    ]


def _program_text(program: Program, section: Section, *, width: int, paths: dict[str, str]) -> str:
    prefixed = f"{paths['root']}/scripts/prefix_output.py --width {width}"
    text = PROGRAM.format(
        name=section.name,
        command=(
            f"{paths['python']} {prefixed} --name {section.process_name}"
            f" -- {paths['python']} {escape(program.args)}"
        ),
        process_name=section.process_name,
        numprocs=section.numprocs,
        autorestart="unexpected" if program.oneshot else "true",
        startsecs=0 if program.oneshot else program.startsecs,
        startretries=program.startretries,
        stopwaitsecs=program.stopwaitsecs,
        **paths,
    )
    if section.environment:
        pairs = ",".join(f'{k}="{escape(v)}"' for k, v in section.environment)
        text += ENVIRONMENT.format(pairs=pairs)
    return text + (ONESHOT if program.oneshot else "")


def escape(value: str) -> str:
    """A value as supervisord reads it: `%` starts its expansions."""
    return value.replace("%", "%%")


def worker_replicas() -> int:
    """WORKER_REPLICAS from the environment or .env (default 2); 0 runs no worker."""
    replicas = int(config("WORKER_REPLICAS", default=2, cast=int))
    if replicas < 0:
        raise SystemExit(f"WORKER_REPLICAS must be 0 or more, not {replicas}")
    return replicas


def write(run_dir: Path, listed: list[Program]) -> Path:
    """Write `<run_dir>/supervisord.conf` for `listed`; its path."""
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = run_dir / "supervisord.conf"
    path.unlink(missing_ok=True)
    # Created readable by its owner only: it holds the control socket's password.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(render(listed, run_dir=run_dir))
    return path


def main(argv: list[str]) -> None:
    """Write the configuration of `make run` into the run directory given."""
    if len(argv) != 1:
        raise SystemExit("usage: python scripts/supervisord_conf.py RUN_DIR")
    write(Path(argv[0]), programs(worker_replicas(), demo_use_cases(), metrics_ports()))


if __name__ == "__main__":
    main(sys.argv[1:])
