"""Write .env from .env.example, generating each local secret once.

Keys already in .env keep their values; keys new in .env.example are appended, so an
existing checkout picks up new settings without losing its secrets. Standard library
only: it runs before the virtualenv exists.

The passwords of the machine's PostgreSQL role and RabbitMQ user are the machine's, not
a checkout's: `scripts/ensure-services.sh` sets them on the servers, so a second clone
with passwords of its own would lock the first one out. They are kept in one file per
machine user (MACHINE_SECRETS, mode 0600) that every checkout's .env takes them from.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {
    "GITS_ADMIN_TOKEN",
    "GITS_RUNTIME_TOKEN",
    "GITS_READ_TOKEN",
    "POSTGRES_PASSWORD",
    "RABBITMQ_PASSWORD",
    "MONGODB_PASSWORD",
    "DJANGO_SECRET_KEY",
}
# Secrets of the servers every checkout on this machine shares.
MACHINE_SECRETS = ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD")


def machine_secrets_path() -> Path:
    """Where this machine user's shared service passwords are kept."""
    configured = os.environ.get("GITS_MACHINE_SECRETS")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gits" / "services.env"


def read_pairs(path: Path) -> dict[str, str]:
    """The non-empty assignments of an env file (empty when there is no file)."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.strip().startswith("#") and v.strip()}


def share_machine_secrets(env_path: Path, machine: Path) -> None:
    """Give the checkout the machine's service passwords, or give the machine the
    checkout's when it has none yet (the first checkout decides)."""
    known = read_pairs(machine)
    mine = read_pairs(env_path)
    missing = {k: mine[k] for k in MACHINE_SECRETS if k not in known and k in mine}
    if missing:
        machine.parent.mkdir(parents=True, exist_ok=True)
        with machine.open("a") as out:
            out.writelines(f"{k}={v}\n" for k, v in missing.items())
        machine.chmod(0o600)
        known.update(missing)
    lines = env_path.read_text().splitlines()
    changed = []
    for i, line in enumerate(lines):
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and key in MACHINE_SECRETS and key in known and value.strip() != known[key]:
            lines[i] = f"{key}={known[key]}"
            changed.append(key)
    if changed:
        env_path.write_text("\n".join(lines) + "\n")
        print(
            f"{env_path.name}: {', '.join(changed)} taken from {machine} (shared by every checkout)"
        )


def parse_keys(text: str) -> set[str]:
    """The keys assigned in an env file."""
    keys = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.add(line.split("=", 1)[0].strip())
    return keys


# Bytes of randomness a generated secret carries, as hex: 48 characters; Django's
# `check --deploy` wants a secret key of 50 characters or more (security.W009).
SECRET_BYTES = {"DJANGO_SECRET_KEY": 32}


def fill(line: str) -> str:
    """The line itself, or with a fresh secret where it assigns an empty secret."""
    key, sep, value = line.partition("=")
    if sep and key.strip() in SECRETS and not value.strip():
        return f"{key}={secrets.token_hex(SECRET_BYTES.get(key.strip(), 24))}"
    return line


def missing_blocks(example: str, present: set[str]) -> list[str]:
    """Lines of the example (with the comments just above them) for keys not present."""
    out: list[str] = []
    comments: list[str] = []
    for line in example.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(line)
        elif "=" in stripped:
            if stripped.split("=", 1)[0].strip() not in present:
                out.extend([*comments, fill(line)])
            comments = []
        else:
            comments = []
    return out


# Values an earlier .env.example assigned that a newer GITS replaced: a .env that still
# holds exactly the old value (never changed by its user) takes the new one, and None
# comments the line out, so that the setting's default applies. A value the user chose
# is kept. Issue #12: workers keep batches of 500 in flight, their prefetch following.
RETIRED_VALUES: dict[str, tuple[str, str | None]] = {
    "WORKER_BATCH_SIZE": ("100", "500"),
    "WORKER_PREFETCH": ("200", None),
}


def retire_old_defaults(env_path: Path) -> list[str]:
    """Replace values of RETIRED_VALUES still at their old default; the keys changed."""
    lines = env_path.read_text().splitlines()
    changed = []
    for i, line in enumerate(lines):
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and key in RETIRED_VALUES and value.strip() == RETIRED_VALUES[key][0]:
            new = RETIRED_VALUES[key][1]
            lines[i] = f"{key}={new}" if new is not None else f"# {key}={value.strip()}"
            changed.append(key)
    if changed:
        env_path.write_text("\n".join(lines) + "\n")
    return changed


def main(
    env_path: Path = ROOT / ".env",
    example_path: Path = ROOT / ".env.example",
    machine: Path | None = None,
) -> int:
    """Create or complete the env file, with the machine's shared service passwords;
    print what changed."""
    example = example_path.read_text()
    if not env_path.exists():
        env_path.write_text("\n".join(fill(line) for line in example.splitlines()) + "\n")
        env_path.chmod(0o600)
        print(f"wrote {env_path.name} with freshly generated local secrets")
    else:
        current = env_path.read_text()
        added = missing_blocks(example, parse_keys(current))
        if added:
            sep = "" if current.endswith("\n") else "\n"
            env_path.write_text(current + sep + "\n".join(added) + "\n")
            names = ", ".join(sorted(parse_keys(chr(10).join(added))))
            print(f"added to {env_path.name}: {names}")
        if retired := retire_old_defaults(env_path):
            print(f"{env_path.name}: {', '.join(retired)} moved from an old default to the new one")
    share_machine_secrets(env_path, machine or machine_secrets_path())
    return 0


if __name__ == "__main__":
    sys.exit(main())
