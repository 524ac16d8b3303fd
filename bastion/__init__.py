"""bastion: a parallel multi-host bastion toolkit.

Reads a node inventory, fans commands out to many hosts at once over SSH, and reports
which host said what.
"""

__version__ = "0.1.0"
