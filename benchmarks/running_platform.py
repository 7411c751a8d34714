"""A backlog drained by the platform `make run` started, with everything else running:
monitoring, the collector, data_source's own stream, and (with `--dashboard`) the main
dashboard open in headless Chromium, logged in as DJANGO_SUPERUSER_USERNAME with
GITS_BENCH_ADMIN_PASSWORD (the password `make run` printed once) or
DJANGO_SUPERUSER_PASSWORD.

    make run                                     # in one terminal
    .venv/bin/python -m benchmarks.running_platform [--messages 20000] [--dashboard]

Publishes the backlog to the demo service's routing key as fast as publisher confirms
allow, then waits until queue_manager counts that many more of the service's jobs
finished or failed. Messages/s is from the first publish to the last job; the
publisher's own rate is printed beside it. Not part of `make bench`, which starts its
own services: this one measures the platform as a user runs it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import httpx

from benchmarks import traffic
from gits_common.settings import Role, config, token
from gits_ml.demo import PRODUCT_QUALITY, generate

ARTIFACT = Path("test-artifacts/bench/running_platform.json")
BROWSER_PATH = "/usr/bin/chromium"


def run(messages: int, *, dashboard: bool) -> dict[str, Any]:
    """Figures of one drain: published, seconds, messages/s, publish/s, jobs by status."""
    service = config("SERVICE_NAME", default="service_product_quality_A")
    qm = config("QUEUE_MANAGER_URL", default="http://127.0.0.1:8001")
    admin = (
        f"http://{config('DJANGO_ADMIN_HOST', default='127.0.0.1')}:"
        f"{config('DJANGO_ADMIN_PORT', default=8000, cast=int)}"
    )
    with httpx.Client(headers={"Authorization": f"Bearer {token(Role.read)}"}) as http:
        routing_key = _get(http, f"{qm}/queue_manager/services/{service}")["routing_key"]
        before = _done(http, qm, service)
        pool = generate().production[PRODUCT_QUALITY.feature_names].to_dict("records")
        ids = traffic.message_ids(f"drain-{uuid.uuid4().hex[:8]}", messages)
        with _dashboard_open(admin) if dashboard else nullcontext():
            started = time.perf_counter()
            # in a thread of its own: Playwright's sync API holds this thread's event loop
            with ThreadPoolExecutor(max_workers=1) as publisher:
                publishing = publisher.submit(
                    asyncio.run, traffic.publish(routing_key, ids, pool)
                ).result()
            while (done := _done(http, qm, service) - before) < messages:
                if time.perf_counter() - started > 120 + messages / 50:
                    break
                time.sleep(0.2)
            seconds = time.perf_counter() - started
        counts = _get(http, f"{qm}/queue_manager/jobs/counts", service=service)
    result = {
        "service": service,
        "published": messages,
        "done": done,
        "seconds": round(seconds, 2),
        "messages_per_s": done / seconds,
        "publish_per_s": messages / publishing,
        "dashboard_open": dashboard,
        "jobs": counts,
    }
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(result, indent=2))
    return result


def _get(http: httpx.Client, url: str, **params: str) -> Any:
    response = http.get(url, params=params)
    response.raise_for_status()
    return response.json()


def _done(http: httpx.Client, qm: str, service: str) -> int:
    counts = _get(http, f"{qm}/queue_manager/jobs/counts", service=service)
    return int(counts.get("finished", 0)) + int(counts.get("failed", 0))


@contextmanager
def _dashboard_open(admin: str) -> Iterator[None]:
    """The main dashboard open in headless Chromium, logged in, while the block runs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=BROWSER_PATH, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page()
        page.goto(f"{admin}/dashboards/main/")
        page.fill("input[name=username]", config("DJANGO_SUPERUSER_USERNAME"))
        password = config("GITS_BENCH_ADMIN_PASSWORD", default="") or config(
            "DJANGO_SUPERUSER_PASSWORD", default=""
        )
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.locator("form [type=submit]").first.click()
        if "/accounts/login/" in page.url:
            raise SystemExit("could not log in: set GITS_BENCH_ADMIN_PASSWORD")
        page.wait_for_selector("iframe")
        try:
            yield
        finally:
            browser.close()


def report(result: dict[str, Any]) -> str:
    """One line for the terminal."""
    return (
        f"make run, {result['published']:,} messages to {result['service']}"
        f"{' with the main dashboard open' if result['dashboard_open'] else ''}: "
        f"{result['messages_per_s']:,.0f} msg/s end to end ({result['done']:,} done in "
        f"{result['seconds']:.1f} s; published at {result['publish_per_s']:,.0f}/s)"
    )


def main(argv: list[str]) -> None:
    """`python -m benchmarks.running_platform [--messages N] [--dashboard]`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.running_platform")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--dashboard", action="store_true", help="keep the dashboard open")
    args = parser.parse_args(argv)
    print(report(run(args.messages, dashboard=args.dashboard)))
    print(f"(written to {ARTIFACT})")


if __name__ == "__main__":
    main(sys.argv[1:])
