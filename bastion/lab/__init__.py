"""The built-in lab: real OpenSSH `sshd` nodes on loopback addresses to try bastion safely."""
