"""The warm connection agent: a per-user daemon that keeps SSH connections open between runs.

``paths`` (where its socket lives, checked), ``protocol`` (the JSON lines it speaks),
``pool`` and ``server`` (the daemon; the only agent modules that import asyncssh),
``lifecycle`` (start, stop, status from the client side), ``client`` (a run's side: the
`AgentTransport` that sends its hosts' commands through the socket). See docs/agent.md.
"""
