"""Transports carry one command to one host and report its outcome as a `HostResult`.

Only `asyncssh_transport` imports asyncssh and only `paramiko_transport` imports paramiko;
both implement the `Transport` protocol from `base` (and `open_link`, which durable jobs use)
on the shared command-session core, `session`. `names` lists every transport; which one
carries a host is decided by `bastion.routing`. Nothing here imports `bastion.agent`.
"""
