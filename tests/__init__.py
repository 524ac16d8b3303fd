"""bastion tests: units, in-process SSH servers, and the real-sshd lab."""
