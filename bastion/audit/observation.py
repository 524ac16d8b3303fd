"""What the probe saw on one host, parsed: plain data, no judgement (that is `findings`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bastion.audit.authorized_keys import AuthorizedKey, BadLine
from bastion.audit.sshd_config import SshdSettings
from bastion.audit.sudo_rules import SudoAccess
from bastion.audit.sudoers_json import SudoersGrant


class Coverage(StrEnum):
    """How much of a host the audit saw."""

    FULL = "ok"
    PARTIAL = "partial"
    """Reached, but without root: other users' files, sshd -T or shadow were out of sight."""
    UNREACHABLE = "unreachable"
    FAILED = "failed"
    """Reached, but the probe did not finish (no sudo -n, a crash, a timeout)."""


class PasswordState(StrEnum):
    """The class of a shadow password field; the hash itself never leaves the host."""

    HASH = "HASH"
    """A password hash: the password can be used."""
    LOCKED = "LOCKED"
    """``!`` in front (passwd -l): sshd refuses the account only when UsePAM is no."""
    NOPASSWORD = "NOPASSWORD"
    """``*`` or another non-hash: no password works, keys still do."""
    EMPTY = "EMPTY"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    password: PasswordState = PasswordState.UNKNOWN
    expires_day: int | None = None
    """Shadow field 8: days since the epoch after which the account is expired."""
    groups: tuple[str, ...] = ()

    @property
    def interactive(self) -> bool:
        """Whether the shell gives a shell session (nologin and false do not)."""
        return not self.shell.endswith(("/nologin", "/false")) and bool(self.shell)


@dataclass(frozen=True, slots=True)
class PathStat:
    """A directory on the way from a key file up to /: owner and mode, as sshd checks them."""

    path: str
    owner: str
    mode: int


@dataclass(frozen=True, slots=True)
class KeyFile:
    """One file an AuthorizedKeysFile pattern names for an account, and its keys."""

    account: str
    path: str
    pattern: str
    kind: str
    """``regular file``, ``symbolic link``... (stat %F)."""
    owner: str
    mode: int
    mtime: int
    link_target: str | None = None
    parents: tuple[PathStat, ...] = ()
    keys: tuple[AuthorizedKey, ...] = ()
    bad_lines: tuple[BadLine, ...] = ()
    read_error: str | None = None
    lines: tuple[str, ...] = ()
    """The file's lines as read (public data; `access apply` rewrites from them)."""

    @property
    def is_default_file(self) -> bool:
        """The first, conventional file (what `access apply` manages)."""
        return self.pattern in (".ssh/authorized_keys", "%h/.ssh/authorized_keys")


@dataclass(frozen=True, slots=True)
class HostKey:
    path: str
    owner: str
    mode: int
    algorithm: str
    bits: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """A private key file on the node: where, whose, encrypted or not; never the key."""

    path: str
    owner: str
    encrypted: bool
    fingerprint: str | None
    """Of the public half (None when an encrypted key hides it)."""


@dataclass(frozen=True, slots=True)
class Login:
    """One ``Accepted ...`` line from the host's logs."""

    time: int
    account: str
    method: str
    source: str
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class KubeConfig:
    path: str
    owner: str
    group: str
    mode: int


@dataclass(slots=True)
class HostObservation:
    """Everything collected on one host."""

    host: str
    address: str
    coverage: Coverage
    error: str | None = None
    facts: dict[str, str] = field(default_factory=dict)
    sshd: dict[str, SshdSettings] = field(default_factory=dict)
    """Per account; ``root`` is the baseline used for accounts without an entry."""
    accounts: dict[str, Account] = field(default_factory=dict)
    key_files: list[KeyFile] = field(default_factory=list)
    host_keys: list[HostKey] = field(default_factory=list)
    private_keys: list[PrivateKey] = field(default_factory=list)
    sudo: dict[str, SudoAccess] = field(default_factory=dict)
    sudoers: dict[str, SudoersGrant] = field(default_factory=dict)
    """Per account, from the sudoers policy (cvtsudoers): the grant and the file holding it."""
    kubeconfigs: list[KubeConfig] = field(default_factory=list)
    logins: list[Login] = field(default_factory=list)
    login_source: str = "none"
    warnings: list[str] = field(default_factory=list)
    groups: tuple[str, ...] = ()
    """The inventory groups of the host (for grants and the report)."""

    def settings_for(self, account: str) -> SshdSettings:
        """The effective sshd settings for ``account`` (Match blocks applied when present)."""
        return self.sshd.get(account) or self.sshd.get("root") or SshdSettings()

    @property
    def now(self) -> int:
        """The host's clock (epoch seconds) when probed; 0 when unknown."""
        try:
            return int(self.facts.get("now", "0"))
        except ValueError:
            return 0
