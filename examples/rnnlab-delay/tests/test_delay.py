import pytest

from rnnlab.plugin import ConfigError
from rnnlab.testing import check_task
from rnnlab_delay import register_tasks

[DELAY] = register_tasks()


def test_delay_task_conforms():
    check_task(DELAY)


def test_no_delay_and_few_sequences():
    check_task(DELAY, {"delay": 0, "length": 5, "sequences": 50})


def test_delay_must_be_shorter_than_the_sequence():
    with pytest.raises(ConfigError, match="must be less than length"):
        check_task(DELAY, {"delay": 20, "length": 20})
