"""The access list loader: every mistake is one line naming the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.audit.declared import AccessListError, load_access_list

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDjBW8OaN9r6qSwlkX1iun4PYn0xfBz9NzJhH4QuwKXE a@b"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version: 2\n", 1, "version must be 1"),
        ("identities: {}\nfrobs: 1\n", 2, "unknown key 'frobs' in the access list"),
        ("identities:\n  a: {keys: [{key: 'ssh-ed25519 xx'}]}\n", 2, "not a public key"),
        ("identities:\n  a: {keys: [{}]}\n", 2, "needs key: or fingerprint:"),
        ("identities:\n  a: {keys: [{fingerprint: MD5:aa}]}\n", 2, "must look like SHA256:"),
        (f"identities:\n  a: {{keys: [{{key: '{KEY}', expires: soon}}]}}\n", 2, "date YYYY-MM-DD"),
        ("roles:\n  ops: [ghost]\n", 2, "unknown identity 'ghost'"),
        ("grants:\n  - {to: ghost, hosts: all, account: root}\n", 2, "unknown identity or role"),
        (f"identities:\n  a: {{keys: [{{key: '{KEY}'}}]}}\ngrants:\n  - {{to: a, hosts: all}}\n",
         4, "a grant needs account:"),
        (f"identities:\n  a: {{keys: [{{key: '{KEY}'}}]}}\ngrants:\n"
         "  - {to: a, hosts: all, account: r, sudo: lots}\n", 4, "sudo must be one of"),
        (f"identities:\n  a: {{keys: [{{key: '{KEY}'}}]}}\ngrants:\n"
         "  - {to: a, hosts: all, account: r, options: 'nope'}\n", 4, "invalid options"),
        ("waivers:\n  - {id: NOPE-1, until: 2030-01-01, reason: x}\n", 2, "unknown finding ID"),
        ("severities: {ACC-04: severe}\n", 1, "unknown severity"),
        ("identities: [\n", 2, "invalid YAML"),
    ],
)  # fmt: skip
def test_errors_name_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "access.yaml"
    path.write_text(text)
    with pytest.raises(AccessListError) as error:
        load_access_list(path)
    assert str(error.value).startswith(f"{path}:{line}: "), str(error.value)
    assert message in str(error.value)


def test_a_valid_list_expands_roles_and_parses_options(tmp_path: Path) -> None:
    path = tmp_path / "access.yaml"
    path.write_text(
        f"version: 1\nidentities:\n  alice: {{kind: person, keys: [{{key: '{KEY}', "
        "expires: 2027-01-31}]}\nroles:\n  admins: [alice]\ngrants:\n"
        "  - {to: admins, hosts: all, account: root, options: 'from=\"10.0.0.0/8\",restrict',"
        " sudo: all}\nrevoked: ['SHA256:old']\n"
    )
    access = load_access_list(path)
    [grant] = access.grants
    assert grant.members == ("alice",) and grant.sudo == "all"
    assert grant.options.restrict and grant.options.source == ["10.0.0.0/8"]
    assert access.revoked == frozenset({"SHA256:old"})
    assert access.identity_of() == {access.keys["alice"][0].fingerprint: "alice"}
