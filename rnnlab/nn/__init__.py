"""The numeric model: the stack of recurrent layers and its head, losses, optimizers and
variable lengths (the NumPy reference maths every backend is checked against)."""
