"""The profile table adapter over a Faust table."""

from __future__ import annotations

import faust

from streamrec.models.profile import UserProfile
from streamrec.streams.settings import Settings
from streamrec.streams.worker.tables import TableProfiles, profiles_table


class _CountingDict(dict[bytes, bytes]):
    """The memory store's dict, counting lookups (`in` and `[]`)."""

    lookups = 0

    def __contains__(self, key: object) -> bool:
        self.lookups += 1
        return super().__contains__(key)

    def __getitem__(self, key: bytes) -> bytes:
        self.lookups += 1
        return super().__getitem__(key)


def test_table_profiles_read_what_the_table_holds_with_one_lookup() -> None:
    app = faust.App("streamrec-test-tables", store="memory://", autodiscover=False)
    table = profiles_table(app, Settings(_env_file=None))
    backing = table.data.data = _CountingDict()  # type: ignore[attr-defined]
    store = TableProfiles(table)
    profile = UserProfile.new("u1", 4)
    profile.n_events = 3
    table.data[b"u1"] = profile.to_bytes()  # the store itself: a table write needs a current event

    assert store.get_raw("u1") == table.get(b"u1") == profile.to_bytes()
    backing.lookups = 0
    assert store["u1"].n_events == 3
    assert backing.lookups == 1  # the table's own read takes two: does it hold the key, then its value
    assert store.get_raw("u2") is None
    assert "u2" not in store
