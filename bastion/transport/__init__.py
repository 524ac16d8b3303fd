"""Transports carry one command to one host and report its outcome as a `HostResult`.

Only `asyncssh_transport` imports asyncssh; later transports (paramiko, mosh) live beside it
and implement the same `Transport` protocol from `base`.
"""
