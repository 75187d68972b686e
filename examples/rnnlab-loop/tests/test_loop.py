from rnnlab.testing import check_backend
from rnnlab_loop import LoopBackend


def test_loop_backend_matches_the_reference():
    check_backend(LoopBackend())
