"""Plugin machinery: the plugin manager, plugin failures reported as the plugin's,
plugins' own state in checkpoints, and what a plugin prepares (compiles) while the core waits."""
