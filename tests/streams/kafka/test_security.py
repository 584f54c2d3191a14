"""Kafka security from the settings: what the clients are built with (aiokafka arguments, TLS context, the worker's
Faust credentials), the combinations refused at start, secrets kept out of reprs, dumps and logs, and two checks
against something real:

- TLS: noida-db 0.2.3 (the embedded broker) has no TLS listener, so a local TLS server with a throwaway CA
  (trustme) stands in for a broker: the project's own clients, configured by STREAMREC_* variables only, complete
  the handshake (server certificate verified against STREAMREC_SSL_CAFILE, client certificate presented for mutual
  TLS) and send their first Kafka request through it.
- SASL: noida-db 0.2.3 accepts SASL/PLAIN on its one listener (with any credentials: it does not check them, and
  it serves clients without SASL as well) and has no SCRAM. So PLAIN is run end to end (topic, produce, read), and a
  SCRAM mechanism shows the settings reach the client: the broker refuses the mechanism by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import struct
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiokafka.errors import KafkaConnectionError
from cryptography.hazmat.primitives import serialization
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr, ValidationError

from streamrec.streams.kafka import JsonProducer, read_all, wait_for_broker
from streamrec.streams.kafka.admin import TopicSpec, create_topics
from streamrec.streams.kafka.security import client_security, faust_credentials, ssl_context
from streamrec.streams.settings import Settings, SettingsError, get_settings
from streamrec.streams.tools.worker_process import settings_env
from streamrec.streams.worker.app import create_app

PASSWORD = "pa55-" + uuid.uuid4().hex  # unique: found nowhere by chance
TOKEN = "tok-" + uuid.uuid4().hex


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    ca_file: Path
    cert_file: Path  # the client's certificate (mutual TLS)
    key_file: Path
    other_ca_file: Path  # a CA that signed nothing here


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = ca.issue_cert("streamrec-client")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    return Pki(ca, tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key", tmp_path / "other-ca.pem")


def _settings(**fields: Any) -> Settings:
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]


def _sasl(protocol: str = "SASL_PLAINTEXT", mechanism: str = "SCRAM-SHA-512", **fields: Any) -> Settings:
    return _settings(
        security_protocol=protocol, sasl_mechanism=mechanism, sasl_username="svc", sasl_password=PASSWORD, **fields
    )


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set STREAMREC_* variables for the clients that read the process's settings; restored afterwards."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


# -- what the clients are built with ------------------------------------------------------------------------------


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    settings = _settings()
    assert settings.security_protocol == "PLAINTEXT"
    assert client_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert ssl_context(settings) is None
    assert faust_credentials(settings) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_arguments(mechanism: str) -> None:
    assert client_security(_sasl(mechanism=mechanism)) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "svc",
        "sasl_plain_password": PASSWORD,
    }


def test_ssl_context_verifies_against_the_ca_file(pki: Pki) -> None:
    arguments = client_security(_settings(security_protocol="SSL", ssl_cafile=pki.ca_file))
    assert set(arguments) == {"security_protocol", "ssl_context"} and arguments["security_protocol"] == "SSL"
    context: ssl.SSLContext = arguments["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # the CA file's certificate and nothing else (not the system's CAs)
    assert context.get_ca_certs() == ssl.create_default_context(cafile=str(pki.ca_file)).get_ca_certs() != []


def test_sasl_ssl_has_both(pki: Pki) -> None:
    arguments = client_security(_sasl("SASL_SSL", "PLAIN", ssl_cafile=pki.ca_file))
    assert arguments["security_protocol"] == "SASL_SSL" and arguments["sasl_mechanism"] == "PLAIN"
    assert isinstance(arguments["ssl_context"], ssl.SSLContext)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {"security_protocol": "PLAINTEXT"}),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256"},
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-256",
                "sasl_plain_username": "svc",
                "sasl_plain_password": PASSWORD,
            },
        ),
    ],
)
def test_the_worker_s_faust_clients_get_the_same(
    tmp_path: Path, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    credentials = {"sasl_username": "svc", "sasl_password": PASSWORD} if "sasl_mechanism" in fields else {}
    settings = _settings(data_dir=tmp_path, model_dir=tmp_path / "models", **fields, **credentials)
    app = create_app(settings)
    # What Faust's consumer, producer and topic creation pass to aiokafka.
    auth = dict(credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context))
    auth.pop("ssl_context", None)  # None without TLS
    assert auth == expected == {k: v for k, v in client_security(settings).items() if k != "ssl_context"}


def test_the_worker_s_faust_clients_get_the_tls_context(tmp_path: Path, pki: Pki) -> None:
    fields = {"data_dir": tmp_path, "model_dir": tmp_path / "models", "ssl_cafile": pki.ca_file}
    for settings in (_settings(security_protocol="SSL", **fields), _sasl("SASL_SSL", "PLAIN", **fields)):
        auth = credentials_to_aiokafka_auth(create_app(settings).conf.broker_credentials, None)
        assert auth["security_protocol"] == settings.security_protocol
        expected = ssl_context(settings)
        assert expected is not None and auth["ssl_context"].get_ca_certs() == expected.get_ca_certs()


# -- refused at start ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "p"}, "STREAMREC_SASL_MECHANISM"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}, "STREAMREC_SASL_USERNAME and"),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
                "sasl_password": "",
            },
            "STREAMREC_SASL_PASSWORD",
        ),
        ({"sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": "p"}, "does not authenticate"),
        ({"security_protocol": "SSL", "sasl_username": "u"}, "does not authenticate"),
        ({"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"}, "ssl_cafile"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
        ({"security_protocol": "TLS"}, "security_protocol"),
    ],
)
def test_incomplete_security_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _settings(**fields)


def test_tls_files_without_tls_are_refused(pki: Pki) -> None:
    with pytest.raises(ValidationError, match="does not use TLS"):
        _settings(ssl_cafile=pki.ca_file)
    with pytest.raises(ValidationError, match="STREAMREC_SSL_KEYFILE needs STREAMREC_SSL_CERTFILE"):
        _settings(security_protocol="SSL", ssl_keyfile=pki.key_file)


def test_tls_files_that_do_not_load_are_refused_by_name(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(SettingsError, match=f"STREAMREC_SSL_CAFILE={garbage}"):
        client_security(_settings(security_protocol="SSL", ssl_cafile=garbage))
    with pytest.raises(SettingsError, match="STREAMREC_SSL_KEYFILE="):  # a key that is not the certificate's
        ssl_context(_settings(security_protocol="SSL", ssl_certfile=pki.cert_file, ssl_keyfile=pki.other_ca_file))


def test_an_encrypted_key_needs_its_password_and_never_prompts(pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.key_file.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
    )
    tls = {"security_protocol": "SSL", "ssl_certfile": pki.cert_file, "ssl_keyfile": encrypted}
    assert ssl_context(_settings(**tls, ssl_keyfile_password=PASSWORD)) is not None
    for wrong in ({}, {"ssl_keyfile_password": "wrong"}):  # without one: an error, not OpenSSL's terminal prompt
        with pytest.raises(SettingsError, match="STREAMREC_SSL_KEYFILE_PASSWORD") as refused:
            ssl_context(_settings(**tls, **wrong))
        assert PASSWORD not in str(refused.value)


def test_the_command_line_reports_bad_settings_without_a_traceback(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    cases = [
        {"STREAMREC_SECURITY_PROTOCOL": "SASL_SSL", "STREAMREC_SASL_PASSWORD": PASSWORD},
        {"STREAMREC_SECURITY_PROTOCOL": "SSL", "STREAMREC_SSL_CAFILE": str(garbage)},
    ]
    for variables in cases:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")} | variables
        env["STREAMREC_BOOTSTRAP_SERVERS"] = "127.0.0.1:9"
        done = subprocess.run(
            [sys.executable, "-m", "streamrec.streams.cli", "topics", "list"],
            env=env,
            cwd=tmp_path,  # no .env
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("invalid settings: ") and "Traceback" not in done.stderr
        assert PASSWORD not in done.stderr + done.stdout


def test_the_environment_is_checked_too(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("STREAMREC_SECURITY_PROTOCOL", "SASL_SSL")
    environment.setenv("STREAMREC_SASL_PASSWORD", PASSWORD)
    with pytest.raises(ValidationError, match="needs STREAMREC_SASL_MECHANISM") as refused:
        get_settings()
    assert PASSWORD not in str(refused.value)  # pydantic would quote every input


# -- secrets ------------------------------------------------------------------------------------------------------


def test_secrets_stay_out_of_reprs_and_dumps(caplog: pytest.LogCaptureFixture) -> None:
    settings = _sasl(http_token=TOKEN)
    credentials = faust_credentials(settings)
    logging.getLogger("streamrec.test").warning("settings %s %r credentials %r", settings, settings, credentials)
    shown = [
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
        repr(credentials),
        caplog.text,
    ]
    for text in shown:
        assert PASSWORD not in text and TOKEN not in text
    assert settings.sasl_password == SecretStr(PASSWORD) and "**********" in settings.model_dump_json()


def test_a_worker_subprocess_gets_the_secrets_themselves() -> None:
    env = settings_env(_sasl(http_token=TOKEN))
    assert env["STREAMREC_SASL_PASSWORD"] == PASSWORD and env["STREAMREC_HTTP_TOKEN"] == TOKEN
    assert Settings(
        _env_file=None, **{k[len("STREAMREC_") :].lower(): v for k, v in env.items() if k.startswith("STREAMREC_")}
    ) == _sasl(http_token=TOKEN)  # type: ignore[arg-type]


# -- TLS against a local server -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstRequest:
    api_key: int
    client_id: str
    client_certificate: dict[str, Any] | None


@contextlib.asynccontextmanager
async def tls_listener(
    pki: Pki, *, client_certificates: bool
) -> AsyncIterator[tuple[int, asyncio.Queue[FirstRequest]]]:
    """A TLS server with a certificate for 127.0.0.1 signed by `pki.ca`: it records each connection's first Kafka
    request (size, api key, version, correlation id, client id) and hangs up."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    pki.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    if client_certificates:
        pki.ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    seen: asyncio.Queue[FirstRequest] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            (size,) = struct.unpack(">i", await reader.readexactly(4))
            request = await reader.readexactly(size)
            api_key, _version, _correlation, id_length = struct.unpack(">hhih", request[:10])
            peer = writer.get_extra_info("ssl_object").getpeercert()
            seen.put_nowait(FirstRequest(api_key, request[10 : 10 + id_length].decode(), peer or None))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()
        await server.wait_closed()


async def _first_request(seen: asyncio.Queue[FirstRequest], client: Any) -> FirstRequest:
    task = asyncio.ensure_future(client)
    try:
        return await asyncio.wait_for(seen.get(), timeout=30.0)
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def _configure_tls(environment: pytest.MonkeyPatch, pki: Pki, *, ca_file: Path, client_certificate: bool) -> None:
    environment.setenv("STREAMREC_SECURITY_PROTOCOL", "SSL")
    environment.setenv("STREAMREC_SSL_CAFILE", str(ca_file))
    if client_certificate:
        environment.setenv("STREAMREC_SSL_CERTFILE", str(pki.cert_file))
        environment.setenv("STREAMREC_SSL_KEYFILE", str(pki.key_file))


async def test_the_project_s_clients_speak_tls_as_configured(pki: Pki, environment: pytest.MonkeyPatch) -> None:
    _configure_tls(environment, pki, ca_file=pki.ca_file, client_certificate=True)
    async with tls_listener(pki, client_certificates=True) as (port, seen):
        admin = await _first_request(seen, wait_for_broker(f"127.0.0.1:{port}", timeout_s=60.0))
        producer = JsonProducer(f"127.0.0.1:{port}")
        sent = await _first_request(seen, producer.start())
        await producer.stop()
    assert (admin.client_id, sent.client_id) == ("streamrec-admin", "streamrec-producer")
    assert admin.api_key == sent.api_key == 18  # ApiVersions: the first request of a bootstrap, sent over TLS
    assert admin.client_certificate is not None
    assert ("DNS", "streamrec-client") in admin.client_certificate["subjectAltName"]


async def test_a_broker_certificate_from_another_ca_is_refused(pki: Pki) -> None:
    async with tls_listener(pki, client_certificates=False) as (port, _):
        trusted = ssl_context(_settings(security_protocol="SSL", ssl_cafile=pki.ca_file))
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusted)
        writer.close()
        stranger = ssl_context(_settings(security_protocol="SSL", ssl_cafile=pki.other_ca_file))
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", port, ssl=stranger)


# -- SASL against the embedded broker -----------------------------------------------------------------------------


def _configure_sasl(environment: pytest.MonkeyPatch, mechanism: str) -> None:
    environment.setenv("STREAMREC_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    environment.setenv("STREAMREC_SASL_MECHANISM", mechanism)
    environment.setenv("STREAMREC_SASL_USERNAME", "svc")
    environment.setenv("STREAMREC_SASL_PASSWORD", PASSWORD)


@pytest.mark.kafka
async def test_sasl_plain_end_to_end(kafka_bootstrap: str, environment: pytest.MonkeyPatch) -> None:
    _configure_sasl(environment, "PLAIN")
    topic = f"sasl-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, [TopicSpec(topic, 1)])
    async with JsonProducer(kafka_bootstrap) as producer:
        await producer.send(topic, {"n": 1}, key="k")
    records = await read_all(kafka_bootstrap, topic)
    assert [(record.key, record.json()) for record in records] == [(b"k", {"n": 1})]


@pytest.mark.kafka
async def test_the_configured_mechanism_reaches_the_broker(
    kafka_bootstrap: str, environment: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _configure_sasl(environment, "SCRAM-SHA-512")
    producer = JsonProducer(kafka_bootstrap)
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    assert "does not support SCRAM-SHA-512" in caplog.text  # noida-db 0.2.3 has PLAIN only
    assert PASSWORD not in caplog.text
