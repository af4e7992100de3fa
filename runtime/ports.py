"""Start-up check of every port a process will listen on, before anything starts or prints.

A busy port used to surface as a raw traceback from deep inside a component (or, for the
dashboard, after "Facility Monitor is up" had been printed); now it is one line naming the
port and the flag and variable that move it.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from facility.errors import SettingsError
from runtime.settings.options import Option


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int
    option: Option
    what: str


def check_ports(listens: list[Listen]) -> None:
    """Raise SettingsError for the first port that cannot be bound (0 = off is skipped)."""
    for listen in listens:
        if listen.port == 0:
            continue
        problem = _bind_problem(listen.host, listen.port)
        if problem is not None:
            raise SettingsError(
                listen.option.name,
                f"cannot listen on {listen.host}:{listen.port} for the {listen.what}: {problem}; "
                f"choose another port with --{listen.option.flag} or {listen.option.env}",
            )


def _bind_problem(host: str, port: int) -> str | None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"unknown address ({exc.strerror})"
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "the port is in use by another process"
            return exc.strerror or str(exc)
    return None
