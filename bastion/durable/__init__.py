"""Durable remote jobs: a command that runs exactly once and whose output survives link drops.

`wrapper.sh` runs on the node (POSIX sh); `script` builds the commands that call it; `jobs`
drives a job from the bastion over any transport that opens plain connections (`base.Link`).
"""
