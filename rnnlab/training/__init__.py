"""Training: a run's session, the loop, stateful streams, diagnostics, stopping on signals,
the run from start to finish, and comparing backends."""
