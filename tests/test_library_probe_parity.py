"""asyncssh under `lean_asyncssh_import` negotiates exactly what a normal import negotiates.

The lean import skips asyncssh's liboqs compiler probe and its X.509 support; a run of
asyncssh's own CI never uses that configuration, so this test holds it to the normal one:
the same key exchange, cipher, MAC, compression and host-key algorithm lists, but for the
``x509v3-*`` host-key names, and the same post-quantum key exchange availability.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

LISTS = """
import json
import asyncssh
from asyncssh import compression, encryption, kex, mac, public_key
print(json.dumps({
    "kex": [a.decode() for a in kex.get_default_kex_algs()],
    "encryption": [a.decode() for a in encryption.get_default_encryption_algs()],
    "mac": [a.decode() for a in mac.get_default_mac_algs()],
    "compression": [a.decode() for a in compression.get_default_compression_algs()],
    "public_key": [a.decode() for a in public_key.get_default_public_key_algs()],
    "certificate": [a.decode() for a in public_key.get_default_certificate_algs()],
    "x509": [a.decode() for a in public_key.get_default_x509_certificate_algs()],
}))
"""


def algorithms(lean: bool) -> dict[str, list[str]]:
    prefix = (
        "from bastion.transport.library_probe import lean_asyncssh_import\n"
        "with lean_asyncssh_import():\n    import asyncssh\n"
        if lean
        else ""
    )
    done = subprocess.run(
        [sys.executable, "-c", prefix + LISTS],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_lean_import_negotiates_the_same_algorithms() -> None:
    normal, lean = algorithms(lean=False), algorithms(lean=True)
    for kind in ("kex", "encryption", "mac", "compression", "certificate"):
        assert lean[kind] == normal[kind], kind
    without_x509 = [alg for alg in normal["public_key"] if not alg.startswith("x509v3-")]
    assert lean["public_key"] == without_x509
    assert lean["x509"] == []
    assert lean["kex"], "no key exchange at all"
