"""One decision of what carries each host's work (`bastion.routing.route`), and the layers it
keeps: nothing under bastion/transport/ imports bastion.agent (the cycle is gone)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bastion.errors import UsageError
from bastion.models import Host
from bastion.routing import Route, route
from bastion.transport.names import RUN_TRANSPORTS, TransportName, check_transports

A = TransportName.ASYNCSSH
P = TransportName.PARAMIKO
AG = TransportName.AGENT
PACKAGE = Path(__file__).resolve().parent.parent / "bastion"


@pytest.mark.parametrize(
    ("inventory", "override", "durable", "agent", "expected"),
    [
        ("asyncssh", None, False, False, Route(A, durable=False)),
        ("asyncssh", None, False, True, Route(AG, durable=False)),
        ("asyncssh", None, True, True, Route(A, durable=True)),  # durable links are direct
        ("paramiko", None, False, True, Route(P, durable=False)),  # the agent is asyncssh's
        ("paramiko", None, True, False, Route(P, durable=True)),
        ("mosh", None, False, True, Route(A, durable=True, mosh="first")),
        ("asyncssh", "mosh", False, False, Route(A, durable=True, mosh="first")),
        ("asyncssh", "auto", False, True, Route(A, durable=True, mosh="auto")),
        ("mosh", "paramiko", False, False, Route(P, durable=False)),  # --transport wins
        ("paramiko", "asyncssh", False, True, Route(AG, durable=False)),
    ],
)
def test_route(
    inventory: str, override: str | None, durable: bool, agent: bool, expected: Route
) -> None:
    host = Host(name="node1", address="127.0.0.1", transport=inventory)
    assert route(host, override=override, durable=durable, agent=agent) == expected


def test_unknown_transports_are_refused_before_connecting() -> None:
    with pytest.raises(UsageError, match=r"unknown transport 'ftp' \(available: asyncssh, "):
        check_transports([], "ftp")
    bad = Host(name="node1", address="127.0.0.1", transport="auto")  # --transport only
    with pytest.raises(UsageError, match="host node1: transport 'auto' is not available"):
        check_transports([bad])
    assert "agent" not in RUN_TRANSPORTS  # chosen by the router, never by users


def test_the_transport_package_never_imports_the_agent() -> None:
    offenders = []
    for path in sorted((PACKAGE / "transport").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("bastion.agent")]
    assert offenders == []
