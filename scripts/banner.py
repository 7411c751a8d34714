"""Print where each GITS service listens and how to call it, before `make run` starts."""

from __future__ import annotations

from decouple import AutoConfig

config = AutoConfig(search_path=".")

SERVICES = [("ml_data_api", "ML_DATA_API_PORT", 8004)]


def main() -> None:
    """One line per service, then how to authenticate."""
    print("GITS is starting. Services:")
    for name, port_setting, default in SERVICES:
        port = config(port_setting, default=default, cast=int)
        print(f"  {name:<14} http://127.0.0.1:{port}/docs")
    print("Every API wants 'Authorization: Bearer $GITS_API_TOKEN' (the token is in .env).")
    print("Ctrl-C stops everything.\n")


if __name__ == "__main__":
    main()
