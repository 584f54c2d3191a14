"""Kafka security from the settings, in one place: the keyword arguments of every aiokafka client the project builds
(`client_security`) and the worker's Faust credentials (`faust_credentials`).

`Settings` has already refused incomplete combinations (a SASL protocol without a mechanism or credentials, TLS
files without TLS, a missing file); here they only become clients' arguments. The password leaves its `SecretStr`
only into the client's arguments, never into a message or a log line.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context
from faust.types.auth import CredentialsT

from streamrec.streams.settings import Settings, SettingsError, get_settings


def client_security(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments (`AIOKafkaConsumer(..., **client_security(settings))`, likewise the producer and
    the admin client) for the configured protocol."""
    arguments: dict[str, Any] = {"security_protocol": settings.security_protocol}
    context = ssl_context(settings)
    if context is not None:
        arguments["ssl_context"] = context
    if settings.security_protocol.startswith("SASL_"):
        assert settings.sasl_password is not None  # Settings checked it
        arguments |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": settings.sasl_password.get_secret_value(),
        }
    return arguments


def environment_security() -> dict[str, Any]:
    """`client_security` of the process's settings (STREAMREC_* variables): what the clients given only a bootstrap
    address use (tools, benchmarks, the CLI; the worker's processes run with the very same variables)."""
    return client_security(get_settings())


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL (hostnames checked; the CA file, else the system's CAs; the client
    certificate for mutual TLS); None for the plaintext protocols. Raises SettingsError if a file does not load
    (not PEM, a key that does not match, a wrong password)."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    # Never None: OpenSSL would ask for an encrypted key's password on the terminal, and a worker would hang.
    password = "" if settings.ssl_keyfile_password is None else settings.ssl_keyfile_password.get_secret_value()
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.ssl_cafile,
            certfile=settings.ssl_certfile,
            keyfile=settings.ssl_keyfile,
            password=password if settings.ssl_certfile is not None else None,
        )
    except (ssl.SSLError, OSError) as error:
        files = {
            "STREAMREC_SSL_CAFILE": settings.ssl_cafile,
            "STREAMREC_SSL_CERTFILE": settings.ssl_certfile,
            "STREAMREC_SSL_KEYFILE": settings.ssl_keyfile,
        }
        given = ", ".join(f"{name}={path}" for name, path in files.items() if path is not None) or "the system's CAs"
        raise SettingsError(
            f"could not load the TLS files ({given}): {error}; PEM files expected, an encrypted key needs "
            "STREAMREC_SSL_KEYFILE_PASSWORD"
        ) from None
    return context


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The Faust app's `broker_credentials`: Faust hands them to its consumer, producer and topic creation
    (`faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth`); None for PLAINTEXT."""
    context = ssl_context(settings)
    if settings.security_protocol.startswith("SASL_"):
        assert settings.sasl_password is not None  # Settings checked it
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
