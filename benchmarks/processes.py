"""Replicas of one process for a pipeline benchmark: started together, their log lines
watched (to know when each has loaded its model) and their memory sampled."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from types import TracebackType

import psutil

# Log lines every benchmarked consumer writes: when it consumes, and when its model is in
# memory (the workers' own "service ... now uses model ..." line).
CONSUMING = " consuming "
MODEL_LOADED = "now uses model"
SAMPLE_SECONDS = 0.2


class Replicas:
    """`count` copies of `argv` run with `env`, logging at INFO on stderr. Lines above
    INFO (warnings, errors, tracebacks) are passed on to this process's stderr, prefixed
    with `name`; the INFO lines are kept to be waited for."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], count: int) -> None:
        self.name = name
        self._lines: list[list[str]] = [[] for _ in range(count)]
        self._times: list[list[float]] = [[] for _ in range(count)]  # perf_counter a line
        self._peaks = [0] * count
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.processes = [
            subprocess.Popen(
                argv,
                env={**env, "LOG_LEVEL": "INFO"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            for _ in range(count)
        ]
        self._threads = [
            threading.Thread(target=self._read, args=(i,), daemon=True) for i in range(count)
        ]
        self._threads.append(threading.Thread(target=self._sample, daemon=True))
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> Replicas:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_for(self, text: str, timeout: float, *, anyone: bool = False) -> bool:
        """Whether every replica (`anyone`: at least one) logged a line containing `text`
        within `timeout` seconds; RuntimeError as soon as a replica exits."""
        deadline = time.monotonic() + timeout
        while not self.logged(text, anyone=anyone):
            self.check_running()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def check_running(self) -> None:
        """RuntimeError when a replica has exited."""
        for i, process in enumerate(self.processes):
            if process.poll() is not None:
                with self._lock:
                    tail = "".join(self._lines[i][-5:])
                raise RuntimeError(
                    f"{self.name} {i} exited with status {process.returncode}; its last "
                    f"lines:\n{tail}"
                )

    @property
    def pids(self) -> list[int]:
        """The replicas' process ids."""
        return [p.pid for p in self.processes]

    def logged(self, text: str, *, anyone: bool = False) -> bool:
        """Whether every replica (`anyone`: at least one) has logged a line containing
        `text`."""
        with self._lock:
            found = [any(text in line for line in lines) for lines in self._lines]
        return any(found) if anyone else all(found)

    def first_logged(self, text: str) -> float:
        """The perf_counter reading when the first replica logged a line containing
        `text`; ValueError when none has."""
        with self._lock:
            return min(
                at
                for lines, times in zip(self._lines, self._times, strict=True)
                for line, at in zip(lines, times, strict=True)
                if text in line
            )

    def peak_rss_mb(self) -> list[float]:
        """Each replica's largest resident set seen so far, in MiB (sampled every
        SAMPLE_SECONDS from its start)."""
        with self._lock:
            return [round(peak / 2**20, 1) for peak in self._peaks]

    def stop(self) -> None:
        """SIGTERM every replica, SIGKILL those still running 30 s later."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._stopping.set()

    def _read(self, index: int) -> None:
        stream = self.processes[index].stderr
        assert stream is not None
        for line in stream:
            with self._lock:
                self._lines[index].append(line)
                self._times[index].append(time.perf_counter())
            if " INFO " not in line and " DEBUG " not in line:
                sys.stderr.write(f"[{self.name} {index}] {line}")

    def _sample(self) -> None:
        watched = [psutil.Process(p.pid) for p in self.processes]
        while not self._stopping.is_set():
            for i, process in enumerate(watched):
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue  # exited
                with self._lock:
                    self._peaks[i] = max(self._peaks[i], rss)
            time.sleep(SAMPLE_SECONDS)
