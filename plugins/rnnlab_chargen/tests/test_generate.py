"""Generation: greedy, temperature, top-k, seeding, errors; and the article's sentence end to end
through the command line (`rnnlab run experiments/chargen.toml`, then `rnnlab generate`)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.errors import RnnlabError
from rnnlab.experiment.schema import ModelConfig
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab.testing import reference_backend
from rnnlab_chargen.generate import generate, pick
from rnnlab_chargen.vocab import Vocabulary
from tests.support.chargen import SENTENCE
from tests.support.paths import EXPERIMENTS

EXPERIMENT = EXPERIMENTS / "chargen.toml"
VOCAB = Vocabulary.of("abcdefgh ")


def random_model(seed=0, vocab=VOCAB):
    cfg = ModelConfig(hidden_size=6)
    params = init_params(cfg, Shape(len(vocab), len(vocab)), np.random.default_rng(seed))
    return Model(cfg, reference_backend(), params)


def sample(seed, temperature=1.0, top_k=0, model=None):
    return generate(
        model or random_model(), VOCAB, "ab", 60, temperature, top_k, np.random.default_rng(seed)
    )


def test_sampling_is_repeatable_per_seed():
    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    assert len(sample(1)) == 60 and set(sample(1)) <= set(VOCAB.chars)


def test_greedy_ignores_the_seed_and_follows_the_argmax():
    model = random_model()
    text = sample(1, temperature=0.0, model=model)
    assert text == sample(2, temperature=0.0, model=model)
    assert text == sample(3, temperature=2.0, top_k=1, model=model)  # top-1 is greedy too
    # the first character is the argmax after the prime
    logits = model.outputs(np.eye(len(VOCAB))[VOCAB.encode("ab")][:, None, :], "every")[0]
    assert text[0] == VOCAB.chars[int(np.argmax(logits[-1, 0]))]


def test_top_k_samples_only_the_k_likeliest():
    logits = np.array([0.0, 3.0, 1.0, 2.9, -1.0])
    rng = np.random.default_rng(0)
    picks = {pick(logits, 5.0, 2, rng) for _ in range(300)}
    assert picks == {1, 3}


def test_temperature_sharpens_and_flattens():
    logits = np.log(np.array([0.6, 0.3, 0.1]))
    rng = np.random.default_rng(0)
    counts = {
        t: np.bincount([pick(logits, t, 0, rng) for _ in range(2000)], minlength=3)
        for t in (0.2, 1.0, 5.0)
    }
    assert counts[0.2][0] > counts[1.0][0] > counts[5.0][0]
    assert abs(counts[1.0][0] / 2000 - 0.6) < 0.05  # temperature 1 samples the model


def test_out_of_vocabulary_prime_and_empty_prime_are_clear_errors():
    with pytest.raises(
        RnnlabError,
        match=r"character 'z' of the prime is not in the vocabulary"
        r" of 9 characters: ' ' a b c d e f g h",
    ):
        generate(random_model(), VOCAB, "abz", 5, 0.0, 0, np.random.default_rng(0))
    with pytest.raises(RnnlabError, match="at least one character"):
        generate(random_model(), VOCAB, "", 5, 0.0, 0, np.random.default_rng(0))


@pytest.fixture(scope="module")
def article_run(tmp_path_factory):
    """experiments/chargen.toml trained once, through the command line."""
    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(main, ["run", str(EXPERIMENT), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_article_sentence_is_reproduced_greedily_from_h(article_run):
    result = CliRunner().invoke(
        main,
        [
            "generate",
            article_run["run_dir"],
            "--prime",
            "h",
            "--length",
            str(len(SENTENCE) - 1),
            "--temperature",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == SENTENCE + "\n"
    assert article_run["demo"]["text"].startswith(SENTENCE + "\n" + SENTENCE)
    assert article_run["metrics"]["test"]["accuracy"] == 1.0


@pytest.mark.slow
def test_generate_command_is_seeded_and_names_a_bad_prime(article_run):
    args = [
        "generate",
        article_run["run_dir"],
        "--prime",
        "hello",
        "--length",
        "80",
        "--temperature",
        "50",
        "--top-k",
        "4",
    ]
    first, again, other = (CliRunner().invoke(main, [*args, "--seed", s]) for s in "113")
    assert first.exit_code == 0, first.output
    assert first.stdout == again.stdout != other.stdout
    bad = CliRunner().invoke(main, ["generate", article_run["run_dir"], "--prime", "hi!"])
    assert bad.exit_code == 2
    assert "character '!' of the prime is not in the vocabulary" in bad.output
    assert "N R a d e f h i l m o r s t w" in bad.output


def test_generate_refuses_a_task_that_does_not_generate(tmp_path):
    sine = EXPERIMENTS / "sine.toml"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(sine),
            "--out",
            str(tmp_path),
            "--json",
            "--set",
            "train.epochs=1",
            "--set",
            "task.points=300",
        ],
    )
    assert result.exit_code == 0, result.output
    run_dir = json.loads(result.stdout)["run_dir"]
    result = CliRunner().invoke(main, ["generate", run_dir, "--prime", "h"])
    assert result.exit_code == 2
    assert "task 'sine' does not generate text" in result.output


def test_generate_refuses_a_bidirectional_model(tmp_path):
    """A reverse direction reads a window from its end: it cannot write text left to right."""
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(EXPERIMENT),
            "--out",
            str(tmp_path),
            "--json",
            "--set",
            "task.mode=windows",
            "--set",
            "model.bidirectional=true",
            "--set",
            "train.epochs=1",
        ],
    )
    assert result.exit_code == 0, result.output
    run_dir = json.loads(result.stdout)["run_dir"]
    result = CliRunner().invoke(main, ["generate", run_dir, "--prime", "h"])
    assert result.exit_code == 2
    assert "the model is bidirectional" in result.output
    assert "model.bidirectional = false" in result.output


def test_a_sample_is_printed_as_it_is():
    from rich.console import Console

    from rnnlab.display.terminal import demo_table

    console = Console(record=True, width=80)
    console.print(demo_table({"title": "sample after '['", "text": "x[/b] = [bold]y"}))
    assert console.export_text() == "sample after '['\nx[/b] = [bold]y\n"
