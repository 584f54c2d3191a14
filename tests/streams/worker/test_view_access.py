"""Who may ask the worker's web views: the bearer token (STREAMREC_HTTP_TOKEN) and the profile view's switch
(STREAMREC_PROFILE_VIEW). The app is built by `create_app` and its aiohttp application served in-process, no broker
or worker start needed: the token is checked before a view does anything (the two-worker suite in
tests/streams/test_views.py shows forwarded requests pass the owner's check too)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streamrec.streams.settings import Settings
from streamrec.streams.worker.app import create_app

TOKEN = "s3cret-token"
GUARDED = ("/users/u1/recommendations", "/new-user/recommendations", "/catalog/items", "/users/u1/profile")
Serve = Callable[..., contextlib.AbstractAsyncContextManager[TestClient[Any, Any]]]


@pytest.fixture
def serve(tmp_path: Path) -> Serve:
    """serve(**settings): an aiohttp test client for a worker app built with those settings (in the test's loop)."""

    @contextlib.asynccontextmanager
    async def start(**fields: Any) -> AsyncIterator[TestClient[Any, Any]]:
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", model_dir=tmp_path / "models", **fields)  # type: ignore[call-arg]
        async with TestClient(TestServer(create_app(settings).web.web_app)) as client:
            yield client

    return start


async def _status(client: TestClient[Any, Any], path: str, authorization: str | None = None) -> int:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with client.get(path, headers=headers) as response:
        return response.status


async def test_with_a_token_every_view_but_health_and_metrics_asks_for_it(serve: Serve) -> None:
    async with serve(http_token=TOKEN, profile_view=True) as client:
        for path in GUARDED:
            async with client.get(path) as response:
                assert response.status == 401, path
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert await response.json() == {"error": "unauthorized"}
        assert await _status(client, "/metrics") == 200
        assert await _status(client, "/health") == 503  # open, and honest: the worker has not started


@pytest.mark.parametrize(
    "authorization", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", f"Basic {TOKEN}", TOKEN, "Bearer  "]
)
async def test_a_wrong_or_malformed_token_is_refused(serve: Serve, authorization: str) -> None:
    async with serve(http_token=TOKEN) as client:
        assert await _status(client, "/catalog/items", authorization) == 401
        assert await _status(client, "/new-user/recommendations", authorization) == 401


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_the_right_token_opens_the_views(serve: Serve, scheme: str) -> None:
    async with serve(http_token=TOKEN) as client:
        async with client.get("/catalog/items", headers={"Authorization": f"{scheme} {TOKEN}"}) as response:
            assert response.status == 200
            assert await response.json() == {"item_ids": []}
        assert await _status(client, "/new-user/recommendations", f"Bearer {TOKEN}") == 200


async def test_without_a_token_the_views_are_open(serve: Serve) -> None:
    async with serve() as client:
        assert await _status(client, "/catalog/items") == 200
        assert await _status(client, "/new-user/recommendations") == 200
        assert await _status(client, "/metrics") == 200


async def test_the_profile_view_is_off_by_default(serve: Serve) -> None:
    assert Settings(_env_file=None).profile_view is False  # type: ignore[call-arg]
    async with serve(http_token=TOKEN) as client:
        assert await _status(client, "/users/u1/profile", f"Bearer {TOKEN}") == 404
        assert await _status(client, "/users/u1/profile") == 404  # not there at all: no 401 telling it exists
        routes = {route.resource.canonical for route in client.server.app.router.routes() if route.resource}
        assert "/users/{user_id}/recommendations" in routes and "/users/{user_id}/profile" not in routes


async def test_the_profile_view_is_served_when_switched_on(serve: Serve) -> None:
    async with serve(profile_view=True) as client:
        routes = {route.resource.canonical for route in client.server.app.router.routes() if route.resource}
        assert "/users/{user_id}/profile" in routes


async def test_an_empty_token_is_no_token(serve: Serve) -> None:
    # else an empty `Bearer ` header would match it
    assert Settings(_env_file=None, http_token=" ").http_token is None  # type: ignore[call-arg]
    async with serve(http_token="") as client:
        assert await _status(client, "/catalog/items") == 200
