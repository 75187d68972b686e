"""An experiment: the schema of its file, reading it (a file, a dict, or the run directory that
recorded it), ``--set`` overrides, validation, and a task's data files."""
