"""Names vulture reports as unused that are used, in vulture's whitelist format (`vulture --make-whitelist`).

Checked by `make lint`: `vulture models streams benchmarks vulture_whitelist.py --min-confidence 60`.
Not meant to be imported or run.
"""
# ruff: noqa: B018, F821

# Typer commands: registered by the `@topics_app.command` decorator, called by typer (streams/cli/topics.py).
create
list_

# Faust timers and web views: registered by `@app.timer` / `@app.page`, called by Faust (streams/worker).
refresh_model
count_table_keys
lists_naming_removed_items
user_recommendations
user_profile
new_user_recommendations
health

# mode/Faust/aiokafka hooks overridden by name: the library calls them (streams/worker, streams/internals).
_.on_stop
_._new_consumer_thread
_._drain_messages
_._new_transport
_._handle_pending

# The context-manager protocol's `__aexit__(exc_type, exc, traceback)` signature (streams/kafka).
traceback

# pydantic-settings reads the class attribute `model_config` and runs the validators (streams/settings.py).
model_config
_._security_is_complete
_._empty_token_is_none

# Dataclass fields read by name (`getattr`, `asdict`): the replay checkpoint's comparison, the evaluation's
# results.json, the event contracts' JSON.
fingerprint
miscalibration_points
recommended_items
clicked_item_id

# Attributes of third-party objects, set for their effect: faiss index parameters, Faust's terminal spinner, aiokafka's
# leave on close.
_.efConstruction
_.efSearch
_.spinner
_._maybe_leave_group

# Outcomes kept on result objects for callers, checked by the tests (vulture does not scan tests/).
reached_total
_.killed

# Readable reference implementations and oracles: the tests pin the compiled or batched paths to them (models).
kl_miscalibration
calibrated_rerank
_.upsert
_.similar_to
_.similarity_sums
explain
_.explain_list
_.quantize
intent_scores
simulate_searches
_.pair_count

# Progress reported to callers (`on_progress`): the CLI shows what it needs of it.
elapsed_seconds

# The fence's registry of mirrored upstream code, read by tests/streams/internals/test_upstream.py.
MIRRORED
PRIVATE_ATTRIBUTES
source_sha256
