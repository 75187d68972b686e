from rnnlab_loop import LoopBackend

from rnnlab.testing import check_backend


def test_loop_backend_matches_the_reference():
    check_backend(LoopBackend())
