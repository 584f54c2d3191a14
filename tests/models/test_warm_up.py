"""After `compile_kernels`, a worker's batches compile nothing: checked in a fresh process, through numba's compile
events, on a stream and a catalog of their own."""

import subprocess
import sys

PROBE = """
from dataclasses import replace
from numba.core import event
from streamrec.benchmarks.workloads import EventGenerator, synthetic_catalog
from streamrec.models.events import parse_user_event
from streamrec.models.params import StreamParams
from streamrec.models.profile import EncodedProfiles, ProfileOverlay
from streamrec.models.recommender import StreamRecommender
from streamrec.models.warm_up import compile_kernels

compile_kernels()
compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
items = synthetic_catalog(300, seed=1)
records = EventGenerator(items, n_users=40, seed=1, id_prefix="w").events(2000, base_ts_ms=1_700_000_000_000)
events = [
    parse_user_event(r.topic, r.value, key=r.key.encode(), record_ts_ms=1_700_000_000_000, now_ms=1_800_000_000_000,
                     item_exists=lambda _: True)
    for r in records
]
for exact_max_items in (8192, 0):
    params = replace(StreamParams(), exact_max_items=exact_max_items)
    system = StreamRecommender(params, profiles=ProfileOverlay(EncodedProfiles()))
    system.add_items([(item, 0) for item in items])
    system.prepare_ranking()
    for start in range(0, len(events), 250):
        with system.learning_batch():
            for e in events[start : start + 250]:
                system.learn_one(e)
        users = sorted({e.user_id for e in events[start : start + 250]})
        system.rank_lists([system.profile(u) for u in users]).json_items()
        system.profiles.flush()
print(sorted(set(compiled)))
"""


def test_a_workers_batches_compile_nothing_after_the_warm_up() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    compiled = out.strip().splitlines()[-1]
    assert compiled == "[]", f"compiled in a batch after the warm-up: {compiled}"
