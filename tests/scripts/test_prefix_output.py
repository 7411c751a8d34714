"""scripts/prefix_output.py: every line a program of `make run` writes reaches the
terminal whole, once, with the program's name in front, and the program's exit status is
the one supervisord sees."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from scripts.prefix_output import copy_lines

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prefix_output.py"


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_any_output_comes_out_line_by_line_with_the_prefix(chunks):
    # Given a program's output written in arbitrary pieces
    read_end, write_end = os.pipe()
    out_read, out_write = os.pipe()

    def write() -> None:
        for chunk in chunks:
            os.write(write_end, chunk)
        os.close(write_end)

    writer = threading.Thread(target=write)
    writer.start()
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(read_all(out_read)))
    reader.start()
    # When it is copied through
    copy_lines(read_end, out_write, b"name | ")
    os.close(out_write)
    writer.join()
    reader.join()
    os.close(read_end)
    os.close(out_read)
    # Then each of its lines is there, in order, prefixed, and ends with a newline
    data = b"".join(chunks)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    assert received[0] == b"".join(b"name | " + line + b"\n" for line in lines)


def read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 65536):
        parts.append(chunk)
    return b"".join(parts)


def test_the_command_keeps_its_exit_status_and_both_its_streams_are_named():
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    command = [sys.executable, "-c", code]
    done = subprocess.run(
        [sys.executable, SCRIPT, "--name", "demo", "--width", "6", "--", *command],
        capture_output=True,
        timeout=30,
    )

    assert done.returncode == 3
    assert sorted(done.stdout.decode().splitlines()) == ["demo   | err", "demo   | out"]
    assert done.stderr == b""


def test_a_command_that_cannot_start_says_so_and_exits_127():
    done = subprocess.run(
        [sys.executable, SCRIPT, "--name", "demo", "--", "/nonexistent/program"],
        capture_output=True,
        timeout=30,
    )

    assert done.returncode == 127
    assert b"demo | cannot start /nonexistent/program" in done.stdout
