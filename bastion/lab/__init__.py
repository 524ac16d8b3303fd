"""The built-in lab: real OpenSSH `sshd` nodes on loopback addresses to try bastion safely."""

# Here rather than in the manager so that the CLI can show them without importing it.
DEFAULT_NODES = 3
DEFAULT_SUBNET = "127.0.1"
