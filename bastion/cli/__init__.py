"""The command line: parses options, calls the core, renders, and maps errors to exit codes."""
