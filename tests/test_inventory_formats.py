"""Inventories users already have: Ansible INI/YAML (ansible-inventory is the oracle), host
lists, ClusterShell groups.d (ClusterShell's nodeset is the oracle), and `inventory convert`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bastion.errors import InventoryError
from bastion.formats.ansible_inventory import CONSUMED as CONSUMED_ANSIBLE_VARS
from bastion.formats.ansible_ranges import PatternError, expand, split_port
from bastion.formats.ssh_args import SshArgsProblem, jump_from_ssh_args
from bastion.inventory import Inventory, load_inventory, load_inventory_as

DATA = Path(__file__).parent / "data" / "inventories"
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"


def ansible_list(path: Path, tmp_path: Path) -> dict[str, object]:
    """``ansible-inventory --list``: the live oracle (reads the file, contacts nothing)."""
    if not ANSIBLE_INVENTORY.exists():
        pytest.skip("ansible-core is not installed (pip install -e '.[test]')")
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible"), "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        [str(ANSIBLE_INVENTORY), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # no group_vars/ of the current directory (Ansible's playbook stage)
        timeout=120,
        check=True,
    )
    listed: dict[str, object] = json.loads(result.stdout)
    return listed


def ansible_groups(listed: dict[str, object]) -> dict[str, set[str]]:
    """Each group's hosts, its children's included (what ``-g GROUP`` selects)."""
    groups = {name: body for name, body in listed.items() if name != "_meta"}

    def members(name: str) -> set[str]:
        body = groups.get(name, {})
        assert isinstance(body, dict)
        found = set(body.get("hosts", []))
        for child in body.get("children", []):
            found |= members(child)
        return found

    return {name: members(name) for name in groups}


def compare_with_ansible(path: Path, tmp_path: Path) -> Inventory:
    listed = ansible_list(path, tmp_path)
    inventory = load_inventory(path)
    groups = ansible_groups(listed)
    assert set(inventory.hosts) == groups["all"]
    expected_groups = {name: hosts for name, hosts in groups.items() if name != "all"}
    # ansible-inventory --list leaves out empty groups; bastion keeps them (empty).
    ours = {name: set(hosts) for name, hosts in inventory.groups.items()}
    assert {name: hosts for name, hosts in ours.items() if hosts} == {
        name: hosts for name, hosts in expected_groups.items() if hosts
    }
    meta = listed["_meta"]
    assert isinstance(meta, dict)
    hostvars = meta["hostvars"]
    for name, host in inventory.hosts.items():
        ansible = hostvars.get(name, {})
        assert host.address == ansible.get("ansible_host", name), name
        assert host.port == int(ansible.get("ansible_port", 22)), name
        assert host.user == ansible.get("ansible_user"), name
        own = {key: value for key, value in ansible.items() if key not in CONSUMED_ANSIBLE_VARS}
        assert dict(host.vars) == own, name
    return inventory


@pytest.mark.parametrize(
    "name",
    ["kubespray.ini", "kubespray-hosts.yaml", "precedence.ini", "kubespray-dir/inventory.ini"],
)
def test_ansible_inventories_read_as_ansible_inventory_lists_them(
    name: str, tmp_path: Path
) -> None:
    compare_with_ansible(DATA / name, tmp_path)


def test_kubespray_ini_details() -> None:
    kind, inventory, _ = load_inventory_as(DATA / "kubespray.ini")
    assert kind == "ansible-ini"
    assert inventory.groups["kube_control_plane"] == ("node1", "node2", "node3")
    assert len(inventory.groups["kube_node"]) == 23  # node01..node20 and worker-a..c
    assert inventory.groups["calico_rr"] == ()
    worker = inventory.hosts["worker-b.k8s.example.org"]
    assert (worker.port, worker.user) == (2200, "ops")
    assert worker.identity_file == str(Path("~/.ssh/workers").expanduser())
    assert worker.jump == "jump@198.51.100.7"
    assert inventory.hosts["node3"].vars["ip"] == "10.0.0.13"
    assert inventory.hosts["bastion"].jump is None  # outside k8s_cluster
    assert inventory.hosts["bastion"].groups == ("ungrouped",)


def test_ansible_connection_paramiko_is_the_paramiko_transport(tmp_path: Path) -> None:
    path = tmp_path / "inventory.ini"
    path.write_text("[web]\nw1 ansible_connection=paramiko\nw2 ansible_connection=ssh\n")
    inventory = load_inventory(path)
    assert [host.transport for host in inventory.hosts.values()] == ["paramiko", "asyncssh"]


def test_kubespray_yaml_jump_and_ports() -> None:
    kind, inventory, _ = load_inventory_as(DATA / "kubespray-hosts.yaml")
    assert kind == "ansible-yaml"
    edge = inventory.hosts["edge02.example.org"]
    # The host's own ansible_user wins over k8s_cluster's, which wins over all's.
    assert (edge.port, edge.user, edge.jump) == (2222, "edge", "admin@gw.example.org:2022")
    assert inventory.hosts["node1"].user == "kube"
    assert inventory.hosts["node1"].vars["ntp_servers"] == [
        "0.pool.example.org",
        "1.pool.example.org",
    ]


def test_group_vars_and_host_vars_directories() -> None:
    inventory = load_inventory(DATA / "kubespray-dir" / "inventory.ini")
    node1, node4 = inventory.hosts["node1"], inventory.hosts["node4"]
    assert (node1.user, node1.jump) == ("admin", "ops@gw.example.org")
    assert node1.vars["cluster_name"] == "cluster.local"
    assert node1.vars["kube_version"] == "v1.30.4"  # .hidden.yml is skipped, as Ansible does
    assert (node4.port, node4.vars["node_labels"]) == (2204, {"disk": "ssd"})


def test_inventory_directory_with_one_inventory_file(tmp_path: Path) -> None:
    """``-i inventory/mycluster`` as kubespray's docs write it: the one inventory inside."""
    directory = DATA / "kubespray-dir"
    assert (
        load_inventory(directory).hosts.keys()
        == load_inventory(directory / "inventory.ini").hosts.keys()
    )
    (tmp_path / "a.ini").write_text("[x]\nx1\n")
    (tmp_path / "b.yaml").write_text("all:\n")
    (tmp_path / "README.md").write_text("ignored, as Ansible ignores it\n")
    with pytest.raises(InventoryError, match=r"a directory with several files \(a.ini, b.yaml\)"):
        load_inventory(tmp_path)


def test_vars_file_errors_name_the_vars_file(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "web.yml").write_text("x: 1\nansible_port: http\n")
    (tmp_path / "inventory.ini").write_text("[web]\nw1\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "inventory.ini")
    assert str(caught.value) == (
        f"{tmp_path / 'group_vars' / 'web.yml'}:2: ansible_port must be a port from 1 to 65535, "
        "got 'http'"
    )
    (tmp_path / "group_vars" / "web.yml").write_text("secret: !vault |\n  $ANSIBLE_VAULT;1.1\n")
    with pytest.raises(InventoryError, match=r"web.yml:1: unknown tag '!vault'"):
        load_inventory(tmp_path / "inventory.ini")


# --- errors name the Ansible file's line -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[web]\nweb1 port\n", "inv:2: expected key=value host variable, got 'port'"),
        ("[web:vars]\nnope\n[web]\nw\n", "inv:2: expected key=value, got 'nope'"),
        ("[web:nonsense]\nw\n", "inv:1: section [web:nonsense] has unknown type 'nonsense'"),
        ("[a:children]\nb\n", "inv:2: section [a:children] names undefined group 'b'"),
        ("[x:vars]\nk=v\n", "inv:1: section [x:vars] is for a group that is not defined"),
        ("[web]\nw[1:3:0]\n", "inv:2: host range [1:3:0]: the step must be a positive integer"),
        ("[web]\nw[01:5]\n", "inv:2: host range [01:5] must have begin and end of the same length"),
        ("[web]\nw[1:999999]x[1:999999]\n", "inv:2: host pattern expands to more than 100,000"),
        (
            "[web]\nw ansible_port=http\n",
            "inv:2: port must be an integer from 1 to 65535, got 'http'",
        ),
        (
            "[web]\nw ansible_ssh_common_args='-J a.example.org,b.example.org'\n",
            "inv:2: ansible_ssh_common_args: ProxyJump 'a.example.org,b.example.org' has several",
        ),
        (
            "[web]\nw \"ansible_ssh_common_args=-o ProxyCommand='nc %h %p'\"\n",
            "inv:2: ansible_ssh_common_args: ProxyCommand 'nc %h %p' is not 'ssh -W %h:%p HOST'",
        ),
        ("[web]\nw 'unclosed\n", "inv:2: cannot parse host line: No closing quotation"),
        (
            "[local]\nlocalhost ansible_connection=local\n",
            "inv:2: host 'localhost': ansible_connection=local cannot be followed",
        ),
        ("all:\n  chilren:\n    web:\n", "inv:2: unknown key 'chilren' in group 'all'"),
        (
            "all:\n  hosts:\n    w[1:2]:\n      ansible_port: [1]\n",
            "inv:4: port must be an integer",
        ),
    ],
)
def test_ansible_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "inv"
    path.write_text(text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value).startswith(f"{path}:{message.removeprefix('inv:')}")


# --- pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "hosts"),
    [
        ("node[01:03]", ["node01", "node02", "node03"]),
        ("node[1:10:4]", ["node1", "node5", "node9"]),
        ("r[a:c]", ["ra", "rb", "rc"]),
        ("[:2]x", ["0x", "1x", "2x"]),
        ("r[1:2]-n[1:2]", ["r1-n1", "r1-n2", "r2-n1", "r2-n2"]),
        ("plain", ["plain"]),
    ],
)
def test_ranges_as_ansible_expands_them(pattern: str, hosts: list[str]) -> None:
    assert expand(pattern) == hosts


def test_range_oracle(tmp_path: Path) -> None:
    """Ansible's own expand_hostname_range on the same patterns."""
    pytest.importorskip("ansible")
    from ansible.plugins.inventory import expand_hostname_range

    for pattern in ("n[01:12:5]", "[a:Z]", "r[1:2]-n[08:10]", "x[9:11]y"):
        assert expand(pattern) == expand_hostname_range(pattern), pattern


@pytest.mark.parametrize(
    ("pattern", "split"),
    [
        ("host:2222", ("host", 2222)),
        ("node[01:20]:2222", ("node[01:20]", 2222)),
        ("node[01:20]", ("node[01:20]", None)),
        ("[2001:db8::1]:22", ("2001:db8::1", 22)),
        ("2001:db8::1", ("2001:db8::1", None)),
    ],
)
def test_split_port(pattern: str, split: tuple[str, int | None]) -> None:
    assert split_port(pattern) == split


def test_bad_port_in_pattern() -> None:
    with pytest.raises(PatternError):
        split_port("host:99999")


@pytest.mark.parametrize(
    ("args", "jump"),
    [
        ("-J ops@gw.example.org:2022", "ops@gw.example.org:2022"),
        ("-Jgw.example.org", "gw.example.org"),
        ("-o ProxyJump=gw.example.org", "gw.example.org"),
        ("-oProxyJump=gw.example.org", "gw.example.org"),
        ("-o 'proxyjump gw.example.org'", "gw.example.org"),
        ("-o StrictHostKeyChecking=no", None),
        ("-o ProxyJump=none", None),
        ("-o 'ProxyCommand=ssh -W %h:%p -q hop@gw.example.org'", "hop@gw.example.org"),
        ('-o ProxyCommand="ssh -o X=y -W %h:%p -p 2 -l u gw.example.org"', "u@gw.example.org:2"),
        ("-o 'ProxyCommand=ssh -W [%h]:%p -p 2 2001:db8::1'", "[2001:db8::1]:2"),
    ],
)
def test_jump_from_ssh_args(args: str, jump: str | None) -> None:
    assert jump_from_ssh_args(args) == jump


def test_jump_matches_ssh_G(tmp_path: Path) -> None:
    """OpenSSH's own reading of the same arguments (``ssh -G`` contacts nothing)."""
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client")
    args = "-o StrictHostKeyChecking=no -J ops@gw.example.org:2022"
    config = tmp_path / "empty_config"
    config.write_text("")
    shown = subprocess.run(
        ["ssh", "-F", str(config), "-G", *args.split(), "target.example.org"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    proxyjump = next(
        line.split(" ", 1)[1] for line in shown.splitlines() if line.startswith("proxyjump ")
    )
    assert jump_from_ssh_args(args) == proxyjump


def test_bad_ssh_args() -> None:
    with pytest.raises(SshArgsProblem):
        jump_from_ssh_args("-J")


# --- host lists and ClusterShell ---------------------------------------------------------


def test_host_list(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_text(
        "# one host per line, as pssh -h reads them\n"
        "web1.example.org\n"
        "ops@web2.example.org:2222   # a comment\n"
        "\n"
        "node[1-3].example.org\n"
        "web1.example.org:2200\n"
    )
    kind, inventory, _ = load_inventory_as(path)
    assert kind == "host-list"
    assert list(inventory.hosts) == [
        "web1.example.org",
        "web2.example.org:2222",
        "node1.example.org",
        "node2.example.org",
        "node3.example.org",
        "web1.example.org:2200",
    ]
    web2 = inventory.hosts["web2.example.org:2222"]
    assert (web2.address, web2.port, web2.user) == ("web2.example.org", 2222, "ops")


def test_host_list_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_text("a.example.org\nb.example.org\na.example.org\n")
    with pytest.raises(
        InventoryError, match=r"hosts.txt:3: duplicate host 'a.example.org' \(first at line 1\)"
    ):
        load_inventory(path)


CLUSH_GROUPS = """\
local:
  compute: 'node[01-10]'
  gpu: 'node[09-10]'
  cpu: '@compute!@gpu'
  login: 'login[1-2],@gpu'
racks:
  r1: 'node[01-05]'
"""


def test_clustershell_groups(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSH_GROUPS)
    kind, inventory, _ = load_inventory_as(path)
    assert kind == "clustershell"
    assert inventory.groups["cpu"] == tuple(f"node{n:02d}" for n in range(1, 9))
    assert inventory.groups["login"] == ("node09", "node10", "login1", "login2")
    assert inventory.groups["racks:r1"] == tuple(f"node{n:02d}" for n in range(1, 6))


def test_clustershell_oracle(tmp_path: Path) -> None:
    """ClusterShell's own nodeset, reading the same groups.d file."""
    nodeset = shutil.which("nodeset")
    if nodeset is None:
        pytest.skip("ClusterShell's nodeset is not installed")
    groups_d = tmp_path / "groups.d"
    groups_d.mkdir()
    (groups_d / "cluster.yaml").write_text(CLUSH_GROUPS)
    conf = tmp_path / "groups.conf"
    conf.write_text(f"[Main]\ndefault: local\nautodir: {groups_d}\n")
    inventory = load_inventory(groups_d / "cluster.yaml")
    for group in ("compute", "gpu", "cpu", "login"):
        listed = subprocess.run(
            [nodeset, "--groupsconf", str(conf), "-e", "-S", "\n", f"@{group}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert set(inventory.groups[group]) == set(listed), group


# --- detection and convert ---------------------------------------------------------------


def test_bastion_yaml_is_still_bastion(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("hosts:\n  node1: {address: 192.0.2.1}\ngroups:\n  g: [node1]\n")
    kind, _, _ = load_inventory_as(path)
    assert kind == "bastion"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("host:\n  node1: 192.0.2.1\n", "unknown key 'host' at top level; did you mean 'hosts'?"),
        ("hosts: {n1: }\ngroup:\n  web: n1\n", "unknown key 'group' at top level; did you mean"),
        (
            "hots:\n  node1:\n    vars: {}\n",
            "unknown key 'hots' at top level; did you mean 'hosts'?",
        ),
    ],
)
def test_typos_of_bastion_keys_are_not_other_formats(
    tmp_path: Path, text: str, message: str
) -> None:
    """A mapping of mappings of text is a ClusterShell file, groups of vars an Ansible one,
    unless a top-level key is close to one of bastion's: then it is bastion's typo."""
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError, match=re.escape(message)):
        load_inventory(path)


def test_ini_without_sections(tmp_path: Path) -> None:
    path = tmp_path / "inventory"
    path.write_text("a.example.org ansible_port=2200\nb.example.org ansible_user=ops\n")
    kind, inventory, _ = load_inventory_as(path)
    assert kind == "ansible-ini" and inventory.hosts["a.example.org"].port == 2200


@pytest.mark.parametrize(
    "name",
    ["kubespray.ini", "kubespray-hosts.yaml", "precedence.ini", "kubespray-dir/inventory.ini"],
)
def test_convert_round_trips(name: str, tmp_path: Path) -> None:
    out = tmp_path / "converted.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "inventory",
            "convert",
            "-i",
            str(DATA / name),
            "-O",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    original = load_inventory(DATA / name)
    kind, converted, _ = load_inventory_as(out)
    assert kind == "bastion"
    assert converted.groups == original.groups
    for host_name, host in original.hosts.items():
        again = converted.hosts[host_name]
        assert (again.address, again.port, again.user, again.jump, dict(again.vars)) == (
            host.address,
            host.port,
            host.user,
            host.jump,
            dict(host.vars),
        )


# --- properties (fixed, small budget) ----------------------------------------------------

_ini_pieces = st.sampled_from(
    [
        "[web]",
        "[web:vars]",
        "[web:children]",
        "[all:vars]",
        "[x:y]",
        "\n",
        " ",
        "w1",
        "node[01:03]",
        "h:22",
        "k=v",
        "ansible_port=22",
        "ansible_port=x",
        "ansible_host=192.0.2.1",
        "'",
        '"',
        "#",
        ";",
        "=",
        "[1:",
        "]",
        "web",
        "ansible_ssh_common_args='-J a.example.org'",
        "-o",
        "[a:c]",
    ]
)
_ini_texts = st.lists(_ini_pieces, max_size=30).map("".join)
_BUDGET = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_BUDGET
@given(_ini_texts)
def test_any_inventory_text_loads_or_gives_one_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    """Ansible-INI-like text, whatever it is detected as: an inventory or one error line."""
    path = tmp_path_factory.mktemp("inv") / "inventory"
    path.write_text(text)
    try:
        load_inventory(path)
    except InventoryError as exc:
        assert "\n" not in str(exc)


@_BUDGET
@given(st.text(alphabet="ab01:[]-,", max_size=16))
def test_ranges_expand_as_ansible_or_refuse(pattern: str) -> None:
    """Where Ansible's expand_hostname_range gives hosts, ours gives the same ones."""
    ansible_plugins = pytest.importorskip("ansible.plugins.inventory")
    try:
        ours: list[str] | None = expand(pattern)
    except PatternError:
        ours = None
    try:
        theirs: list[str] | None = ansible_plugins.expand_hostname_range(pattern)
    except Exception:
        theirs = None
    if ours is not None and theirs is not None and "[" in pattern:
        assert ours == theirs


# --- a real connection through an Ansible inventory (in-process servers on loopback) -----


def test_ansible_inventory_connects_with_its_port_key_and_jump(tmp_path: Path) -> None:
    """The settings an Ansible INI inventory gives are the ones bastion connects with: the
    target's ``ansible_port`` and key, through the ProxyJump of ``ansible_ssh_common_args``."""
    from tests.sshserver import SSHServerHarness, write_known_hosts

    net = os.environ.get("BASTION_TEST_NET", "1")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    with SSHServerHarness(tmp_path / "client") as harness:
        jump = harness.start_server(f"127.{net}.7.1", allow_forwarding=True)
        target = harness.start_server(f"127.{net}.7.2")
        write_known_hosts(home / ".ssh" / "known_hosts", [jump, target])
        shutil.copy(harness.identity_file, home / ".ssh" / "id_ed25519")
        (home / ".ssh" / "id_ed25519").chmod(0o600)
        inventory = tmp_path / "inventory.ini"
        inventory.write_text(
            "[web]\n"
            f"web1 ansible_host={target.address} ansible_port={target.port} "
            f"ansible_ssh_private_key_file={harness.identity_file}\n"
            "[web:vars]\n"
            f"ansible_ssh_common_args='-o StrictHostKeyChecking=no -J {jump.address}:{jump.port}'\n"
        )
        env = {**os.environ, "HOME": str(home), "BASTION_HISTORY_FILE": str(tmp_path / "h.jsonl")}
        env.pop("SSH_AUTH_SOCK", None)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bastion",
                "run",
                "-i",
                str(inventory),
                "-g",
                "web",
                "--no-agent",
                "-o",
                "json",
                "echo",
                "reached",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        record = json.loads(result.stdout.splitlines()[0])
        assert (record["host"], record["status"], record["stdout"]) == ("web1", "ok", "reached\n")
        assert jump.forwards == 1
        assert len(target.commands) == 1 and target.commands[0].endswith("\necho reached")


@_BUDGET
@example('-o "ProxyCommand=ssh \'x"')  # an unclosed quote inside the ProxyCommand
@given(
    st.text(
        alphabet=st.sampled_from(list("-oJ=ProxyJumpCommand ssh-W%h:p'\"a.b@,\\ ")), max_size=60
    )
)
def test_ssh_args_give_a_jump_or_one_problem(text: str) -> None:
    try:
        jump = jump_from_ssh_args(text)
    except SshArgsProblem as exc:
        assert "\n" not in str(exc)
    else:
        assert jump is None or isinstance(jump, str)
