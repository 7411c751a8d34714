"""Write .env from .env.example, generating each local secret once.

Keys already in .env keep their values; keys new in .env.example are appended, so an
existing checkout picks up new settings without losing its secrets. Standard library
only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"GITS_API_TOKEN", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "DJANGO_SECRET_KEY"}


def parse_keys(text: str) -> set[str]:
    """The keys assigned in an env file."""
    keys = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.add(line.split("=", 1)[0].strip())
    return keys


def fill(line: str) -> str:
    """The line itself, or with a fresh secret where it assigns an empty secret."""
    key, sep, value = line.partition("=")
    if sep and key.strip() in SECRETS and not value.strip():
        return f"{key}={secrets.token_hex(24)}"
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


def main(env_path: Path = ROOT / ".env", example_path: Path = ROOT / ".env.example") -> int:
    """Create or complete the env file; print what changed."""
    example = example_path.read_text()
    if not env_path.exists():
        env_path.write_text("\n".join(fill(line) for line in example.splitlines()) + "\n")
        env_path.chmod(0o600)
        print(f"wrote {env_path.name} with freshly generated local secrets")
        return 0
    current = env_path.read_text()
    added = missing_blocks(example, parse_keys(current))
    if added:
        sep = "" if current.endswith("\n") else "\n"
        env_path.write_text(current + sep + "\n".join(added) + "\n")
        print(f"added to {env_path.name}: {', '.join(sorted(parse_keys(chr(10).join(added))))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
