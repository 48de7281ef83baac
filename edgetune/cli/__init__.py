"""The command-line interface: one module per verb, each calling one library function."""
