"""Print where each GITS service listens and how to watch it, before `make run` starts."""

from __future__ import annotations

import sys

from decouple import AutoConfig, Csv

from gits_ml.demos import DEMOS

config = AutoConfig(search_path=".")

SERVICES = [
    ("queue_manager", "QUEUE_MANAGER_PORT", 8001),
    ("ml_data_api", "ML_DATA_API_PORT", 8004),
    ("monitoring_api", "MONITORING_API_PORT", 8005),
    ("retraining_api", "RETRAINING_API_PORT", 8006),
]


def main(argv: list[str]) -> None:
    """The banner."""
    replicas = config("WORKER_REPLICAS", default=2, cast=int)
    print("GITS is starting. APIs (interactive docs):")
    for name, port_setting, default in SERVICES:
        port = config(port_setting, default=default, cast=int)
        print(f"  {name:<14} http://127.0.0.1:{port}/docs")
    admin_port = config("DJANGO_ADMIN_PORT", default=8000, cast=int)
    user = config("DJANGO_SUPERUSER_USERNAME", default="gits-admin")
    print(f"  {'admin':<14} http://127.0.0.1:{admin_port}/  (log in as {user}; on the first")
    print(f"  {'':<14} start its generated password is printed once, framed, below)")
    dashboards = f"http://127.0.0.1:{admin_port}/dashboards/"
    print(f"  {'dashboards':<14} {dashboards}main/, monitoring/ and realtime/")
    service = config("DEMO_SERVICE", default="service_product_quality_A")
    demos = config("DEMO_USE_CASES", default=",".join(DEMOS), cast=Csv(post_process=list))
    streams = [
        f"{name} ({service if name == 'product_quality' else DEMOS[name].service})"
        for name in demos
        if name in DEMOS
    ]
    print(f"Demo use cases, each with {replicas} worker replicas of its service, its data")
    print(f"source and its ground truth: {', '.join(streams)}.")
    print(
        "Every API wants 'Authorization: Bearer <token>': GITS_ADMIN_TOKEN, GITS_RUNTIME_TOKEN "
        "or GITS_READ_TOKEN from .env, by what the route does."
    )
    print("Watch it: see 'Watching it work' in README.md. Each line starts with its process.")
    print("supervisord restarts a process that exits; `make status` in another terminal")
    print("lists them (or .venv/bin/supervisorctl -c var/supervisor/supervisord.conf ...).")
    print("Ctrl-C stops everything.\n")


if __name__ == "__main__":
    main(sys.argv[1:])
