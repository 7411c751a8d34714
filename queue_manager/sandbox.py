"""Where untrusted model files are tried: a process of their own, away from the API.

queue_manager starts one sandbox process (`python -m queue_manager.sandbox`) with an
environment holding no secret (no token, no password, no `.env` in its directory) and
PyCaret already imported. For each upload it forks a child that limits its own CPU time
and memory (setrlimit), loads the file, runs queue_manager.validation's checks and
writes what it found; the sandbox kills a child that overruns its wall-clock time. A
model that crashes, hangs, or eats memory ends that child, never the API.

Protocol, one JSON object a line: the API writes a request {"model": <path>,
"use_case": {...}, "rows": [...], "rows_from", "time_limit", "memory_bytes"} to the
sandbox's stdin and reads {"ok": true, "check": {...}} or {"ok": false, "check": <name>,
"reason": <words>} from its stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any, BinaryIO

from gits_common import errors
from gits_common.registry import ModelCheck
from gits_common.schemas import UseCase
from gits_ml.modeling import ModelFailed

log = logging.getLogger(__name__)

# Imported once by the sandbox so that each child starts with them loaded: a PyCaret
# model file imports PyCaret, scikit-learn and its estimator's library when unpickled.
WARM_MODULES = ("pycaret.internal.pipeline", "pycaret.regression", "lightgbm", "catboost")
# Settings that keep numerical libraries correct or quiet on this machine; no secrets.
PASSED_ENV_PREFIXES = ("OPENBLAS_", "LANG", "LC_", "TZ")
READY = {"ready": True}


class Sandbox:
    """The API side: one sandbox process, started on first use (or by `start`),
    restarted when it has died, and one check at a time. Its calls block; the async
    `check` runs them in a thread, so one sandbox may serve several event loops."""

    def __init__(
        self, *, time_limit: float, memory_bytes: int, preload: tuple[str, ...] = WARM_MODULES
    ) -> None:
        self.time_limit = time_limit
        self.memory_bytes = memory_bytes
        self.preload = preload
        self._dir = Path(tempfile.mkdtemp(prefix="gits-sandbox-"))
        self._dir.chmod(0o755)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the sandbox process now (blocking until it is ready), so that the first
        upload does not wait for PyCaret's import."""
        with self._lock:
            self._running()

    @property
    def pid(self) -> int | None:
        """The sandbox process's id, while it runs."""
        return None if self._process is None else self._process.pid

    async def check(
        self, content: BinaryIO, use_case: UseCase, rows: list[dict[str, Any]], *, rows_from: str
    ) -> ModelCheck:
        """What the model file is, or `ModelFailed` naming the check it failed;
        `errors.Unavailable` when the sandbox itself cannot run."""
        path = self._dir / f"upload-{uuid.uuid4().hex}.pkl"
        request = {
            "model": str(path),
            "use_case": use_case.model_dump(mode="json"),
            "rows": rows,
            "rows_from": rows_from,
            "time_limit": self.time_limit,
            "memory_bytes": self.memory_bytes,
        }
        try:
            await asyncio.to_thread(_copy, content, path)
            answer = await asyncio.to_thread(self._ask, request)
        finally:
            path.unlink(missing_ok=True)
        if not answer.get("ok"):
            raise ModelFailed(str(answer.get("check")), str(answer.get("reason")))
        return ModelCheck.model_validate(answer["check"])

    def close(self) -> None:
        """Stop the sandbox process and remove its directory."""
        with self._lock:
            self._stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            process = self._running()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps(request).encode() + b"\n")
                process.stdin.flush()
                # The sandbox kills a child at the time limit; the margin covers the fork.
                line = _read_line(process.stdout, timeout=self.time_limit + 30)
            except (OSError, TimeoutError) as exc:
                self._stop()
                raise errors.Unavailable(f"the model sandbox failed: {exc!r}") from exc
            if not line:
                # The sandbox only forks children: it ends while checking a file when
                # that file's code ended it. The file is refused; the sandbox restarts.
                self._stop()
                raise ModelFailed("limits", "the model ended the process that checked it")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._process = subprocess.Popen(
            [sys.executable, "-m", "queue_manager.sandbox", *self.preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=self._dir,
            env=clean_environment(self._dir),
        )
        assert self._process.stdout is not None
        try:
            # PyCaret's import takes seconds, more on a busy host.
            ready = _read_line(self._process.stdout, timeout=300)
        except TimeoutError:
            ready = b""
        if json.loads(ready or b"{}") != READY:
            self._stop()
            raise errors.Unavailable("the model sandbox did not start")
        log.info("model sandbox ready (pid %d)", self._process.pid)
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


def _read_line(stream: IO[bytes], *, timeout: float) -> bytes:
    """One line from a pipe, or TimeoutError after `timeout` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no answer in {timeout:g} s")
    return stream.readline()


def _copy(content: BinaryIO, path: Path) -> None:
    content.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(content, out)
    path.chmod(0o644)


def clean_environment(home: Path) -> dict[str, str]:
    """The sandbox's environment: a path, a home of its own, and numerical libraries on
    one thread; nothing else of the API's environment, so no secret reaches it."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "MPLCONFIGDIR": str(home),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update({k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV_PREFIXES)})
    return env


# --- Inside the sandbox process ---


def serve(preload: list[str]) -> None:
    """The sandbox's loop: import `preload`, say ready, then answer one request a line."""
    import importlib

    for module in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    _answer(READY)
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError:
            _answer({"ok": False, "check": "sandbox", "reason": "unreadable request"})
            continue
        _answer(_in_child(request))


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _in_child(request: dict[str, Any]) -> dict[str, Any]:
    """Run one check in a forked child; its answer, or why it gave none."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(request, write_end)
    os.close(write_end)
    limit = float(request["time_limit"])
    output, timed_out = _read_until(read_end, deadline=time.monotonic() + limit)
    os.close(read_end)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return _refusal("limits", f"the model took longer than {limit:g} s to load and predict")
    try:
        answer: dict[str, Any] = json.loads(output)
        return answer
    except ValueError:
        return _refusal("limits", _death(status, request))


def _child(request: dict[str, Any], out: int) -> None:
    """Limit this process, check the model, write the answer, exit."""
    from queue_manager.validation import check_model

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # what the model prints must not reach the protocol
        _limit(float(request["time_limit"]), int(request["memory_bytes"]))
        content = Path(request["model"]).read_bytes()
        use_case = UseCase.model_validate(request["use_case"])
        check = check_model(content, use_case, request["rows"], rows_from=request["rows_from"])
        answer = {"ok": True, "check": check.model_dump(mode="json")}
    except ModelFailed as exc:
        answer = _refusal(exc.check, exc.reason)
    except MemoryError:
        mb = int(request["memory_bytes"]) // 2**20
        answer = _refusal("limits", f"the model needed more than the {mb} MB it may use")
    except BaseException as exc:  # anything else the untrusted code raised
        answer = _refusal("load", f"{type(exc).__name__}: {str(exc)[:300]}")
    with contextlib.suppress(BaseException):
        os.write(out, json.dumps(answer).encode())
    os._exit(0)


def _limit(seconds: float, memory_bytes: int) -> None:
    """CPU time and address space for this child: what it has now (PyCaret imported)
    plus `memory_bytes`."""
    cpu = int(seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    space = pages * os.sysconf("SC_PAGE_SIZE") + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (space, space))


def _read_until(fd: int, *, deadline: float) -> tuple[bytes, bool]:
    """Everything written to `fd` until its writer closes it; (bytes, timed out)."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def _death(status: int, request: dict[str, Any]) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        if signum == signal.SIGXCPU:
            return f"the model used more than {request['time_limit']:g} s of CPU time"
        if signum == signal.SIGKILL:
            mb = int(request["memory_bytes"]) // 2**20
            return f"the model was killed (out of memory? it may use {mb} MB)"
        return f"the model crashed its process ({signal.Signals(signum).name})"
    return f"the model ended its process (exit status {os.WEXITSTATUS(status)})"


def _refusal(check: str, reason: str) -> dict[str, Any]:
    return {"ok": False, "check": check, "reason": reason}


if __name__ == "__main__":
    serve(sys.argv[1:])
