"""`bastion cluster`: a kubeadm cluster bootstrapped, inspected, backed up and reset.

The pure parts live here (which host is the control plane, the playbook variables, parsing
`kubectl get nodes -o json`); the CLI (`bastion.cli.cluster_cmd`) runs the shipped playbooks
through the playbook engine and draws the tables.
"""
