"""Ad-hoc hosts (``-H user@host:port`` without an inventory) and host lists: pure parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.adhoc import HostSpec, ad_hoc_hosts, host_list_items, parse_host_spec
from bastion.errors import SelectionError
from bastion.inventory import load_inventory, open_inventory
from bastion.select import Selection, select_hosts


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("web1", HostSpec(None, "web1", None)),
        ("root@web1", HostSpec("root", "web1", None)),
        ("web1:2222", HostSpec(None, "web1", 2222)),
        ("ops@127.0.0.5:2222", HostSpec("ops", "127.0.0.5", 2222)),
        ("10.0.0.[1-5]", HostSpec(None, "10.0.0.[1-5]", None)),
        ("root@web[01-20].example:22", HostSpec("root", "web[01-20].example", 22)),
        ("[::1]:2222", HostSpec(None, "::1", 2222)),
        ("root@[::1]", HostSpec("root", "::1", None)),
        ("::1", HostSpec(None, "::1", None)),
        ("fe80::1%eth0", HostSpec(None, "fe80::1%eth0", None)),
        ("svc$@host", HostSpec("svc$", "host", None)),
    ],
)
def test_parse_host_spec(text: str, spec: HostSpec) -> None:
    assert parse_host_spec(text) == spec


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("-oProxyCommand=x", "cannot start with '-'"),
        ("root@-x", "cannot start with '-'"),
        ("web1:0", "port '0' is not a number from 1 to 65535"),
        ("web1:99999", "port '99999'"),
        ("web1:ssh", "port 'ssh'"),
        ("a b", "expected [user@]host[:port]"),
        ("web\x1b[2J", "expected [user@]host[:port]"),
        ("bad user@web1", "user 'bad user' is not a login name"),
        ("@web1", "user '' is not a login name"),
        ("300.1.1.1", "not an IPv4 address"),
        ("[::1]x", "expected [address]:port"),
    ],
)
def test_parse_host_spec_refuses_what_ssh_would_not_take(text: str, why: str) -> None:
    with pytest.raises(SelectionError, match=why.replace("[", r"\[")):
        parse_host_spec(text)


def test_ranges_expand_and_names_keep_what_was_typed() -> None:
    hosts = ad_hoc_hosts(["ops@10.0.0.[1-3]:2222", "web[01-02].example", "[::1]:2200"])
    assert [(h.name, h.address, h.port, h.user) for h in hosts] == [
        ("ops@10.0.0.1:2222", "10.0.0.1", 2222, "ops"),
        ("ops@10.0.0.2:2222", "10.0.0.2", 2222, "ops"),
        ("ops@10.0.0.3:2222", "10.0.0.3", 2222, "ops"),
        ("web01.example", "web01.example", 22, None),
        ("web02.example", "web02.example", 22, None),
        ("[::1]:2200", "::1", 2200, None),
    ]


def test_host_list_lines_comments_and_errors() -> None:
    text = "# fleet\nweb1\n\n  root@web2:2222  # the odd one\nweb[3-4]\n"
    assert host_list_items(text, source="hosts.txt") == ["web1", "root@web2:2222", "web[3-4]"]
    with pytest.raises(SelectionError, match=r"^hosts.txt:2: bad host 'web1:x'"):
        host_list_items("ok\nweb1:x\n", source="hosts.txt")
    with pytest.raises(SelectionError, match=r"hosts\.txt:1: one host per line"):
        host_list_items("web1 web2\n", source="hosts.txt")


def test_without_an_inventory_every_item_is_an_outside_host(tmp_path: Path) -> None:
    absent = open_inventory(None, cwd=tmp_path)
    assert absent.missing is not None
    chosen = select_hosts(absent, Selection(hosts=("node7,root@node8", "10.0.0.[1-2]")))
    assert [host.name for host in chosen] == ["node7", "root@node8", "10.0.0.1", "10.0.0.2"]
    for selection in (Selection(all=True), Selection(groups=("web",)), Selection(selector="a")):
        with pytest.raises(SelectionError, match="no inventory"):
            select_hosts(absent, selection)
    excluded = select_hosts(absent, Selection(hosts=("10.0.0.[1-3]",), exclude=("10.0.0.2",)))
    assert [host.name for host in excluded] == ["10.0.0.1", "10.0.0.3"]


def test_inventory_names_and_outside_hosts_mix(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("hosts:\n  node[1-3]: {address: '192.0.2.[1-3]'}\n")
    inventory = load_inventory(path)
    chosen = select_hosts(inventory, Selection(hosts=("node2,ops@db1.example,node1",)))
    assert [(host.name, host.address) for host in chosen] == [
        ("node1", "192.0.2.1"),
        ("node2", "192.0.2.2"),
        ("ops@db1.example", "db1.example"),
    ]
    # A bare word that is not in the inventory stays a typo, not a new host.
    with pytest.raises(SelectionError, match=r"unknown host 'nod1' .*user@host, host:port"):
        select_hosts(inventory, Selection(hosts=("nod1",)))
