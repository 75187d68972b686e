"""The run directory as a store: its files, the writer's lock, whether a run still lives, the
records read back, and the checkpoint's file format."""
