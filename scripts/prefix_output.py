"""Run a command with every line of its stdout and stderr prefixed by a name, as a
Procfile runner does: `python scripts/prefix_output.py --name worker_1 -- python -m workers`.

supervisord copies each program's output to the terminal but does not say whose it is,
so every program of `make run` is started through this. The command replaces this
process (exec): supervisord's signals reach the command itself, and the exit status it
records is the command's own. A forked child copies the lines through; it ignores SIGINT
and SIGTERM, so that what the command says while it stops is still shown, and ends when
the last holder of the command's output (the command, or a child of it) is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import NoReturn

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The name, the column width to pad it to, and the command."""
    parser = argparse.ArgumentParser(
        prog="python scripts/prefix_output.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--name", required=True, help="what each line starts with")
    parser.add_argument("--width", type=int, default=0, help="pad the name to this width")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command given")
    return args


def copy_lines(source: int, target: int, prefix: bytes) -> None:
    """Copy `source` to `target` until end of file, each line starting with `prefix`; a
    last line without its newline gets one."""
    pending = b""
    while chunk := os.read(source, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        if lines:
            write_all(target, b"".join(prefix + line + b"\n" for line in lines))
    if pending:
        write_all(target, prefix + pending + b"\n")


def write_all(fd: int, data: bytes) -> None:
    """os.write until all of `data` is written (a pipe may take it in parts)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: list[str]) -> NoReturn:
    """Become the command, with a child prefixing its output."""
    args = parse_args(argv)
    prefix = f"{args.name:<{args.width}} | ".encode()
    read_end, write_end = os.pipe()
    # Blocked across the fork: a stop signal arriving now waits for the command, and
    # the copier has ignored it before it could be delivered.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    if os.fork() == 0:
        os.close(write_end)
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        # An OSError means the terminal (supervisord) is gone: nobody is left to read.
        with contextlib.suppress(OSError):
            copy_lines(read_end, sys.stdout.fileno(), prefix)
        os._exit(0)
    os.close(read_end)
    os.dup2(write_end, sys.stdout.fileno())
    os.dup2(write_end, sys.stderr.fileno())
    os.close(write_end)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        os.execvp(args.command[0], args.command)  # noqa: S606 (no shell: exec as given)
    except OSError as exc:
        print(f"cannot start {args.command[0]}: {exc}", file=sys.stderr, flush=True)
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
