"""When queue_manager is down the admin says so, changes nothing, and keeps no copy it
could show instead: queue_manager is the one source of truth."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from gits_common.schemas import UseCase
from tests.conftest import free_port
from tests.django_admin.conftest import Platform, point_admin_at, text, unique
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def proxy(admin_urls: Platform) -> Iterator[TcpProxy]:
    """queue_manager behind a proxy the test can cut, with the admin pointed at it."""
    target = urlsplit(admin_urls.urls["queue_manager"])
    tcp = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)
    tcp.restore()
    point_admin_at(queue_manager=f"http://127.0.0.1:{tcp.port}")
    yield tcp
    tcp.cut()


def unreachable(proxy: TcpProxy) -> str:
    """The start of what the admin says when queue_manager is down."""
    return "queue_manager is not answering"


def test_upload_while_queue_manager_is_down_says_so_and_stores_nothing(
    browser: Client, platform: Platform, use_case: UseCase, proxy: TcpProxy
) -> None:
    name = unique("algo")
    proxy.cut()

    response = browser.post(
        "/algorithms/upload/",
        {"name": name, "use_case": use_case.name, "file": SimpleUploadedFile("m.pkl", b"m")},
    )

    assert response.status_code == 503
    assert f"{unreachable(proxy)}; nothing was changed" in text(response)
    assert name in text(response)  # the form keeps what the user typed
    proxy.restore()
    assert platform.versions(name) == []


def test_bind_while_queue_manager_is_down_changes_nothing(
    browser: Client, platform: Platform, use_case: UseCase, proxy: TcpProxy, broker
) -> None:
    # Given a service bound to version 1, and a rebind form showing version 2
    algorithm = unique("algo")
    platform.upload(algorithm, use_case)
    platform.upload(algorithm, use_case)
    service = broker.service_name()
    platform.bind(service, algorithm, 1)
    assert f"{algorithm}@2" in text(browser.get(f"/services/{service}/bind/"))

    # When queue_manager goes down before the user submits the rebind
    proxy.cut()
    response = browser.post(
        f"/services/{service}/bind/",
        {"name": service, "routing_key": "rk", "algorithm": f"{algorithm}@2"},
    )

    # Then the user reads that nothing changed, and indeed the service is still on 1
    assert response.status_code == 503
    assert f"{unreachable(proxy)}; nothing was changed" in text(response)
    stored = platform.get("queue_manager", f"/queue_manager/services/{service}")
    assert stored["algorithm_version"] == 1


def test_delete_while_queue_manager_is_down_changes_nothing(
    browser: Client, platform: Platform, use_case: UseCase, proxy: TcpProxy
) -> None:
    name = unique("algo")
    platform.upload(name, use_case)
    proxy.cut()

    response = browser.post(f"/algorithms/{name}/versions/1/delete/")

    assert response.status_code == 503
    assert f"{unreachable(proxy)}; nothing was changed" in text(response)
    assert [v["version"] for v in platform.versions(name)] == [1]


@pytest.mark.parametrize("url", ["/algorithms/", "/services/", "/services/new/"])
def test_pages_say_queue_manager_is_down_instead_of_showing_stale_data(
    browser: Client, platform: Platform, proxy: TcpProxy, url: str
) -> None:
    proxy.cut()

    response = browser.get(url)

    assert response.status_code == 503
    assert f"{unreachable(proxy)}; try again once it is up" in text(response)
    assert "<table>" not in text(response)  # no list from anywhere else


def test_pages_come_back_with_queue_manager(
    browser: Client, platform: Platform, use_case: UseCase, proxy: TcpProxy
) -> None:
    name = unique("algo")
    platform.upload(name, use_case)
    proxy.cut()
    assert browser.get("/algorithms/").status_code == 503

    proxy.restore()

    response = browser.get("/algorithms/")
    assert response.status_code == 200 and name in text(response)


def test_an_api_that_was_never_there_is_named_in_words(
    browser: Client, admin_urls: Platform
) -> None:
    port = free_port()
    point_admin_at(ml_data_api=f"http://127.0.0.1:{port}")

    response = browser.get("/algorithms/upload/")  # its use cases come from ml_data_api

    assert response.status_code == 503
    assert "ml_data_api is not answering" in text(response)
    assert str(port) not in text(response)  # where it runs is the operator's log, not the page


@pytest.fixture
def silent_queue_manager(admin_urls: Platform) -> Iterator[str]:
    """A queue_manager address that takes connections and never answers, with the
    admin's timeout cut to a second."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    timeouts = settings.GITS_API_TIMEOUT, settings.GITS_API_SLOW_TIMEOUT
    settings.GITS_API_TIMEOUT = settings.GITS_API_SLOW_TIMEOUT = 1.0
    point_admin_at(queue_manager=url)
    yield url
    settings.GITS_API_TIMEOUT, settings.GITS_API_SLOW_TIMEOUT = timeouts
    listener.close()


def test_a_change_that_got_no_answer_is_not_called_undone(
    browser: Client, use_case: UseCase, silent_queue_manager: str
) -> None:
    # The upload left; whether queue_manager stored it is unknown, and the user is told so
    response = browser.post(
        "/algorithms/upload/",
        {"name": "algo", "use_case": use_case.name, "file": SimpleUploadedFile("m.pkl", b"m")},
    )

    assert response.status_code == 504
    assert "is not answering: the change may or may not have been made" in text(response)
    assert "nothing was changed" not in text(response)


def test_a_read_that_got_no_answer_says_so(browser: Client, silent_queue_manager: str) -> None:
    response = browser.get("/services/")

    assert response.status_code == 503
    assert "queue_manager is not answering; try again once it is up" in text(response)
