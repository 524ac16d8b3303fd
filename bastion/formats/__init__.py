"""Inventories users already have, read as bastion's own: Ansible INI and YAML, plain host
lists, ClusterShell ``groups.d`` YAML. Each reader builds the located tree of a bastion YAML
inventory (with the source's line numbers), which `bastion.inventory` then validates as usual.
"""
