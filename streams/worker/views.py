"""Web views of a worker (Faust's aiohttp server on settings.web_host:web_port): lists, profiles, the catalog's
order, metrics and health (`register_views`), behind an optional bearer token (`token_required`)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from streamrec.models.profile import UserProfile
from streamrec.streams.internals.consumer_state import started_consumer
from streamrec.streams.kafka.admin import RATINGS
from streamrec.streams.worker.observability import CONTENT_TYPE
from streamrec.streams.worker.outputs import list_payload
from streamrec.streams.worker.runtime import Runtime

ViewHandler = Callable[..., Awaitable[Any]]


def register_views(app: faust.App, rt: Runtime) -> None:
    """The worker's pages. With `STREAMREC_HTTP_TOKEN` set, all but `/health`, `/ready` and `/metrics` answer 401 unless
    the request carries `Authorization: Bearer <token>`; those three stay open for probes and Prometheus (they tell
    nothing about a viewer). A forwarded request (`table_route`) keeps its headers, so the owner checks the same
    token: every worker of an app needs the same one.

    - `GET /users/{user_id}/recommendations`: the last list published for the user, byte for byte as on the
      `recommendations` topic, while the worker still holds it in memory (the `recent_lists` most recent users);
      otherwise a list ranked now from the stored profile (`trigger_event_id` null, `event_ids` empty); 404 JSON
      for a user without a profile. `table_route` (on the profiles table, partitioned like the lists) forwards
      the request to the worker that owns the user's partition, so any worker can be asked (503 while
      partitions are being reassigned).
    - `GET /users/{user_id}/profile`: a read-only summary of the stored profile (operators, tests); includes
      `bytes_sha256` of the stored bytes, so two reads can be compared exactly. Routed the same way. Only with
      `STREAMREC_PROFILE_VIEW=true` (404 otherwise): it shows a viewer's whole history.
    - `GET /new-user/recommendations`: the list this worker would show a viewer without any event, computed now
      from its current item-side state (the same JSON shape as a published list, `trigger_event_id` null). Used
      by `streamrec evaluate --e2e` for a user's first evaluation point.
    - `GET /catalog/items`: this worker's catalog item ids in the order it added them (ranking breaks score ties
      by that order; the e2e evaluation runs the fast path in the same order).
    - `GET /metrics`: Prometheus text format 0.0.4.
    - `GET /health`: 200 `{"status": "ok", ...}` once the catalog feed has caught up and table recovery is done,
      503 `{"status": "starting", ...}` before; `partitions` lists the input partitions this worker owns.
    - `GET /ready`: 200 `{"status": "ready", ...}` once started (as /health) and while no assigned partition is
      stuck or assigned twice (`PartitionProgress`, judged at each consumer-lag update); 503 with status
      `starting`, `stuck` or `assigned_twice` otherwise. `partitions`: each assigned input partition's lag, state
      (`caught_up`, `progressing`, `stuck`, `unknown`: not fetched yet) and seconds since it last made progress.
    """
    profiles_table = rt.profiles.table
    token = rt.settings.http_token
    guarded = token_required(None if token is None else token.get_secret_value())

    @app.page("/users/{user_id}/recommendations")
    @guarded
    @app.table_route(table=profiles_table, match_info="user_id")
    async def user_recommendations(web: Any, request: Any, user_id: str) -> Any:
        body = rt.recent_lists.get(user_id)
        if body is None:
            profile = rt.profiles.get(user_id)
            if profile is None:
                return web.json({"error": "unknown_user", "user_id": user_id}, status=404)
            recommender = rt.recommender
            items = recommender.rank_profile(profile, recommender.params.top_n)
            body = list_payload(user_id, (), recommender.item_model.version, items, int(time.time() * 1000))
        return web.bytes(body, headers={"Content-Type": "application/json; charset=utf-8"})

    if rt.settings.profile_view:

        @app.page("/users/{user_id}/profile")
        @guarded
        @app.table_route(table=profiles_table, match_info="user_id")
        async def user_profile(web: Any, request: Any, user_id: str) -> Any:
            raw = profiles_table.get(user_id.encode())
            if raw is None:
                return web.json({"error": "unknown_user", "user_id": user_id}, status=404)
            return web.json(profile_summary(bytes(raw)))

    @app.page("/new-user/recommendations")
    @guarded
    async def new_user_recommendations(web: Any, request: Any) -> Any:
        recommender = rt.recommender
        items = recommender.rank_profile(None, recommender.params.top_n)
        body = list_payload(None, (), recommender.item_model.version, items, int(time.time() * 1000))
        return web.bytes(body, headers={"Content-Type": "application/json; charset=utf-8"})

    @app.page("/catalog/items")
    @guarded
    async def catalog_items(web: Any, request: Any) -> Any:
        return web.json({"item_ids": [item.item_id for item in rt.recommender.catalog.items]})

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(rt.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        recovery = getattr(app.tables, "recovery", None)
        recovered = bool(recovery is not None and recovery.completed.is_set())
        ready = rt.feed.ready and recovered
        body = {
            "status": "ok" if ready else "starting",
            "catalog_ready": rt.feed.ready,
            "tables_recovered": recovered,
            "catalog_items": len(rt.recommender.catalog),
            "model_version": rt.recommender.item_model.version,
            "partitions": _active_partitions(app),
        }
        return web.json(body, status=200 if ready else 503)

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        body = readiness_body(app, rt)
        return web.json(body, status=200 if body["status"] == "ready" else 503)


def token_required(token: str | None) -> Callable[[ViewHandler], ViewHandler]:
    """A view decorator: 401 unless the request's `Authorization` header is `Bearer <token>` (compared in constant
    time); no token: the view as it is."""

    def decorate(view: ViewHandler) -> ViewHandler:
        if token is None:
            return view
        expected = token.encode()

        @functools.wraps(view)
        async def checked(web: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            scheme, _, given = str(request.headers.get("Authorization", "")).partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
                return web.json(
                    {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": 'Bearer realm="streamrec"'}
                )
            return await view(web, request, *args, **kwargs)

        return checked

    return decorate


def _active_partitions(app: faust.App) -> list[int]:
    """Partitions of the input topics this worker processes (the same numbers for every input topic)."""
    consumer = started_consumer(app)  # don't create a consumer just to answer /health
    if consumer is None:
        return []
    try:
        return sorted({tp.partition for tp in consumer.assignment() if tp.topic == RATINGS})
    except Exception:
        return []


def readiness_body(app: faust.App, rt: Runtime) -> dict[str, Any]:
    recovery = getattr(app.tables, "recovery", None)
    started = rt.feed.ready and recovery is not None and recovery.completed.is_set()
    verdict = rt.progress.readiness
    if not started:
        status = "starting"
    elif verdict.assigned_twice:
        status = "assigned_twice"
    else:
        status = "ready" if verdict.ready else "stuck"
    return {
        "status": status,
        "stuck_after_s": rt.progress.stuck_after_s,
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "lag": p.lag,
                "state": p.state,
                "since_progress_s": round(p.since_progress_s, 1),
            }
            for p in verdict.partitions
        ],
        "assigned_twice": [{"topic": topic, "partition": partition} for topic, partition in verdict.assigned_twice],
    }


def profile_summary(raw: bytes) -> dict[str, Any]:
    profile = UserProfile.from_bytes(raw)
    return {
        "user_id": profile.user_id,
        "n_events": profile.n_events,
        "last_ts": profile.last_ts,
        "history": [{"item_id": h.item_id, "weight": h.weight, "ts": h.ts} for h in profile.history],
        "searches": [{"query": s.query, "ts": s.ts} for s in profile.searches],
        "watched_count": len(profile.watched),
        "genre_weights": profile.genre_weights,
        "rating_count": profile.rating_count,
        "embedding_dims": int(profile.embedding.shape[0]),
        "bytes_sha256": hashlib.sha256(raw).hexdigest(),
    }
