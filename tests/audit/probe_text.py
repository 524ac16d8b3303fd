"""Probe output as probe.sh frames it, built in tests (see bastion/audit/probe_frames.py)."""

from __future__ import annotations

import base64

GOLDEN_NONCE = "0123456789abcdef0123456789abcdef"
"""The nonce of the stored probe outputs (tests/data/audit/probe/*.out)."""

FieldValue = str | bytes


def encode(data: bytes, encoding: str = "base64") -> list[str]:
    """The lines ``base64`` (76 columns) or ``od -An -v -tx1`` would print for ``data``."""
    if encoding == "hex":
        return ["".join(f" {b:02x}" for b in data[i : i + 16]) for i in range(0, len(data), 16)]
    text = base64.b64encode(data).decode()
    return [text[i : i + 76] for i in range(0, len(text), 76)]


class ProbeText:
    """Sections and fields in order; `text` adds the counted end marker."""

    def __init__(self, nonce: str = GOLDEN_NONCE, encoding: str = "base64") -> None:
        self.nonce = nonce
        self.encoding = encoding
        self.lines = [f"@@{nonce} probe 2 {encoding}"]
        self.sections = 0

    def mark(self, text: str) -> ProbeText:
        self.lines.append(f"@@{self.nonce} {text}")
        return self

    def section(self, name: str, *fields: tuple[str, FieldValue]) -> ProbeText:
        self.sections += 1
        self.mark(f"section {name}")
        for field_name, value in fields:
            self.field(field_name, value)
        return self

    def field(self, name: str, value: FieldValue) -> ProbeText:
        data = value.encode() if isinstance(value, str) else value
        self.mark(f"field {name}")
        self.lines += encode(data, self.encoding)
        return self

    def text(self, end: int | None = None) -> str:
        """The whole output, ending with ``end COUNT`` (the true count unless ``end`` is given)."""
        count = self.sections if end is None else end
        return "\n".join([*self.lines, f"@@{self.nonce} end {count}"]) + "\n"


def facts(**values: str) -> tuple[str, str]:
    """The facts field: NUL-separated ``name=value``."""
    return ("facts", "".join(f"{k}={v}\0" for k, v in values.items()))


def key_file(
    user: str,
    path: str,
    content: FieldValue | None,
    *,
    pattern: str = ".ssh/authorized_keys",
    stat: str = "regular file|{user}|{user}|600|1700000000|100",
    dirs: tuple[str, ...] = (),
    link: str | None = None,
    readerror: str | None = None,
) -> list[tuple[str, FieldValue]]:
    """The fields of one ``keys`` section."""
    fields: list[tuple[str, FieldValue]] = [
        ("meta", f"{user}\0{pattern}\0{path}\0{stat.format(user=user)}\n"),
    ]
    if link is not None:
        fields.append(("link", link + "\n"))
    fields.append(("dirs", "".join(d + "\0" for d in dirs)))
    if readerror is not None:
        fields.append(("readerror", readerror))
    elif content is not None:
        fields.append(("content", content))
    return fields


def _body(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def framed(legacy: str) -> str:
    """Frame probe output written in the compact legacy spelling, as probe.sh prints it now.

    The legacy spelling (``@@section NAME ARG``, ``@@fact``, ``@@stat``, ``|data``...) is the
    format-1 layout, kept as a readable way to write test cases; nothing in bastion reads it.
    """
    old = legacy
    secs = [["preamble", "", [], []]]
    for line in old.split("\n"):
        if line.startswith("|"):
            secs[-1][3].append(line[1:])
        elif line.startswith("@@section "):
            name, _, arg = line[len("@@section ") :].partition(" ")
            secs.append([name, arg, [], []])
        elif line == "@@end":
            secs.append(["end", "", [], []])
        elif line.startswith("@@"):
            m, _, v = line[2:].partition(" ")
            secs[-1][2].append((m, v))
    facts = {}
    sudo_absent = False
    for s in secs:
        for m, v in s[2]:
            if m == "fact":
                k, _, r = v.partition(" ")
                if k == "sudo":
                    sudo_absent = True
                else:
                    facts[k] = r
    out = ProbeText()
    ended = any(s[0] == "end" for s in secs)
    for name, arg, markers, lines in secs:
        warns = [("warn", v) for m, v in markers if m == "warn"]
        if name == "preamble" or name == "end":
            continue
        if name == "facts":
            out.section("facts", ("facts", "".join(f"{k}={v}\0" for k, v in facts.items())), *warns)
        elif name == "sshd_t":
            out.section("sshd_t", ("account", arg), ("output", _body(lines)), *warns)
        elif name in ("passwd", "group", "shadow"):
            f = [("output", _body(lines))] if lines or name != "shadow" else []
            out.section(name, *f, *warns)
        elif name == "keys":
            user, _, path = arg.partition(" ")
            d = dict(markers)
            fields = [("meta", f"{user}\0{d.get('pattern', '')}\0{path}\0{d.get('stat', '')}\n")]
            if "link" in d:
                fields.append(("link", d["link"] + "\n"))
            fields.append(("dirs", "".join(v + "\0" for m, v in markers if m == "dir")))
            if "readerror" in d:
                fields.append(("readerror", d["readerror"]))
            else:
                fields.append(("content", _body(lines)))
            out.section("keys", *fields, *warns)
        elif name == "hostkeys":
            fields = []
            for m, v in markers:
                if m == "hostkey":
                    p, o, mode, listing = ([*v.split("|", 3), "", "", ""])[:4]
                    fields.append(("hostkey", f"{p}\0{o}|{mode}\0{listing}\0"))
            out.section("hostkeys", *fields, *warns)
        elif name == "privatekeys":
            data = ""
            for m, v in markers:
                if m == "privkey":
                    p, o, e, listing = ([*v.split("|", 3), "", "", ""])[:4]
                    data += f"{p}\0{o}\0{e}\0{listing}\0"
            out.section("privatekeys", ("keys", data), *warns)
        elif name == "sudo":
            f = [("absent", "yes")] if sudo_absent else []
            out.section("sudo", *f, *warns)
        elif name == "sudouser":
            out.section("sudouser", ("account", arg), ("output", _body(lines)), *warns)
        elif name == "sudoers":
            out.section("sudoers", ("file", arg), ("output", _body(lines)), *warns)
        elif name == "kube":
            fields = []
            for m, v in markers:
                if m == "kubeconfig":
                    p, rest = v.split("|", 1)
                    fields.append(("kubeconfig", f"{p}\0{rest}\0"))
            out.section("kube", *fields, *warns)
        elif name == "logins":
            d = dict(markers)
            fields = [("source", d.get("source", "none"))]
            if lines or d.get("source", "none") != "none":
                fields.append(("output", _body(lines)))
            out.section("logins", *fields, *warns)
        else:
            raise SystemExit(f"unknown section {name}")
    text = out.text()
    if not ended:
        text = text[: text.rindex("@@")]
    return text
