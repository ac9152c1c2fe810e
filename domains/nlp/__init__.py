"""NLP: text classification from a CSV (or the shipped SMS and sentiment sets) to a
served model that takes raw strings.

The domain's contract (`shared.domain.Domain`); its verbs import their TensorFlow
modules (`task`, `serving`) only when called. Translation and language models (issue
12) are not here yet: `tasks` lists what works.
"""

from __future__ import annotations

from domains.nlp.config import NLPConfig
from shared.domain import Domain, SmokeRun, TourLeg, register_domain


@register_domain
class NLPDomain(Domain):
    name = "nlp"
    summary = "Text classification: train, evaluate, predict, explain, export (raw strings in)."
    tasks = ("classify",)
    config_class = NLPConfig
    data_specs = ("builtin", "csv", "jsonl")
    strategies = ("auto", "default", "one-device")
    strategies_note = "the n-gram models train in seconds on one device"
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
    smoke_run = SmokeRun("default", ("train.epochs=2",), resume=("train.epochs=12",))
    task_module = "domains.nlp.task"
    order = 15
    notebook_run = "sms"

    def check(self, config: NLPConfig) -> None:
        """Read and split the texts (pandas only): a missing column, a single class or an
        unreadable file is refused before TensorFlow starts."""
        super().check(config)
        from domains.nlp import data

        data.load(config)

    def serving_spec(self, run, config):
        from domains.nlp import serving

        return serving.serving_spec(run, config)
