"""``bastion copy`` and ``bastion fetch``: what to move, and how, on each host.

`sources` plans the local side once (files, checksums), `template` renders per-host remote
paths, `remote_state` is the one-round-trip size and checksum pass, `copy` and `fetch` are the
per-host procedures over a `RemoteFiles`, and `work` adapts them to the executor.
"""
