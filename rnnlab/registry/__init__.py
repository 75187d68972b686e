"""Plugin machinery: the plugin manager, plugin failures reported as the plugin's, and
plugins' own state in checkpoints."""
