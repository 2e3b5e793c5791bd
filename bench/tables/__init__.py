"""One module per benchmark table after the core seven (see bench/run.py's docstring)."""
