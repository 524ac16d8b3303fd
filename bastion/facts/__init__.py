"""`bastion facts`: what each host is (OS, kernel, CPUs, memory, disks, addresses, runtimes)."""
