"""The article's second case, done properly: a character-level language model.

Inputs are one-hot characters, targets the next character at every step, softmax cross-entropy.
Two ways to cut the text:
  mode = "windows":  independent windows of `window` characters every `stride` characters, each
                     starting from a zero state, shuffled into minibatches.
  mode = "stateful": every split is one stream; training walks [train] batch_size parallel
                     streams in consecutive chunks of `window` characters, carrying the hidden
                     state from chunk to chunk (truncated BPTT, as min-char-rnn); evaluation
                     carries the state through the whole split.
"""

from __future__ import annotations

import hashlib

import numpy as np

from rnnlab.plugin import ConfigError, Dataset, Demo, Option, RnnlabError, Task

from . import data, figure, metrics
from .corpus import load_corpus
from .generate import generate
from .vocab import Vocabulary

OPTIONS = (
    Option("text", str, "", "the corpus, inline"),
    Option("path", str, "", "a UTF-8 text file, relative to the experiment file"),
    Option(
        "stdlib_modules",
        list,
        [],
        "Python standard-library modules whose source is the "
        'corpus, read from this installation (e.g. ["textwrap", "json.decoder"])',
        item=str,
    ),
    Option("repeat", int, 1, "copies of the text, one after another", gt=0),
    Option(
        "mode",
        str,
        "windows",
        "independent windows, or stateful truncated BPTT",
        choices=("windows", "stateful"),
    ),
    Option("window", int, 25, "characters per window (stateful: per chunk)", gt=0),
    Option("stride", int, 0, "characters between window starts; 0 = window (no overlap)", ge=0),
    Option("train_fraction", float, 0.8, "leading share of the text for training", gt=0, le=1),
    Option(
        "val_fraction", float, 0.1, "next share for validation (test gets the rest)", gt=0, le=1
    ),
    Option(
        "sample_prime",
        str,
        "",
        "text that starts the sample shown after training (default: the corpus's first character)",
    ),
    Option("sample_length", int, 200, "characters of that sample", ge=0),
    Option("sample_temperature", float, 0.0, "its temperature (0: greedy)", ge=0),
    Option("sample_top_k", int, 0, "sample among the k likeliest characters (0: all)", ge=0),
)


class CharTask(Task):
    def build(self, rng: np.random.Generator) -> Dataset:
        o = self.options
        text, origin = load_corpus(o, self.context.base_dir)
        vocab = Vocabulary.of(text)
        prime = o["sample_prime"] or text[0]
        if any(c not in vocab.index for c in prime):
            bad = next(c for c in prime if c not in vocab.index)
            raise ConfigError(
                f"character {bad!r} is not in the corpus's vocabulary: {vocab.shown()}",
                table="task",
                key="sample_prime",
            )
        ids = vocab.encode(text)
        stateful = o["mode"] == "stateful"
        parts = data.segments(
            ids, o["train_fraction"], o["val_fraction"], 2 if stateful else o["window"] + 1
        )
        V = len(vocab)
        if stateful:
            splits = {name: data.stream(part, V) for name, part in parts.items()}
        else:
            stride = o["stride"] or o["window"]
            splits = {
                name: data.windows(part, o["window"], stride, V) for name, part in parts.items()
            }
        saved = {
            "vocabulary": vocab.chars,
            "corpus": {
                **origin,
                "characters": len(text),
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
            },
            "split_characters": {name: len(part) for name, part in parts.items()},
        }
        return Dataset(
            splits,
            input_size=V,
            output_size=V,
            loss="xent",
            target="every",
            meta={"vocab": vocab, "unigram": metrics.unigram(parts["train"], V), "prime": prime},
            saved=saved,
            chunk_length=o["window"] if stateful else 0,
        )

    def metrics(self, model, dataset, split):
        s = dataset.splits[split]
        scores = metrics.model_scores(model, s.x, s.y, dataset.chunk_length)
        scores["unigram_bits_per_char"] = metrics.unigram_bits(dataset.meta["unigram"], s.y)
        return scores

    def demo(self, model, dataset, rng):
        o, prime = self.options, dataset.meta["prime"]
        text = generate(
            model,
            dataset.meta["vocab"],
            prime,
            o["sample_length"],
            o["sample_temperature"],
            o["sample_top_k"],
            rng,
        )
        how = (
            "greedy"
            if o["sample_temperature"] == 0
            else f"temperature {o['sample_temperature']}"
            + (f", top-{o['sample_top_k']}" if o["sample_top_k"] else "")
        )
        return Demo(
            f"sample: {o['sample_length']} characters after {prime!r} ({how})", text=prime + text
        )

    def figure(self, model, dataset, fig):
        """Per-character loss (bits) of a test excerpt, against the unigram baseline."""
        figure.draw(fig, model, dataset)
        return "char_loss"

    def generate(self, model, saved, prime, length, temperature, top_k, rng):
        if "vocabulary" not in saved:
            raise RnnlabError(
                "the run saved no vocabulary (summary.json has no dataset.vocabulary)"
            )
        return generate(
            model, Vocabulary(saved["vocabulary"]), prime, length, temperature, top_k, rng
        )
