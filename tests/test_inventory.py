"""Loading, validating and finding inventories. Nothing here connects to any host."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from bastion.errors import InventoryError
from bastion.inventory import Inventory, load_inventory, resolve_inventory_path
from bastion.models import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TRANSPORT

REPO = Path(__file__).resolve().parent.parent


def write(directory: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(directory: Path, text: str) -> Inventory:
    return load_inventory(write(directory, text))


def load_error(directory: Path, text: str) -> str:
    """The rendered error, with the file path replaced by 'inv' to keep expectations short."""
    path = write(directory, text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert caught.value.source == str(path)
    return str(caught.value).replace(str(path), "inv", 1)


FULL = """
defaults:
  user: ops
  port: 2222
  connect_timeout: 5
  identity_file: keys/ops
  known_hosts: ~/lab_known_hosts
  jump: gateway

hosts:
  gateway:
    address: gw.example.org
    port: 22
  node1:
    address: 127.0.1.1
    labels: {role: control-plane, tier: 1, gpu: true, version: 1.10, zone: "01"}
    vars: {kube: {version: "1.30"}, disks: [sda, sdb]}
  node[2-3]:
    address: 127.0.1.[2-3]
    user: admin
    transport: paramiko
    labels: {role: worker}
  web[01-02]:
  db:
    jump: ops@bastion.example.org:2200

groups:
  masters: [node1]
  workers: {selector: "role=worker"}
  everything: ["*"]
  web: ["web[01-02]", db]
  nobody: {selector: "role=db"}

vars:
  cluster: training
"""


@pytest.fixture
def full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Inventory:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return load(tmp_path, FULL)


def test_hosts_keep_file_order_and_ranges_expand(full: Inventory) -> None:
    assert list(full.hosts) == ["gateway", "node1", "node2", "node3", "web01", "web02", "db"]
    assert [host.address for host in full.hosts.values()] == [
        "gw.example.org",
        "127.0.1.1",
        "127.0.1.2",
        "127.0.1.3",
        "web01",
        "web02",
        "db",
    ]


def test_defaults_are_merged_and_host_settings_win(full: Inventory, tmp_path: Path) -> None:
    node2 = full.hosts["node2"]
    assert (node2.user, node2.port, node2.transport) == ("admin", 2222, "paramiko")
    assert node2.connect_timeout == 5.0
    assert node2.identity_file == str(tmp_path / "keys" / "ops")
    assert node2.known_hosts == str(tmp_path / "home" / "lab_known_hosts")
    web = full.hosts["web01"]
    assert (web.user, web.port, web.transport) == ("ops", 2222, DEFAULT_TRANSPORT)
    assert full.hosts["gateway"].port == 22


def test_jumps(full: Inventory) -> None:
    assert full.hosts["node1"].jump == "gateway"
    assert full.hosts["db"].jump == "ops@bastion.example.org:2200"
    # The default jump host itself is reached directly.
    assert full.hosts["gateway"].jump is None


def test_labels_are_text_as_written(full: Inventory) -> None:
    assert full.hosts["node1"].labels == {
        "role": "control-plane",
        "tier": "1",
        "gpu": "true",
        "version": "1.10",
        "zone": "01",
    }
    assert full.hosts["db"].labels == {}


def test_vars(full: Inventory) -> None:
    assert full.vars == {"cluster": "training"}
    assert full.hosts["node1"].vars == {"kube": {"version": "1.30"}, "disks": ["sda", "sdb"]}
    assert full.hosts["node2"].vars == {}


def test_groups_resolve_in_inventory_order(full: Inventory) -> None:
    assert full.groups == {
        "masters": ("node1",),
        "workers": ("node2", "node3"),
        "everything": ("gateway", "node1", "node2", "node3", "web01", "web02", "db"),
        "web": ("web01", "web02", "db"),
        "nobody": (),
    }
    assert full.hosts["node2"].groups == ("workers", "everything")
    assert full.hosts["gateway"].groups == ("everything",)


def test_digest_and_path(full: Inventory, tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    assert full.path == path
    assert full.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_inventory_is_read_only(full: Inventory) -> None:
    with pytest.raises(TypeError):
        full.hosts["x"] = full.hosts["db"]  # type: ignore[index]
    with pytest.raises(TypeError):
        full.hosts["node1"].labels["role"] = "x"  # type: ignore[index]


def test_minimal_inventory(tmp_path: Path) -> None:
    inventory = load(tmp_path, "hosts:\n  node1:\n")
    host = inventory.hosts["node1"]
    assert (host.address, host.port, host.user, host.jump) == ("node1", 22, None, None)
    assert host.connect_timeout == DEFAULT_CONNECT_TIMEOUT
    assert inventory.groups == {}
    assert inventory.vars == {}


def test_yaml_merge_keys_and_anchors(tmp_path: Path) -> None:
    inventory = load(
        tmp_path,
        """
        hosts:
          node1: &worker
            user: ops
            labels: {role: worker}
          node2:
            <<: *worker
            user: admin
          node3: *worker
        """,
    )
    assert [(h.user, h.labels["role"]) for h in inventory.hosts.values()] == [
        ("ops", "worker"),
        ("admin", "worker"),
        ("ops", "worker"),
    ]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_bytes(b"\xef\xbb\xbfhosts:\n  node1:\n")
    assert list(load_inventory(path).hosts) == ["node1"]


def test_bundled_inventories_load() -> None:
    for name in ("example", "vagrant"):
        inventory = load_inventory(REPO / "inventories" / f"{name}.yaml")
        assert list(inventory.hosts) == ["node1", "node2", "node3"]
        assert inventory.groups == {"masters": ("node1",), "workers": ("node2", "node3")}
        assert inventory.hosts["node1"].labels["role"] == "control-plane"
        assert {inventory.hosts[n].labels["role"] for n in ("node2", "node3")} == {"worker"}


def test_example_inventory_uses_documentation_addresses_only() -> None:
    inventory = load_inventory(REPO / "inventories" / "example.yaml")
    assert all(host.address.startswith("192.0.2.") for host in inventory.hosts.values())


ALLOWED_TOP = "(allowed: defaults, hosts, groups, vars)"
ALLOWED_DEFAULTS = (
    "(allowed: user, port, identity_file, known_hosts, jump, connect_timeout, transport)"
)
ALLOWED_HOST = (
    "(allowed: address, user, port, identity_file, known_hosts, jump, connect_timeout, "
    "transport, labels, vars)"
)
NAME_RULE = "consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # YAML itself
        (
            "hosts:\n  node1: {\n",
            "inv:3: invalid YAML: while parsing a flow node, expected the node content, "
            "but found '<stream end>'",
        ),
        (
            "hosts:\n  node1:\n address: x\n",
            "inv:3: invalid YAML: while parsing a block mapping, expected <block end>, "
            "but found '<block mapping start>'",
        ),
        (
            "hosts:\n  a: b: c\n",
            "inv:2: invalid YAML: mapping values are not allowed here",
        ),
        (
            "hosts:\n\tnode1:\n",
            "inv:2: invalid YAML: while scanning for the next token, "
            "found character '\\t' that cannot start any token",
        ),
        (
            "hosts: {node1: !secret x}\n",
            "inv:1: unknown tag '!secret' (only the YAML 1.2 core types: "
            "!!str, !!int, !!float, !!bool, !!null, !!map, !!seq)",
        ),
        (
            "hosts: {a: 1}\n---\nhosts: {b: 1}\n",
            "inv:2: invalid YAML: expected a single document in the stream, "
            "but found another document",
        ),
        ("a: &x [*x]\n", "inv:1: a YAML alias refers to itself"),
        ("hosts:\n  [a]: x\n", "inv:2: a key must be a non-empty name"),
        ("hosts:\n  ~: x\n", "inv:2: a key must be a non-empty name"),
        (
            "hosts:\n  node1:\n    <<: [1]\n",
            "inv:3: '<<' needs a mapping or a list of mappings to merge",
        ),
        # top level
        ("", "inv: the inventory is empty: expected a mapping with a 'hosts:' key"),
        (
            "# only a comment\n",
            "inv: the inventory is empty: expected a mapping with a 'hosts:' key",
        ),
        (
            "- node1\n- node2\n",
            "inv:1: the inventory must be a mapping with a 'hosts:' key, got a list",
        ),
        # (a bare `node1` is a host list: tests/test_inventory_formats.py)
        ("'node1'\n", "inv:1: the inventory must be a mapping with a 'hosts:' key, got 'node1'"),
        (
            "hosts:\n  node1:\nhots: {}\n",
            f"inv:3: unknown key 'hots' at top level; did you mean 'hosts'? {ALLOWED_TOP}",
        ),
        ("hosts:\n  node1:\nhosts:\n  node2:\n", "inv:3: duplicate key 'hosts' (first at line 1)"),
        ("defaults: {}\n", "inv:1: missing 'hosts:': the inventory must list at least one host"),
        ("hosts:\n", "inv:1: 'hosts:' is empty: list at least one host"),
        ("vars: {}\nhosts: {}\n", "inv:2: 'hosts:' is empty: list at least one host"),
        ("hosts: [node1]\n", "inv:1: hosts must be a mapping, got a list"),
        ("hosts: {n: }\nvars: [1]\n", "inv:2: vars must be a mapping, got a list"),
        ("hosts: {n: }\ndefaults: x\n", "inv:2: defaults must be a mapping, got 'x'"),
        # defaults
        (
            "defaults:\n  user: ops\n  prot: 22\nhosts: {n: }\n",
            f"inv:3: unknown key 'prot' in defaults; did you mean 'port'? {ALLOWED_DEFAULTS}",
        ),
        (
            "defaults:\n  labels: {a: b}\nhosts: {n: }\n",
            f"inv:2: unknown key 'labels' in defaults {ALLOWED_DEFAULTS}",
        ),
        # hosts
        (
            "hosts:\n  node1:\n    address: x\n    adress: y\n",
            f"inv:4: unknown key 'adress' in host 'node1'; did you mean 'address'? {ALLOWED_HOST}",
        ),
        ("hosts:\n  node1: 127.0.1.1\n", "inv:2: host 'node1' must be a mapping, got '127.0.1.1'"),
        ("hosts:\n  node1: [a]\n", "inv:2: host 'node1' must be a mapping, got a list"),
        (
            "hosts:\n  node1:\n  node2:\n  node1:\n",
            "inv:4: duplicate key 'node1' (first at line 2)",
        ),
        (
            "hosts:\n  node[1-3]:\n  node4:\n  node[3-5]:\n",
            "inv:4: duplicate host 'node3' (already defined by 'node[1-3]' at line 2)",
        ),
        (
            "hosts:\n  node02:\n  node[01-03]:\n",
            "inv:3: duplicate host 'node02' (already defined by 'node02' at line 2)",
        ),
        (
            "hosts:\n  node[3-1]:\n",
            "inv:2: bad host pattern 'node[3-1]': range '3-1' goes backwards",
        ),
        ("hosts:\n  node[1-3:\n", "inv:2: bad host pattern 'node[1-3': '[' is never closed"),
        (
            "hosts:\n  'bad name':\n",
            "inv:2: host name 'bad name' is invalid: use letters, digits, '.', '-', '_' or ':'",
        ),
        (
            "hosts:\n  web*:\n",
            "inv:2: host name 'web*' is invalid: use letters, digits, '.', '-', '_' or ':'",
        ),
        (
            "hosts:\n  node[1-3]:\n    address: 127.0.1.1\n",
            "inv:3: 3 hosts would share address '127.0.1.1': give a range of 3 addresses "
            "(such as 'host[1-3]') or none",
        ),
        (
            "hosts:\n  node[1-3]:\n    address: 127.0.1.[1-2]\n",
            "inv:3: address '127.0.1.[1-2]' gives 2 addresses for the 3 hosts of 'node[1-3]'",
        ),
        (
            "hosts:\n  node[1-3]:\n    address: 127.0.1.[3-1]\n",
            "inv:3: bad host pattern '127.0.1.[3-1]': range '3-1' goes backwards",
        ),
        (
            "hosts:\n  n:\n    address: ''\n",
            "inv:3: address must be a non-empty string without spaces, got ''",
        ),
        (
            "hosts:\n  n:\n    address: 10\n",
            "inv:3: address must be a non-empty string without spaces, got 10",
        ),
        (
            "hosts:\n  n:\n    user: a b\n",
            "inv:3: user must be a non-empty string without spaces, got 'a b'",
        ),
        ("hosts:\n  n:\n    user:\n", "inv:3: user has no value (remove it to use the default)"),
        # ports
        ("hosts:\n  n:\n    port: 0\n", "inv:3: port must be an integer from 1 to 65535, got 0"),
        (
            "hosts:\n  n:\n    port: 70000\n",
            "inv:3: port must be an integer from 1 to 65535, got 70000",
        ),
        (
            "hosts:\n  n:\n    port: '22'\n",
            "inv:3: port must be an integer from 1 to 65535, got '22'",
        ),
        (
            "hosts:\n  n:\n    port: true\n",
            "inv:3: port must be an integer from 1 to 65535, got true",
        ),
        (
            "hosts:\n  n:\n    port: 22.0\n",
            "inv:3: port must be an integer from 1 to 65535, got 22.0",
        ),
        (
            "hosts:\n  n:\n    port: [22]\n",
            "inv:3: port must be an integer from 1 to 65535, got a list",
        ),
        (
            "defaults: {port: -1}\nhosts: {n: }\n",
            "inv:1: port must be an integer from 1 to 65535, got -1",
        ),
        # timeouts and transports
        (
            "hosts:\n  n:\n    connect_timeout: 0\n",
            "inv:3: connect_timeout must be a positive number of seconds, got 0",
        ),
        (
            "hosts:\n  n:\n    connect_timeout: '5'\n",
            "inv:3: connect_timeout must be a positive number of seconds, got '5'",
        ),
        (
            "hosts:\n  n:\n    connect_timeout: .inf\n",
            "inv:3: connect_timeout must be a positive number of seconds, got .inf",
        ),
        (
            "hosts:\n  n:\n    connect_timeout: false\n",
            "inv:3: connect_timeout must be a positive number of seconds, got false",
        ),
        (
            "hosts:\n  n:\n    transport: ssh\n",
            "inv:3: transport must be one of asyncssh, paramiko, mosh, got 'ssh'",
        ),
        # labels
        ("hosts:\n  n:\n    labels: [a]\n", "inv:3: labels must be a mapping, got a list"),
        (
            "hosts:\n  n:\n    labels:\n      a b: c\n",
            f"inv:4: label key 'a b': name part must {NAME_RULE} (as in Kubernetes)",
        ),
        (
            "hosts:\n  n:\n    labels:\n      '!a': c\n",
            f"inv:4: label key '!a': name part must {NAME_RULE} (as in Kubernetes)",
        ),
        (
            "hosts:\n  n:\n    labels:\n      role: a,b\n",
            f"inv:4: label 'role' has value 'a,b', which must be empty, or {NAME_RULE} "
            "(as in Kubernetes)",
        ),
        (
            "hosts:\n  n:\n    labels:\n      role: 'x=y'\n",
            f"inv:4: label 'role' has value 'x=y', which must be empty, or {NAME_RULE} "
            "(as in Kubernetes)",
        ),
        (
            "hosts:\n  n:\n    labels:\n      role: [a]\n",
            "inv:4: label 'role' must have a text or number value, got a list",
        ),
        # jumps
        (
            "hosts:\n  n:\n    jump: gatway\n",
            "inv:3: jump 'gatway' is neither an inventory host nor a [user@]address[:port] "
            "(an outside host needs a dotted name, a user@ or a :port)",
        ),
        (
            "hosts:\n  n:\n    jump: gw.example.org:0\n",
            "inv:3: jump 'gw.example.org:0' is neither an inventory host nor a "
            "[user@]address[:port] (an outside host needs a dotted name, a user@ or a :port)",
        ),
        (
            "hosts:\n  n:\n    jump: '@gw.example.org'\n",
            "inv:3: jump '@gw.example.org' is neither an inventory host nor a "
            "[user@]address[:port] (an outside host needs a dotted name, a user@ or a :port)",
        ),
        ("hosts:\n  n:\n    jump: n\n", "inv:3: jump loop: n -> n"),
        (
            "hosts:\n  a:\n    jump: b\n  b:\n    jump: a\n",
            "inv:3: jump loop: a -> b -> a",
        ),
        (
            "defaults:\n  jump: a\nhosts:\n  a:\n    jump: b\n  b:\n",
            "inv:5: jump loop: a -> b -> a",
        ),
        # groups
        (
            "hosts: {node1: }\ngroups:\n  workers: [node1, node9]\n",
            "inv:3: group 'workers' names unknown host 'node9' (inventory has node1)",
        ),
        (
            # In a flow mapping `{node[1-3]: }` would be YAML syntax: ranges go in block style.
            "hosts:\n  node[1-3]:\ngroups:\n  workers:\n    - node[2-4]\n",
            "inv:5: group 'workers' names unknown host 'node4' (inventory has node[1-3])",
        ),
        (
            "hosts: {node1: }\ngroups:\n  gpu: ['gpu*']\n",
            "inv:3: group 'gpu' has pattern 'gpu*' that matches no host (inventory has node1)",
        ),
        (
            "hosts: {node1: }\ngroups:\n  g: ['node[2-1]']\n",
            "inv:3: group 'g': bad host pattern 'node[2-1]': range '2-1' goes backwards",
        ),
        (
            "hosts: {node1: }\ngroups:\n  g:\n    - [node1]\n",
            "inv:4: group 'g': each item must be a host name or pattern, got a list",
        ),
        (
            "hosts: {node1: }\ngroups:\n  g:\n",
            "inv:3: group 'g' must be a list of host names or patterns, "
            'or {selector: "k=v,..."}, got null',
        ),
        (
            "hosts: {node1: }\ngroups:\n  g: node1\n",
            "inv:3: group 'g' must be a list of host names or patterns, "
            "or {selector: \"k=v,...\"}, got 'node1'",
        ),
        (
            "hosts: {node1: }\ngroups:\n  g: {selctor: a}\n",
            "inv:3: unknown key 'selctor' in group 'g'; did you mean 'selector'? "
            "(allowed: selector)",
        ),
        ("hosts: {node1: }\ngroups:\n  g: {}\n", "inv:3: group 'g' needs 'selector: \"k=v,...\"'"),
        (
            "hosts: {node1: }\ngroups:\n  g:\n    selector: 'role in (a'\n",
            "inv:4: group 'g': bad selector 'role in (a': "
            "found 'end of string', expected: ',' or ')'",
        ),
        (
            "hosts: {node1: }\ngroups:\n  g:\n    selector: 3\n",
            "inv:4: selector must be a non-empty string, got 3",
        ),
        (
            "hosts: {node1: }\ngroups:\n  'a b': [node1]\n",
            "inv:3: group name 'a b' is invalid: use letters, digits, '.', '-', '_' or ':'",
        ),
        ("hosts: {node1: }\ngroups: [node1]\n", "inv:2: groups must be a mapping, got a list"),
    ],
)
def test_validation_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    assert load_error(tmp_path, text) == message


def test_a_group_may_share_a_host_name(tmp_path: Path) -> None:
    inventory = load(tmp_path, "hosts: {db: , db2: }\ngroups:\n  db: [db, db2]\n")
    assert inventory.groups["db"] == ("db", "db2")


def test_an_empty_group_list_is_allowed(tmp_path: Path) -> None:
    assert load(tmp_path, "hosts: {n: }\ngroups:\n  later: []\n").groups == {"later": ()}


def test_hosts_may_share_an_address_when_written_one_by_one(tmp_path: Path) -> None:
    inventory = load(
        tmp_path,
        """
        hosts:
          a: {address: 127.0.1.1, port: 2201}
          b: {address: 127.0.1.1, port: 2202}
          c: {address: 127.0.1.1}
        """,
    )
    assert {host.address for host in inventory.hosts.values()} == {"127.0.1.1"}


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_bytes(b"hosts:\n  caf\xe9:\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value) == f"{path}: not UTF-8 text (bad byte at offset 12)"


def test_control_characters(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_bytes(b"hosts:\n  a\x01:\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value) == (
        f"{path}:2: invalid YAML: control character U+0001 at column 4 is not allowed "
        '(inside double quotes, write it as "\\x01")'
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value) == f"{path}: inventory not found"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path)
    message = "cannot read inventory: a directory with no inventory file"
    assert str(caught.value) == f"{tmp_path}: {message}"


# --- finding the inventory -------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BASTION_INVENTORY", raising=False)
    monkeypatch.setenv("BASTION_LAB_DIR", str(tmp_path / "lab"))
    (tmp_path / "inventories").mkdir()
    write(tmp_path / "inventories", "hosts: {n: }\n", "qual.yaml")
    return tmp_path


def test_default_is_inventory_yaml_in_cwd(workdir: Path) -> None:
    path = write(workdir, "hosts: {n: }\n")
    assert resolve_inventory_path(None, cwd=workdir) == path


def test_default_is_relative_to_the_process_cwd(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(workdir, "hosts: {n: }\n")
    monkeypatch.chdir(workdir)
    assert resolve_inventory_path(None) == Path("inventory.yaml")
    assert resolve_inventory_path("qual") == Path("inventories/qual.yaml")


def test_missing_default(workdir: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        resolve_inventory_path(None, cwd=workdir)
    assert str(caught.value) == (
        f"inventory not found (looked for {workdir / 'inventory.yaml'}); "
        "give -i PATH or NAME, or set $BASTION_INVENTORY"
    )


def test_environment_variable(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(workdir, "hosts: {n: }\n")
    monkeypatch.setenv("BASTION_INVENTORY", "qual")
    assert resolve_inventory_path(None, cwd=workdir) == workdir / "inventories" / "qual.yaml"
    # The flag wins over the environment.
    assert resolve_inventory_path("inventory.yaml", cwd=workdir) == workdir / "inventory.yaml"


def test_environment_variable_naming_nothing(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_INVENTORY", "prod")
    with pytest.raises(InventoryError) as caught:
        resolve_inventory_path(None, cwd=workdir)
    assert str(caught.value) == (
        f"$BASTION_INVENTORY: inventory not found "
        f"(looked for {workdir / 'inventories' / 'prod.yaml'}, {workdir / 'prod'})"
    )


def test_empty_environment_variable_is_unset(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(workdir, "hosts: {n: }\n")
    monkeypatch.setenv("BASTION_INVENTORY", "")
    assert resolve_inventory_path(None, cwd=workdir) == path


def test_lab(workdir: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        resolve_inventory_path("lab", cwd=workdir)
    lab = workdir / "lab" / "inventory.yaml"
    assert str(caught.value) == (
        f"-i: lab inventory not found (looked for {lab}); run `bastion lab up` first"
    )
    lab.parent.mkdir()
    write(lab.parent, "hosts: {node1: }\n")
    assert resolve_inventory_path("lab", cwd=workdir) == lab


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("qual", "inventories/qual.yaml"),
        ("inventories/qual.yaml", "inventories/qual.yaml"),
        ("prod", "prod"),  # a bare name with no inventories/NAME.yaml is a path
        ("site.yml", "site.yml"),
    ],
)
def test_names_and_paths(workdir: Path, given: str, expected: str) -> None:
    write(workdir, "hosts: {n: }\n", "prod")
    write(workdir, "hosts: {n: }\n", "site.yml")
    assert resolve_inventory_path(given, cwd=workdir) == workdir / expected


def test_absolute_path(workdir: Path) -> None:
    path = workdir / "inventories" / "qual.yaml"
    assert resolve_inventory_path(str(path), cwd=Path("/nonexistent")) == path


def test_home_is_expanded(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(workdir))
    assert (
        resolve_inventory_path("~/inventories/qual.yaml") == workdir / "inventories" / "qual.yaml"
    )


@pytest.mark.parametrize(
    ("given", "looked_for"),
    [
        ("staging", ["inventories/staging.yaml", "staging"]),
        ("staging.yaml", ["staging.yaml"]),
        ("envs/staging", ["envs/staging"]),
    ],
)
def test_not_found_names_what_was_looked_for(
    workdir: Path, given: str, looked_for: list[str]
) -> None:
    with pytest.raises(InventoryError) as caught:
        resolve_inventory_path(given, cwd=workdir)
    looked = ", ".join(str(workdir / item) for item in looked_for)
    assert str(caught.value) == f"-i: inventory not found (looked for {looked})"
