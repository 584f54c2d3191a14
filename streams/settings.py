"""One frozen settings object, read from the environment (prefix STREAMREC_) or a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamrec.models.fairness import ExposureCaps
from streamrec.models.recommender import StreamParams


class SettingsError(ValueError):
    """Settings that pass validation yet do not work (e.g. TLS files that do not load); the CLI reports it as it
    reports invalid settings."""


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error would otherwise quote every input, the SASL password among them.
    model_config = SettingsConfigDict(
        env_prefix="STREAMREC_", env_file=".env", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated")
    app_id: str = Field("streamrec", description="Faust app id: consumer group and changelog topic prefix")
    web_port: int = Field(6066, ge=1, le=65535)
    web_host: str = "127.0.0.1"
    data_dir: Path = Field(Path(".streamrec/data"), description="worker state (RocksDB tables)")
    model_dir: Path = Field(Path(".streamrec/models"), description="item model artifacts")
    cache_dir: Path = Field(Path(".streamrec/cache"), description="downloaded datasets")
    broker_dir: Path = Field(Path(".streamrec/broker"), description="embedded noida-db broker data")
    top_n: int = Field(20, ge=1, le=500)
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1)
    calibration_weight: float = Field(0.6, ge=0.0, le=1.0, description="Steck's lambda; 0 turns calibration off")
    max_genre_share: float = Field(0.5, gt=0.0, le=1.0, description="cap on one genre's share of a list")
    max_creator_share: float = Field(0.2, gt=0.0, le=1.0, description="cap on one creator's share of a list")
    max_event_bytes: int = Field(16_384, ge=256)
    max_future_skew_ms: int = Field(5 * 60_000, ge=0, description="events further in the future are rejected")
    dlq_topic: str = "events-dlq"
    max_batch: int = Field(
        100_000,
        ge=1,
        description="most input records handled as one batch (one list per user per batch); a batch is what has "
        "arrived since the last one, so it is this large only while the worker catches up",
    )
    stop_grace_s: float = Field(
        20.0,
        ge=0.0,
        description="a graceful stop lets the batch in hand finish for this long, so its work is committed; a "
        "batch still running then is dropped and handled again after the restart (at least once)",
    )
    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = Field(
        "zstd",
        description="compression of what the worker produces (lists, changelogs, dead letters); consumers need "
        "the codec (aiokafka: cramjam), zstd needs Kafka >= 2.1. zstd by default: aiokafka compresses lz4 at level 9 "
        "(LZ4-HC), several times slower than zstd's level 3 on lists, with larger output",
    )
    coalesce: bool = Field(
        True,
        description="one list per user per batch; false: one list per event, as the prequential protocol has it",
    )
    order_wait_ms: int = Field(
        250,
        ge=0,
        description="longest an event waits for the other input partitions to show they hold nothing stamped "
        "before it (a user's events on different topics are applied in time order)",
    )
    empty_fetch_pause_ms: int = Field(
        5,
        ge=0,
        description="a fetch answered 'nothing new' sooner than this holds the next fetch for the rest of it "
        "(brokers that answer at once, like noida-db, would otherwise be polled thousands of times a second)",
    )
    recency_half_life_hours: float = Field(
        24.0,
        gt=0.0,
        le=24.0 * 365,
        description="the half-life of the recency the score weighs against all-time popularity (views decayed with "
        "time); the blend learns the two weights, not the half-life",
    )
    exact_max_items: int = Field(
        8_192,
        ge=1,
        description="catalogs larger than this rank each user's candidates only (sparse co-occurrence "
        "neighbours, faiss nearest items, popular items, search matches) instead of scoring every item",
    )
    recent_lists: int = Field(50_000, ge=0, description="last lists kept in memory for the view, per worker")
    decoded_profiles: int = Field(
        5_000,
        ge=0,
        description="profiles a worker keeps decoded between batches, the most recently written (a viewer's next "
        "event skips decoding the stored profile while its bytes are unchanged; ~40 KiB each for a profile of 50 "
        "history entries and 150 watched items); 0: none",
    )
    stuck_after_s: float = Field(
        120.0,
        gt=0.0,
        description="an assigned input partition with records left to handle whose position has not moved for this "
        "long is stuck: /ready answers 503 and streamrec_partition_stuck is 1 (judged every 10 s)",
    )
    instance_id: str | None = Field(
        None,
        description="static group membership (Kafka's group.instance.id), stable per worker (e.g. the StatefulSet "
        "pod's name): a restarted worker takes its partitions back at once instead of waiting for the session "
        "timeout and a rebalance; none: dynamic membership",
    )
    session_timeout_s: float = Field(
        60.0,
        ge=1.0,
        le=90.0,  # Faust refuses a session timeout above its request timeout (90 s)
        description="how long the group coordinator waits for a silent worker (killed, hung, cut off) before moving "
        "its partitions to the others (Kafka's session.timeout.ms; Kafka brokers refuse less than 6 s by default); "
        "the worker heartbeats every third of it, at most every 3 s",
    )
    leave_group_on_stop: bool = Field(
        False,
        description="with an instance id, leave the group on a graceful stop, so the worker's partitions move at "
        "once (scaling in for good); off: they wait for this worker's return, or the session timeout",
    )

    # Kafka security: every client the project builds (the worker's Faust consumer and producer, the admin, readers,
    # producers and probes of tools, benchmarks and the CLI) takes these through `streams.kafka.security`.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how the clients talk to Kafka: SSL encrypts, SASL_* authenticate"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism; required with SASL_PLAINTEXT and SASL_SSL"
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(None, description="never logged or shown (masked in reprs and dumps)")
    ssl_cafile: FilePath | None = Field(
        None, description="PEM CA bundle that signed the brokers' certificates; none: the system's CAs"
    )
    ssl_certfile: FilePath | None = Field(None, description="client certificate (PEM) for mutual TLS")
    ssl_keyfile: FilePath | None = Field(None, description="the client certificate's private key (PEM)")
    ssl_keyfile_password: SecretStr | None = Field(None, description="the password of an encrypted private key")
    # The worker's web views.
    http_token: SecretStr | None = Field(
        None,
        description="when set, every web view except /health and /metrics asks for `Authorization: Bearer <token>`",
    )
    profile_view: bool = Field(False, description="serve /users/{id}/profile (a viewer's history: off by default)")

    @field_validator("http_token")
    @classmethod
    def _empty_token_is_none(cls, token: SecretStr | None) -> SecretStr | None:
        # An empty token would let an empty `Bearer ` header in: empty means no token (as unset).
        return token if token is not None and token.get_secret_value().strip() else None

    @model_validator(mode="after")
    def _security_is_complete(self) -> Settings:
        """A half-configured security setup fails here, at start, instead of at the first connection."""
        problems: list[str] = []
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        if sasl:
            if self.sasl_mechanism is None:
                problems.append(f"STREAMREC_SECURITY_PROTOCOL={self.security_protocol} needs STREAMREC_SASL_MECHANISM")
            if not self.sasl_username or self.sasl_password is None or not self.sasl_password.get_secret_value():
                problems.append(
                    f"STREAMREC_SECURITY_PROTOCOL={self.security_protocol} needs STREAMREC_SASL_USERNAME and "
                    "STREAMREC_SASL_PASSWORD"
                )
        elif self.sasl_mechanism is not None or self.sasl_username or self.sasl_password is not None:
            problems.append(
                f"SASL settings are given but STREAMREC_SECURITY_PROTOCOL={self.security_protocol} does not "
                "authenticate (use SASL_PLAINTEXT or SASL_SSL)"
            )
        if not tls and (self.ssl_cafile or self.ssl_certfile or self.ssl_keyfile or self.ssl_keyfile_password):
            problems.append(
                f"TLS files are given but STREAMREC_SECURITY_PROTOCOL={self.security_protocol} does not use TLS "
                "(use SSL or SASL_SSL)"
            )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            problems.append("STREAMREC_SSL_KEYFILE needs STREAMREC_SSL_CERTFILE")
        if self.ssl_keyfile_password is not None and self.ssl_certfile is None:
            problems.append("STREAMREC_SSL_KEYFILE_PASSWORD needs STREAMREC_SSL_CERTFILE")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def stream_params(self, **overrides: Any) -> StreamParams:
        """The recommender's parameters as the worker runs them (the evaluator uses the very same)."""
        values: dict[str, Any] = {
            "top_n": self.top_n,
            "calibration_weight": self.calibration_weight,
            "caps": ExposureCaps(self.max_genre_share, self.max_creator_share),
            "exact_max_items": self.exact_max_items,
            "recency_half_life_ms": round(self.recency_half_life_hours * 3_600_000),
        }
        return StreamParams(**(values | overrides))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
