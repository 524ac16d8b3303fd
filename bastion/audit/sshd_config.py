"""The effective sshd settings, as ``sshd -T`` prints them (never the config file's text)."""

from __future__ import annotations

from dataclasses import dataclass, field

# sshd -T prints the alias for the default; the rules compare the canonical name.
_ALIASES = {"without-password": "prohibit-password"}


@dataclass(frozen=True, slots=True)
class SshdSettings:
    """Keyword (lower case) -> every value line sshd printed for it, in order."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def get(self, keyword: str, default: str = "") -> str:
        """The first value of ``keyword`` (lower case), normalised; ``default`` when absent."""
        found = self.values.get(keyword)
        if not found:
            return default
        return _ALIASES.get(found[0], found[0])

    def is_yes(self, keyword: str) -> bool:
        return self.get(keyword) == "yes"

    def all(self, keyword: str) -> list[str]:
        """Every value line of a repeatable keyword (``hostkey``, ``allowusers``)."""
        return list(self.values.get(keyword, []))

    def number(self, keyword: str, default: int = 0) -> int:
        try:
            return int(self.get(keyword))
        except ValueError:
            return default

    def __bool__(self) -> bool:
        return bool(self.values)


def parse_sshd_t(text: str) -> SshdSettings:
    """Parse ``sshd -T`` output: ``keyword value...`` per line."""
    values: dict[str, list[str]] = {}
    for line in text.split("\n"):
        parts = line.strip().split(None, 1)
        if not parts:
            continue
        values.setdefault(parts[0].lower(), []).append(parts[1] if len(parts) > 1 else "")
    return SshdSettings(values)


def password_path_open(settings: SshdSettings) -> bool:
    """Whether a password can log in: PasswordAuthentication, or keyboard-interactive via PAM.

    An ``authenticationmethods`` list in which every method chain needs ``publickey`` closes
    it: a password alone is then not enough.
    """
    open_ = settings.is_yes("passwordauthentication") or (
        settings.is_yes("kbdinteractiveauthentication") and settings.is_yes("usepam")
    )
    methods = settings.get("authenticationmethods", "any")
    if methods != "any" and all("publickey" in chain for chain in methods.split()):
        return False
    return open_
