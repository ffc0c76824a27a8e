"""What every llmpulse command shares, in plain Python: times, the log level, exits.

Each room builds its click options on these, so ``--since``/``--from``/``--to``/``--until``
read times the same way everywhere (a duration before now, or an ISO time) and
``--log-level`` means the same thing on every command, and every entry point ends an
expected failure (any ``LlmpulseError``: a bad configuration file, a store that is busy
or not migrated, a broker that does not answer) with one line and a non-zero status
instead of a traceback. No click here: ``llmpulse-schemas`` stays free of command-line
packages.

Example:
    >>> from datetime import UTC, datetime
    >>> from llmpulse.schemas.commandline import parse_moment, moment_range
    >>> now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    >>> parse_moment("2h", now=now).isoformat()
    '2026-12-01T10:00:00+00:00'
    >>> parse_moment("2026-11-30T08:00", now=now).isoformat()
    '2026-11-30T08:00:00+00:00'
    >>> [m.isoformat() for m in moment_range("1d", "6h", now=now)]
    ['2026-11-30T06:00:00+00:00', '2026-12-01T06:00:00+00:00']
"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from llmpulse.schemas import environment as env
from llmpulse.schemas.errors import LlmpulseError

__all__ = ["LOG_LEVELS", "MOMENT_HELP", "BrokerNotKafka", "BrokerUnreachable",
           "broker_unreachable", "configure_logging", "health_address_option",
           "log_level_option", "moment_range", "parse_moment", "require_broker", "require_kafka",
           "run_command", "serve_command_health"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)")
_UNIT = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}

MOMENT_HELP = "a duration before now (30m, 2h, 7d, 2w) or an ISO time (2026-01-31T12:00, UTC if no zone)"
"""How a time option reads its value, for the options' help."""

LOG_LEVELS = ("debug", "info", "warning", "error")
"""The values of ``--log-level``."""


def parse_moment(text: str, *, now: datetime) -> datetime:
    """``30m``, ``2h``, ``7d``, ``2w`` before ``now``, or an ISO 8601 time (UTC if no zone).

    Raises:
        ValueError: neither a duration nor an ISO time (the message says what is accepted).
    """
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if match:
        return now - timedelta(**{_UNIT[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use {MOMENT_HELP}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def moment_range(start: str | None, end: str | None, *,
                 now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """A range from two option values; a duration in ``start`` counts back from ``end``.

    Either side may be None (open). Raises ValueError when start is not before end.
    """
    now = now or datetime.now(UTC)
    until = parse_moment(end, now=now) if end else None
    since = parse_moment(start, now=until or now) if start else None
    if since is not None and until is not None and since >= until:
        raise ValueError(f"the start ({since:%Y-%m-%d %H:%M}) is not before the end "
                         f"({until:%Y-%m-%d %H:%M})")
    return since, until


def log_level_option(click: Any, *, default: str = "info",
                     where: str = "standard error") -> Callable[[Any], Any]:
    """The ``--log-level`` option of every command (``--loglevel``, Faust's spelling, too):
    one of ``LOG_LEVELS``, any case; the value reaches the command as ``log_level``.

    ``click`` is the caller's click module: each room with commands depends on click, this
    one does not.

    Example::

        import click

        @click.command()
        @log_level_option(click)
        def sink(log_level: str) -> None:
            configure_logging(log_level)
    """
    return click.option(  # type: ignore[no-any-return]
        "--log-level", "--loglevel", "log_level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False), default=default, show_default=True,
        help=f"Log level (logs go to {where}).")


def health_address_option(click: Any, default_address: str) -> Callable[[Any], Any]:
    """The ``--health-address`` option of a service's command (``llmpulse worker``,
    ``llmpulse sink``, ``llmpulse otlp run``), ``default_address`` being its own port; the
    value reaches the command as ``health_address``. ``click`` is the caller's module, as in
    ``log_level_option``."""
    return click.option(  # type: ignore[no-any-return]
        "--health-address", envvar=env.HEALTH_ADDRESS, default=default_address,
        show_default=True, show_envvar=True,
        help="Serve /healthz, /readyz and /metrics here ('off': not at all). Not loopback: "
             f"${env.HEALTH_TOKEN} is required.")


def serve_command_health(click: Any, registry: Any, ready: Any, health_address: str) -> Any:
    """Serve a service's ``/healthz``, ``/readyz`` and ``/metrics`` (``registry`` and
    ``ready`` as ``llmpulse.schemas.health.serve_health`` takes them) on the running
    command's ``--health-address``: a taken default port only warns, an explicit address
    that cannot be served stops the command. Needs the ``[health]`` extra.

    Returns:
        The ``HealthServer`` to ``stop()``, or None (``off``, or a taken default port).

    Raises:
        click.ClickException: the address was given explicitly and cannot be served.
    """
    from llmpulse.schemas.health import serve_health

    explicit = click.get_current_context().get_parameter_source("health_address") != \
        click.core.ParameterSource.DEFAULT
    try:
        return serve_health(registry, ready, health_address, explicit=explicit)
    except LlmpulseError as exc:
        raise click.ClickException(str(exc)) from exc


class BrokerUnreachable(LlmpulseError):
    """No bootstrap server accepted a connection."""


def broker_unreachable(bootstrap_servers: str, reason: str) -> str:
    """What every command says when Kafka does not answer: what happened, what to do."""
    return (f"Kafka at {bootstrap_servers} did not answer ({reason}): start the broker, or "
            f"check --bootstrap-servers (or ${env.BOOTSTRAP_SERVERS})")


def require_broker(bootstrap_servers: str, *, timeout_s: float | None = None) -> None:
    """Return once one bootstrap server accepts a TCP connection (``require_kafka`` also
    asks it whether it is Kafka).

    Args:
        bootstrap_servers: ``host:port[,host:port]`` (``PLAINTEXT://`` and ``[v6]`` allowed).
        timeout_s: the wait per server (default ``$LLMPULSE_BROKER_CHECK_SECONDS``, else 5).

    Raises:
        BrokerUnreachable: none answered (the message says what to do).
    """
    _check_servers(bootstrap_servers, timeout_s, probe=None)


class BrokerNotKafka(BrokerUnreachable):
    """A bootstrap server accepted the connection but did not answer as Kafka."""


def require_kafka(bootstrap_servers: str, *, timeout_s: float | None = None) -> None:
    """Return once one bootstrap server answers a Kafka ``ApiVersions`` request: a service
    checks this before its slow start (the worker's models), so a wrong address costs
    seconds and one line, not minutes and a Kafka client's traceback. Over TLS
    (``$LLMPULSE_KAFKA_SECURITY_PROTOCOL`` ``SSL`` or ``SASL_SSL``) only the connection is
    checked: the request would need the client's TLS settings.

    Args:
        bootstrap_servers: ``host:port[,host:port]`` (``PLAINTEXT://`` and ``[v6]`` allowed).
        timeout_s: the wait per server, to connect and for the answer (default
            ``$LLMPULSE_BROKER_CHECK_SECONDS``, else 5).

    Raises:
        BrokerNotKafka: something listens there, but no server answered as Kafka.
        BrokerUnreachable: no server accepted a connection.
    """
    protocol = os.environ.get(f"{env.KAFKA_PREFIX}SECURITY_PROTOCOL", "").upper()
    _check_servers(bootstrap_servers, timeout_s,
                   probe=None if protocol.endswith("SSL") else _api_versions)


def _check_servers(bootstrap_servers: str, timeout_s: float | None,
                   probe: Callable[[socket.socket, float], None] | None) -> None:
    """Return once one server accepts a connection (and passes ``probe``, which raises
    ``ValueError`` saying what came back instead of Kafka's answer)."""
    if timeout_s is None:
        timeout_s = float(os.environ.get(env.BROKER_CHECK_SECONDS) or 5.0)
    reasons, foreign = [], []
    for server in filter(None, (s.strip() for s in bootstrap_servers.split(","))):
        host, port = _host_port(server)
        try:
            with socket.create_connection((host, port), timeout=timeout_s) as connection:
                if probe is None:
                    return
                try:
                    probe(connection, timeout_s)
                    return
                except (ValueError, OSError) as exc:
                    foreign.append(f"{server}: {exc}")
        except TimeoutError:
            reasons.append(f"{server}: no answer in {timeout_s:g} s")
        except (OSError, ValueError) as exc:
            reasons.append(f"{server}: {getattr(exc, 'strerror', None) or exc}")
    if foreign:
        raise BrokerNotKafka(
            f"{bootstrap_servers} did not answer as Kafka ({'; '.join(foreign + reasons)}): "
            f"is it another service's address? Check --bootstrap-servers (or "
            f"${env.BOOTSTRAP_SERVERS}) against the broker's listener port")
    raise BrokerUnreachable(broker_unreachable(bootstrap_servers,
                                               "; ".join(reasons) or "no server given"))


_API_VERSIONS = 18
"""Kafka's ``ApiVersions`` request key: every broker answers it first, before any login."""


def _api_versions(connection: socket.socket, timeout_s: float) -> None:
    """Send ``ApiVersions`` v0 and read the answer; raise ``ValueError`` (what came back
    instead) unless it is a Kafka answer: the same correlation id, and an error code of 0
    or 35 (a broker that wants another version says so, still in Kafka's format) with the
    list of its APIs.

    Example:
        >>> import socket, struct
        >>> ours, theirs = socket.socketpair()
        >>> _ = theirs.sendall(b"HTTP/1.1 400 Bad Request\\r\\n\\r\\n")
        >>> _api_versions(ours, 1.0)
        Traceback (most recent call last):
        ...
        ValueError: it answered 'HTTP/1.1 400 Bad Request', not Kafka
        >>> ours.close(), theirs.close()
        (None, None)
    """
    correlation = 0x6C6D7075  # "lmpu"
    client = b"llmpulse-check"
    header = struct.pack(">hhih", _API_VERSIONS, 0, correlation, len(client)) + client
    connection.settimeout(timeout_s)
    try:
        connection.sendall(struct.pack(">i", len(header)) + header)
        head = _receive(connection, 4)
    except (ConnectionResetError, BrokenPipeError):  # it closed before reading the request
        raise ValueError("it closed the connection without a Kafka answer") from None
    (size,) = struct.unpack(">i", head)
    if not 10 <= size <= 1_000_000:
        raise ValueError(f"it answered {_shown(head + _peek(connection))}, not Kafka")
    body = _receive(connection, size, head)
    got, error, count = struct.unpack_from(">ihi", body)
    if got != correlation or error not in (0, 35) or not 0 < count <= (size - 10) // 6:
        raise ValueError(f"it answered {_shown(head + body)}, not Kafka")


def _receive(connection: socket.socket, n: int, before: bytes = b"") -> bytes:
    data = b""
    while len(data) < n:
        try:
            chunk = connection.recv(n - len(data))
        except TimeoutError:
            raise ValueError(f"connected, but no Kafka answer in {connection.gettimeout():g} s"
                             ) from None
        if not chunk:
            seen = before + data
            raise ValueError("it closed the connection without a Kafka answer"
                             + (f" (after {_shown(seen)})" if seen else ""))
        data += chunk
    return data


def _peek(connection: socket.socket) -> bytes:
    """What else has already arrived (at most 60 bytes), for the message."""
    connection.setblocking(False)
    try:
        return connection.recv(60)
    except OSError:
        return b""


def _shown(data: bytes) -> str:
    """The first line of an answer, as text where it is text."""
    first = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0][:60]
    text = first.decode("ascii", "replace")
    return repr(text) if first and first.isascii() and text.isprintable() \
        else f"{len(data)} bytes ({data[:16].hex()})"


def _host_port(server: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``PLAINTEXT://host:port`` or a bare host (Kafka's
    default port 9092, as librdkafka takes it).

    Example:
        >>> _host_port("kafka"), _host_port("PLAINTEXT://[::1]:9093"), _host_port("::1")
        (('kafka', 9092), ('::1', 9093), ('::1', 9092))
    """
    address = server.rpartition("://")[2]
    host, sep, port = address.rpartition(":")
    if not sep or (host.count(":") and not host.endswith("]")) or not port.isdigit():
        host, port = address, ""  # no port, or a bare IPv6 address
    return host.strip("[]") or "localhost", int(port or 9092)


def configure_logging(level: str) -> None:
    """Log to standard error at ``level`` (a command's ``--log-level``), with times and names."""
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_command(command: Callable[..., Any], prog: str) -> int:
    """Run a (click) command as an entry point: the exit status, never a traceback for an
    ``LlmpulseError``, which is printed as ``PROG: error: MESSAGE`` on standard error.

    Usage errors and ``click.ClickException`` are click's own (one line, status 2 and 1).
    """
    try:
        result = command(prog_name=prog)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except LlmpulseError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0
