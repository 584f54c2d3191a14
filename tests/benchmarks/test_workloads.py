"""The benchmark workloads: seeded, valid against the event contracts, Zipf-skewed, and sized as asked."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from streamrec.benchmarks import infra, workloads
from streamrec.benchmarks.workloads import EventGenerator, synthetic_catalog, zipf_weights
from streamrec.models.events import CatalogItem, Rejected, parse_catalog_item, parse_user_event


@pytest.fixture(scope="module")
def catalog() -> tuple[CatalogItem, ...]:
    return synthetic_catalog(500, seed=3)


def test_synthetic_catalog_is_seeded_and_valid(catalog: tuple[CatalogItem, ...]) -> None:
    assert synthetic_catalog(500, seed=3) == catalog
    assert synthetic_catalog(500, seed=4) != catalog
    assert len({item.item_id for item in catalog}) == 500
    for key, value in workloads.catalog_records(catalog):
        item = parse_catalog_item(value, key=key.encode())
        assert 1 <= len(item.genres) <= 3
        assert set(item.genres) <= set(workloads.GENRES)
        assert item.creators and item.title
        assert item.duration_seconds > 0


def test_creators_have_a_skewed_number_of_titles(catalog: tuple[CatalogItem, ...]) -> None:
    titles_per_creator = Counter(item.creators[0] for item in catalog)
    assert max(titles_per_creator.values()) >= 5 * (500 / len(titles_per_creator))


def test_creator_names_are_unique_beyond_the_name_lists() -> None:
    names = [workloads.creator_name(i) for i in range(5_000)]
    assert len(set(names)) == len(names)


def test_zipf_weights() -> None:
    weights = zipf_weights(1_000, 1.0)
    assert weights.sum() == pytest.approx(1.0)
    assert all(weights[:-1] >= weights[1:])
    with pytest.raises(ValueError):
        zipf_weights(0, 1.0)


def test_events_are_seeded_and_pass_validation(catalog: tuple[CatalogItem, ...]) -> None:
    generator = EventGenerator(catalog, n_users=200, seed=1)
    now = int(time.time() * 1000)
    events = generator.events(3_000, base_ts_ms=now - 3_000)
    assert events == EventGenerator(catalog, n_users=200, seed=1).events(3_000, base_ts_ms=now - 3_000)
    assert len({event.event_id for event in events}) == len(events)
    ids = {item.item_id for item in catalog}
    for record in events:
        parsed = parse_user_event(
            record.topic,
            record.value,
            key=record.key.encode(),
            record_ts_ms=now,
            now_ms=now,
            item_exists=ids.__contains__,
        )
        assert parsed.user_id == record.key
        assert parsed.event_id == record.event_id
        assert len(record.value) < 200
    counts = Counter(record.topic for record in events)
    assert counts["ratings"] > counts["searches"] > 0 and counts["plays"] > counts["searches"]


def test_later_chunks_continue_the_ids(catalog: tuple[CatalogItem, ...]) -> None:
    generator = EventGenerator(catalog, n_users=50, seed=2, id_prefix="x")
    first, second = generator.events(10), generator.events(10, start=10)
    assert first[0].event_id == "x-2-0" and second[0].event_id == "x-2-10"


def test_popularity_is_zipf_like_and_not_by_id(catalog: tuple[CatalogItem, ...]) -> None:
    generator = EventGenerator(catalog, n_users=100, seed=5, mix=(0.5, 0.5, 0.0))
    events = generator.events(20_000)
    per_item = Counter(orjson_item(record.value) for record in events)
    top_share = sum(n for _, n in per_item.most_common(5)) / len(events)
    assert top_share > 0.15  # 1% of the items get far more than 1% of the events
    most_popular = per_item.most_common(1)[0][0]
    assert most_popular == catalog[int(generator.item_order[0])].item_id


def orjson_item(value: bytes) -> str:
    import orjson

    return str(orjson.loads(value)["item_id"])


def test_events_per_user_gives_every_user_the_same_count(catalog: tuple[CatalogItem, ...]) -> None:
    generator = EventGenerator(catalog, n_users=30, seed=0)
    events = generator.events_per_user(30, 4)
    assert Counter(record.key for record in events) == {workloads.user_key(u): 4 for u in range(30)}
    assert {record.key for record in events[:30]} == {workloads.user_key(u) for u in range(30)}  # rounds
    with pytest.raises(ValueError):
        generator.events_per_user(31, 1)


def test_bad_generator_arguments(catalog: tuple[CatalogItem, ...]) -> None:
    with pytest.raises(ValueError):
        EventGenerator((), n_users=1)
    with pytest.raises(ValueError):
        EventGenerator(catalog, n_users=0)
    with pytest.raises(ValueError):
        EventGenerator(catalog, n_users=1, mix=(0.5, 0.5, 0.5))


def test_catalog_for_falls_back_to_a_synthetic_catalog_of_ml_100k_size(tmp_path: Path) -> None:
    spec = workloads.catalog_for(workloads.ML_100K, tmp_path)  # empty cache: no MovieLens
    assert spec.source == "synthetic" and spec.size == workloads.ML_100K_ITEMS
    with pytest.raises(ValueError):
        workloads.catalog_for("ml-1m", tmp_path)


def test_invalid_query_never_produced(catalog: tuple[CatalogItem, ...]) -> None:
    generator = EventGenerator(catalog, n_users=10, seed=9, mix=(0.0, 0.0, 1.0))
    now = int(time.time() * 1000)
    ids = {item.item_id for item in catalog}
    for record in generator.events(500):
        try:
            parse_user_event(
                "searches", record.value, key=None, record_ts_ms=now, now_ms=now, item_exists=ids.__contains__
            )
        except Rejected as rejected:  # pragma: no cover - the assertion message is the point
            pytest.fail(f"{record.value!r}: {rejected}")


def test_cooccurrence_sizing_follows_the_doubling() -> None:
    assert infra.cooccurrence_bytes(1_682) == 2_048 * 2_048 * 4
    assert infra.cooccurrence_bytes(8_192) == 8_192 * 8_192 * 4
    # Past exact_max_items (8,192): the dense matrix at the switch, the sparse pool at its largest, the row index.
    assert infra.cooccurrence_bytes(100_000) == 8_192 * 8_192 * 4 + 2 * (1 << 24) * 8 + 131_072 * 24
    assert infra.cooccurrence_bytes(10) == 256 * 256 * 4
    assert infra.feasible_catalog(1_682, 2**30) is None
    assert infra.feasible_catalog(100_000, 8 * 2**30) is None
    reason = infra.feasible_catalog(100_000, 2**28)
    assert reason is not None and "0.5 GiB" in reason
    assert infra.feasible_catalog(100_000, None) is None
