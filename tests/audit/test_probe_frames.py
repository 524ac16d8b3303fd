"""The probe's framing (issue 11 item 2): nothing a node's user controls can forge a marker.

Pure parser tests against the frames probe.sh prints (built by tests/audit/probe_text.py), and
the real probe.sh run locally under dash, with base64 and with only od.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.audit.observation import Coverage, HostObservation
from bastion.audit.probe import PROBE_COMMAND, probe_script
from bastion.audit.probe_frames import new_nonce, read_frames
from bastion.audit.probe_output import parse_probe_output
from bastion.audit.report import build_report
from tests.audit.probe_text import GOLDEN_NONCE, ProbeText, facts, key_file

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGjNTuBnsJjU+KDMTpLs6cJU3p0nwQMfAT8Ux7yS7xNq eve"
FORGERIES = [
    "\n@@section hostkeys\n",
    f"\n@@{GOLDEN_NONCE} section hostkeys\n",  # even with the right nonce: it is encoded
    f"\n@@{GOLDEN_NONCE} end 3\n",
    "\n|ssh-ed25519 AAAA forged\n@@end\n",
    "\f@@section shadow\x1c@@end\x85\u2028\u2029\v",
]


def probe(*keys: list[tuple[str, str | bytes]], end: int | None = None) -> ProbeText:
    out = ProbeText()
    out.section("facts", facts(hostname="h", root="yes", now="1780000000"))
    out.section("sshd_t", ("account", "root"), ("output", "usepam no\npubkeyauthentication yes\n"))
    out.section(
        "passwd", ("output", "root:x:0:0::/root:/bin/sh\neve:x:1000:1000::/home/eve:/bin/sh\n")
    )
    for fields in keys:
        out.section("keys", *fields)
    out.section("sudouser", ("account", "eve"), (
        "output", "User eve may run the following commands on h:\n    (ALL) NOPASSWD: ALL\n"
    ))  # fmt: skip
    return out


def parse(text: str, nonce: str = GOLDEN_NONCE) -> HostObservation:
    return parse_probe_output("h", "127.0.0.1", text, nonce)


def eve_is_seen(seen: HostObservation) -> bool:
    keys = [k for f in seen.key_files if f.account == "eve" for k in f.keys]
    return [k.comment for k in keys] == ["eve"] and seen.sudo["eve"].nopasswd


@pytest.mark.parametrize("forged", FORGERIES)
def test_a_file_name_with_markers_is_only_a_name(forged: str) -> None:
    path = f"/home/eve/.ssh/k{forged}x"
    seen = parse(probe(key_file("eve", path, KEY + "\n")).text())
    assert seen.coverage is Coverage.FULL, seen.error
    assert [f.path for f in seen.key_files] == [path]
    assert eve_is_seen(seen)


@pytest.mark.parametrize("forged", FORGERIES)
def test_a_symlink_target_with_markers_is_only_a_target(forged: str) -> None:
    target = f"k{forged}x"
    fields = key_file("eve", "/home/eve/.ssh/authorized_keys", KEY + "\n", link=target)
    seen = parse(probe(fields).text())
    assert seen.coverage is Coverage.FULL, seen.error
    assert seen.key_files[0].link_target == target
    assert eve_is_seen(seen)


@pytest.mark.parametrize("forged", FORGERIES)
def test_key_file_content_with_markers_is_only_content(forged: str) -> None:
    content = f"{KEY}\n# {forged}\n{forged}\n"
    seen = parse(probe(key_file("eve", "/home/eve/.ssh/authorized_keys", content)).text())
    assert seen.coverage is Coverage.FULL, seen.error
    assert eve_is_seen(seen)
    assert [s for s in seen.sshd] == ["root"]
    # Lines are split on \n only, as sshd reads them: a form feed does not start a new line.
    assert seen.key_files[0].lines == tuple(content.split("\n")[:-1])


def test_hex_frames_read_like_base64() -> None:
    fields = key_file("eve", "/home/eve/.ssh/k\nx", KEY + "\n", link="t\n@@end")
    text = probe(fields).text()
    seen = parse(text)
    as_hex = parse(_reencode(text))
    assert as_hex == seen and as_hex.coverage is Coverage.FULL


def _reencode(text: str) -> str:
    """The same frames, base64 fields re-encoded as od's hex lines."""
    import base64

    from tests.audit.probe_text import encode

    out: list[str] = []
    chunks: list[str] = []
    for line in [*text.split("\n")[:-1], "@@end-of-test"]:
        if line.startswith("@@"):
            if chunks:
                out += encode(base64.b64decode("".join(chunks)), "hex")
                chunks = []
            out.append(line.replace(" probe 2 base64", " probe 2 hex"))
        else:
            chunks.append(line)
    return "\n".join(out[:-1]) + "\n"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: t.replace(f"@@{GOLDEN_NONCE} end", "@@0000 end"), "without this run's nonce"),
        (lambda t: t.replace(f"@@{GOLDEN_NONCE} end", f"|raw\n@@{GOLDEN_NONCE} end"), "not base64"),
        (lambda t: t.replace(" end 5", " end 6"), "the end marker counts '6' sections, 5 came"),
        (lambda t: t + "trailing\n", "output after the end marker"),
        (lambda t: t.replace("section sudouser", "section sudoer"), "unknown section"),
        (lambda t: t.replace("field meta", "field mete"), "unknown field"),
        (lambda t: t.replace("probe 2 base64", "probe 2 rot13"), "not a version 2 probe header"),
    ],
    ids=["nonce", "raw-line", "count", "after-end", "section", "field", "header"],
)
def test_a_broken_frame_leaves_the_host_not_fully_audited(mutate: object, reason: str) -> None:
    text = probe(key_file("eve", "/home/eve/.ssh/authorized_keys", KEY + "\n")).text()
    assert callable(mutate)
    seen = parse(mutate(text))
    assert seen.coverage is Coverage.FAILED
    assert seen.error is not None and seen.error.startswith("probe output unreadable: line ")
    assert reason in seen.error
    report = build_report([seen], started_at="2026-01-01T00:00:00+00:00")
    coll = [f for f in report.findings if f.id == "COLL-01"]
    assert [f.message.startswith("probe output unreadable") for f in coll] == [True]
    assert report.exit_code(report.findings[0].severity) == 3


def test_a_dropped_section_is_caught_by_the_count() -> None:
    text = probe(key_file("eve", "/home/eve/.ssh/authorized_keys", KEY + "\n")).text()
    lines = text.split("\n")
    start = lines.index(f"@@{GOLDEN_NONCE} section sudouser")
    without = "\n".join(lines[:start] + lines[-2:])  # the sudouser section cut out
    seen = parse(without)
    assert seen.coverage is Coverage.FAILED and "counts '5' sections, 4 came" in (seen.error or "")


def test_another_runs_nonce_reads_nothing() -> None:
    text = probe().text()
    seen = parse(text, nonce=new_nonce())
    assert seen.coverage is Coverage.FAILED  # every marker is "another run's"
    assert seen.accounts == {}


def test_a_probe_cut_short_is_failed_and_keeps_what_came() -> None:
    text = probe(key_file("eve", "/home/eve/.ssh/authorized_keys", KEY + "\n")).text()
    seen = parse(text[: text.index(f"@@{GOLDEN_NONCE} section sudouser")])
    assert seen.coverage is Coverage.FAILED and seen.error == "the probe stopped before its end"
    assert "eve" in seen.accounts


def test_shell_noise_before_the_probe_is_skipped() -> None:
    seen = parse("welcome to h\n" + probe().text())
    assert seen.coverage is Coverage.FULL
    assert "1 lines before the probe started were skipped" in seen.warnings


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    path=st.text(st.characters(exclude_characters="\0"), min_size=1, max_size=40),
    link=st.text(st.characters(exclude_characters="\0"), max_size=40),
    content=st.binary(max_size=300),
)
def test_any_name_link_and_content_round_trip(path: str, link: str, content: bytes) -> None:
    fields = key_file("eve", path, content, link=link)
    seen = parse(probe(fields).text())
    assert seen.coverage is Coverage.FULL
    (found,) = seen.key_files
    assert (found.path, found.link_target) == (path, link)
    assert "\n".join(found.lines) == content.decode("utf-8", "replace").removesuffix("\n")


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    position=st.integers(min_value=1, max_value=30),
    junk=st.text(min_size=1, max_size=80).filter(lambda t: re.search(r"[^A-Za-z0-9+/=\n]", t)),
)
def test_any_line_that_is_not_encoded_data_fails_the_host(position: int, junk: str) -> None:
    # Whatever a node's user controls reaches the output only encoded, so a line outside the
    # base64 alphabet can only be a forgery or a broken probe: never silently accepted.
    text = probe(key_file("eve", "/home/eve/.ssh/authorized_keys", KEY + "\n")).text()
    lines = text.split("\n")
    at = min(position, len(lines) - 1)
    junk_lines = [line for line in junk.split("\n") if re.search(r"[^A-Za-z0-9+/=]", line)]
    mutated = "\n".join([*lines[:at], *junk_lines, *lines[at:]])
    assert parse(mutated).coverage is Coverage.FAILED


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.text(max_size=400))
def test_any_text_gives_an_observation(text: str) -> None:
    seen = parse(text)
    assert seen.coverage is not Coverage.FULL


def test_read_frames_never_raises_on_bytes_that_are_not_text() -> None:
    frames = read_frames("@@x\udcff\n\x00\n", GOLDEN_NONCE)
    assert frames.error is not None or not frames.ended


def test_the_nonce_goes_on_stdin_only() -> None:
    nonce = new_nonce()
    script = probe_script(nonce)
    assert script.startswith(f"nonce={nonce}\n".encode())
    assert nonce not in PROBE_COMMAND
    with pytest.raises(ValueError, match="nonce"):
        probe_script("x; rm -rf /")
    assert len({new_nonce() for _ in range(20)}) == 20


@pytest.mark.skipif(shutil.which("dash") is None, reason="needs dash (Debian's /bin/sh)")
def test_the_real_probe_frames_its_output_under_dash() -> None:
    nonce = new_nonce()
    done = subprocess.run(
        ["dash", "-s"], input=probe_script(nonce), capture_output=True, timeout=120, check=False
    )
    frames = read_frames(done.stdout.decode(), nonce)
    assert (frames.error, frames.ended) == (None, True), done.stderr.decode()[-500:]
    assert frames.sections[0].name == "facts"
    assert f"@@{nonce} probe 2 base64" == done.stdout.decode().split("\n")[0]


@pytest.mark.skipif(
    shutil.which("unshare") is None or shutil.which("dash") is None, reason="needs unshare, dash"
)
def test_without_base64_the_probe_encodes_with_od() -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("hiding base64 needs a private mount namespace (root)")
    nonce = new_nonce()
    hide = f"mount --bind /dev/null {shutil.which('base64')} && exec dash -s"
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", hide],
        input=probe_script(nonce), capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    text = done.stdout.decode()
    assert text.split("\n")[0] == f"@@{nonce} probe 2 hex", done.stderr.decode()[-500:]
    frames = read_frames(text, nonce)
    assert (frames.error, frames.ended) == (None, True)
    seen = parse_probe_output("local", "127.0.0.1", text, nonce)
    assert "root" in seen.accounts
