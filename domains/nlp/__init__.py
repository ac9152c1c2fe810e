"""NLP: text classification, translation and language models, from a CSV, a text file
or the shipped corpora to a served model that takes raw strings.

The domain's contract (`shared.domain.Domain`). Each task has a TensorFlow-free data
module (read, clean, split: `data` for classify, `pairs` for translate, `corpus` for
lm), which `check` runs before TensorFlow loads, and a task module with the verbs
(`classify`, `translate`, `lm`), imported only when a verb runs.
"""

from __future__ import annotations

import importlib

from domains.nlp.config import NLPConfig
from shared.domain import Domain, Option, SmokeRun, TourLeg, register_domain

# task -> its TensorFlow-free data module (read, clean, split)
DATA_MODULES = {
    "classify": "domains.nlp.data",
    "translate": "domains.nlp.pairs",
    "lm": "domains.nlp.corpus",
}


@register_domain
class NLPDomain(Domain):
    name = "nlp"
    summary = (
        "Text classification, translation and language models: train, evaluate, predict, "
        "explain, export (raw strings in, raw strings out)."
    )
    tasks = ("classify", "translate", "lm")
    config_class = NLPConfig
    data_specs = ("builtin", "csv", "jsonl", "text", "txt", "tfds")
    task_configs = {"translate": "translate", "lm": "lm"}
    strategies = ("auto", "default", "one-device")
    train_shortcuts = {"init_from": "pretrain.init_from"}
    verb_options = {
        "train": (
            Option(
                "--init-from",
                "init_from",
                "path",
                "classify (rnn, bert): start the encoder and its vocabulary from a finished "
                "run of the same model, or from a local KerasHub BERT preset directory",
            ),
        ),
    }
    strategies_note = "the text models train in minutes on one device"
    tour_legs = (
        TourLeg(
            "nlp",
            "bag-of-bigrams classifier on SMS spam, duplicates kept in one split",
            "accuracy",
            0.97,
            config="default",
            quick=("train.epochs=2",),
        ),
    )
    smoke_run = SmokeRun("default", ("train.epochs=2",), resume=("train.epochs=6",))
    compress_methods = {  # trained through shared.training.trainer.fit; the sequence
        "classify": ("prune", "quantize", "distill"),  # models distil per token
        "translate": ("prune", "quantize", "distill"),
        "lm": ("prune", "quantize", "distill"),
    }
    task_module = {
        "classify": "domains.nlp.classify",
        "translate": "domains.nlp.translate",
        "lm": "domains.nlp.lm",
    }
    order = 15
    notebook_run = "sms"

    def check(self, config: NLPConfig) -> None:
        """Read and split the texts (pandas only): a missing column, a single class, a
        translation pair with a missing side, an unreadable file or an `--init-from`
        that is neither a run nor a KerasHub preset is refused before TensorFlow starts."""
        super().check(config)
        importlib.import_module(DATA_MODULES[config.task]).load(config)
        if config.task == "classify":
            from domains.nlp.data import init_source

            init_source(config.pretrain.init_from)

    def load_data(self, config: NLPConfig):
        """The task's data, read and split by its data module: `TextData` (classify),
        `PairData` (translate, grouped by source sentence) or `CorpusData` (lm)."""
        return importlib.import_module(DATA_MODULES[config.task]).load(config)

    def serving_spec(self, run, config):
        return self.task(config).serving_spec(run, config)
