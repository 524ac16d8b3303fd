"""Turning the executor's events and results into what a person or a program reads.

The core never renders: only this package (and the CLI) writes to the terminal.
"""
