"""What the fence (and the worker's item-log feed) relies on in the pinned faust-streaming 0.15.3 and aiokafka
0.14.0, checked against the installed libraries by tests/streams/internals/test_upstream.py.

`MIRRORED`: each upstream function the fence replaces, copies or depends on the inner workings of, with the SHA-256
of its source (`inspect.getsource`); a changed hash means the library changed under the fence: re-read the function
and the fence code naming it, then update the hash. `PRIVATE_ATTRIBUTES`: each private name the fence touches, by
the library object that has it.
"""

# ruff: noqa: E501 - a full name and its hash on one line, unwrapped

from __future__ import annotations

import hashlib
import importlib
import inspect
from typing import Any

MIRRORED: dict[str, str] = {
    # batching.BatchingConsumer: the drain loop, tracking and acks, the stop, the commit that flushes first
    "faust.transport.consumer.Consumer._drain_messages": "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    "faust.transport.consumer.Consumer.track_message": "217d7f1399a4cd8e15a43a64ecf50413b9b738058e5433e057f0dc3927a3fc03",
    "faust.transport.consumer.Consumer.ack": "5fcf41cf45153475de3790dc56fec1b83335956dc8b3bf7ff6bbb2b57627f03f",
    "faust.transport.consumer.Consumer.wait_empty": "e4662fe24f094819add590b2d75f233840e77823b432aea6504539768572102f",
    "faust.transport.consumer.Consumer._commit_offsets": "1a6979904118844111259d182ca1c6e92ccc16364ccbe55c58e59d6e254a7adb",
    # batching.BatchingConsumer.perform_seek: the records getmany drops are read again only by the seek to committed
    "faust.transport.consumer.Consumer.perform_seek": "0e8c130ff4b0afd82c0be9c5fd831316e10febc62c94032833911096e156d7c6",
    "faust.transport.consumer.Consumer.getmany": "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e",
    "aiokafka.consumer.consumer.AIOKafkaConsumer.seek_to_committed": "f6cd85c8b70a4ccf7e862de24f6c5d985038eed3e140990f000aa4b52eda8d72",
    "faust.transport.drivers.aiokafka.Consumer._new_consumer_thread": "0870ec53dea75083995e3565c0f0a25a1c63ecceaeb238e92e2585e3623af5a9",
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.on_start": "38b4e8bd1e10723aed02bb1e8c74ccb02a0b04dec35b9001c51f45fa7f2b611c",
    "faust.app.base.App._new_transport": "42db531312dd776fc3937154a32f19eeb9ad7d4ebc2722a92d081a2d271baea1",
    # batching.BatchingConsumer._caught_up_ms and fetch_pacing: what a fetch answer records, when a node is asked
    "aiokafka.consumer.fetcher.Fetcher._proc_fetch_request": "59bf948fff47eed580671971252454daa614df479733f3bedfefe95bc4d8ad30",
    "aiokafka.consumer.fetcher.Fetcher._fetch_requests_routine": "2a8ec5932644c9b04ff222ee7f27c9b0d6a0a7e89ce5a158ed340ceedc2ec7a9",
    # producer_buffer: the buffer's task and flush, the producer's flush, closing aiokafka's batches
    "faust.transport.producer.ProducerBuffer._handle_pending": "78d648030fd21016cc0d82ae6cc6df1cb474273195b10f133ea0ef9ac9d35f0c",
    "faust.transport.producer.ProducerBuffer.flush": "26fbebb124ad9c9890f19b4615585cf3eda102b61203e6aa885d3fabfda9b157",
    "faust.transport.producer.ProducerBuffer.flush_atmost": "4966e8c5f9b42eb97abe3f93cbc9bc566a22bdea01ae5328c5a6593414820323",
    "faust.transport.drivers.aiokafka.Producer.flush": "36d0cb3615f65b01010d1ec8c5b0f6180110e24c486799bc47c0d72be5152270",
    "aiokafka.producer.message_accumulator.MessageAccumulator.flush_for_commit": "39683730fcffc2a4f30070023aa1bee2d6bb62f1f1547e6dd69f4697d66ee75e",
    # changelog_restore: Faust's per-record recovery, done per fetch
    "faust.tables.recovery.Recovery._slurp_changelogs": "7825c7e50f766d5ab0fd246b63420ea0dfcd732d005f1057cc9da656ff5d3967",
    "faust.stores.rocksdb.Store.apply_changelog_batch": "ea3344d369fc4ab5e3cdace30565691136035a463acb7b2551fdc0b8af71643b",
    # tables: the table manager's start, the RocksDB store's partitions
    "faust.tables.manager.TableManager.on_start": "365dd25fbc0e068499c89e526516c638693a2d143b6ac249f84a60f5267fec9d",
    "faust.stores.rocksdb.Store._db_for_partition": "cb7e67d5f9efc4bced7b7ab09a55fe717c352daad5b693594e3f7ca52a98787f",
    # state_healing: the recovery's order (high-water marks, offsets, the consistency check) and the store's opens
    "faust.tables.recovery.Recovery._restart_recovery": "6bd8a8558a2dffe4c60b8150f23d721baa6b3d658367f911a3ad2187e20efc6f",
    "faust.tables.recovery.Recovery._build_offsets": "27eec86be06cb51f66dfd2572be2f9b41acd22c3570239bb5c554bd94e59a1d6",
    "faust.tables.recovery.Recovery._build_highwaters": "91b4cc0d3724ae7bfc398e873684fc6f667ef8feb61a3b3314346ef11f2823de",
    "faust.tables.manager.TableManager.recovery": "f0bf5de78b4c3d235c3554010480f407010ccb7c481c68852a985542b952df32",
    "faust.stores.rocksdb.Store._open_for_partition": "1dc4e0113d67379dd61c0a396fa92636577d5fc6be60d4312253fa566080377b",
    "faust.stores.rocksdb.Store.persisted_offset": "6f2e502fb86043a1cf0adca5c2fffb197579db01b31dbba3b0415aaacc35a2ed",
    "faust.stores.rocksdb.Store._try_open_db_for_partition": "b2546e78f9298bdc6c990229c9f426f76d666fc6e0a5ebafcd86d6fe7978941d",
    # table_writes: what a table write leaves behind (the store's put and key index, the changelog record, the
    # persisted offset once it is acknowledged), done a batch at a time
    "faust.tables.table.Table.on_key_set": "a370e35ca55c2c7e36e93f0d4b485927c32d49199043cab2314572846184dd94",
    "faust.tables.base.Collection._on_changelog_sent": "60122c86a120d82cffa95da4c22323e12d67fa82f3112f08ac7f8edde7c47826",
    "faust.stores.rocksdb.Store._set": "4227e561e288d9413bf663a3a67940fd4976f5484e70e49445858ce4d400d26e",
    "faust.stores.rocksdb.Store._del": "07f42ff3caefffddb002ba3c316120ee8a608a15021fa226fd8e9ba2635004a9",
    "faust.stores.rocksdb.Store.set_persisted_offset": "b4c811926678346ebb8c40486dbc46d0fbac2bbeaa592384bd955112556acf45",
    # routing: the current event tables read
    "faust.streams.Stream._set_current_event": "b9a41294b605ac08c44529e087ad0b907a11c587b2e0fcbecf9ad667a4633e61",
    "faust.streams.current_event": "3b821f1a78d86a58234dfe781fbf539775b00e66fdac9489c1c398a2d81d7e9d",
    # group_join: what a join returns, and what aiokafka does with a failed one
    "aiokafka.consumer.group_coordinator.CoordinatorGroupRebalance.perform_group_join": "ff2c2109b2e9868dc23f43643160ea3d87c40093adc03e5e8c9a45c81844ea75",
    "aiokafka.consumer.group_coordinator.GroupCoordinator._maybe_leave_group": "016cd88a16e6c4b5b08ecab793e0fde0204fe2cfd836af5f682c48630d3fba2e",
    "aiokafka.consumer.group_coordinator.GroupCoordinator._do_rejoin_group": "3cb016c98a087a71bfea089e25be2117bc405f76a3348558b28080ec02008559",
    # topic_declaration: a topic is created unless the declaring client's metadata cache holds it
    "faust.transport.drivers.aiokafka.Transport._create_topic": "5e1966c11a52b515d86c8ff9be5277eed3ece22dd0ce077811467da043651cf0",
    "faust.transport.drivers.aiokafka.Transport._really_create_topic": "698806ec237ce0d79243e063ca3913ebed5205e37095932282bf130ee5483fbd",
    # consumer_state: the app's consumer, created on first use
    "faust.app.base.App.consumer": "354b140caceca03c3e29a753faecfe63e42c3e8573de6c7baa3363a2326d960c",
    # worker.item_log.ItemLogFeed.fold_written: a seek past records folded as written drops what the fetcher holds of
    # them (buffered, and a fetch in flight for the old position: `_proc_fetch_request` above)
    "aiokafka.consumer.consumer.AIOKafkaConsumer.seek": "a9430f1f3b9ac4194dfccc7b61d3aa32f89ed3d1b065e78c72eec34380e4f9ca",
    "aiokafka.consumer.fetcher.Fetcher.seek_to": "f0ba6aba6c22ef83e0d58690ef771d04777032ec48cbfa68325c67bf0ef508f4",
    "aiokafka.consumer.fetcher.FetchResult.check_assignment": "b5340df67e3f330f998e01e49adc7fd03dae24b8a0e201ae4325d3f980d3eae3",
}

PRIVATE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "mode.Service": ("_stopped",),
    "faust.streams": ("_current_event",),
    "faust.app.base.App": ("_consumer", "_new_transport"),
    "faust.transport.consumer.Consumer": (
        "_drain_messages",
        "_read_offset",
        "_add_gap",
        "_unacked_messages",
        "_committed_offset",
        "_commit_every",
        "_n_acked",
    ),
    "faust.transport.drivers.aiokafka.Consumer": ("_new_consumer_thread", "_thread"),
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread": ("_ensure_consumer",),
    "faust.transport.drivers.aiokafka.Transport": ("_create_topic",),
    "faust.transport.drivers.aiokafka.Producer": ("_producer", "_ensure_producer"),
    "faust.transport.producer.ProducerBuffer": ("_handle_pending", "_send_pending"),
    "faust.tables.manager.TableManager": ("_update_channels", "_recovery"),
    "faust.tables.recovery.Recovery": ("_build_offsets",),
    "faust.tables.base.Collection": ("_on_changelog_event",),
    "faust.stores.rocksdb.Store": ("_dbs", "_open_for_partition", "_db_for_partition", "_del", "_key_index"),
    "aiokafka.AIOKafkaConsumer": ("_fetcher", "_subscription", "_coordinator"),
    "aiokafka.consumer.group_coordinator.GroupCoordinator": ("_maybe_leave_group", "_send_req"),
    "aiokafka.consumer.fetcher.Fetcher": ("_proc_fetch_request",),
    "aiokafka.AIOKafkaProducer": ("_message_accumulator",),
    "aiokafka.producer.message_accumulator.MessageAccumulator": ("_batches", "_waiter_future"),
    "aiokafka.producer.message_accumulator.MessageBatch": ("_builder",),
}


def resolve(name: str) -> Any:
    """The object a dotted name stands for: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(f"no module in {name!r}")


def source_sha256(name: str) -> str:
    """SHA-256 of the source of the function `name` (a property's getter, a mode task's function)."""
    target = resolve(name)
    if isinstance(target, property):
        target = target.fget
    target = getattr(target, "fun", target)  # mode's `Service.task` wraps the coroutine function
    return hashlib.sha256(inspect.getsource(target).encode()).hexdigest()
