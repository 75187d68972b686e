"""rnnlab's own test suite: core tests by area; each built-in plugin's tests live beside it."""
