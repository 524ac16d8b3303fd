"""Transports carry one command to one host and report its outcome as a `HostResult`.

Only `asyncssh_transport` imports asyncssh and only `paramiko_transport` imports paramiko;
both implement the `Transport` protocol from `base` (and `open_link`, which durable jobs use).
"""
