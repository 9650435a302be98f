"""The engine: every file of the rules directory a lead is read and scored with, loaded
together (source rules, webhook mappings, the label vocabulary, the scoring) and swapped as
one when a file changes (``daemon.pipeline.reload``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from daemon.errors import RuleError
from daemon.providers.model import ChatModel
from daemon.qualifying.scoring import Scoring, load_scoring
from daemon.reading.mappings import MappingSet, load_mappings
from daemon.reading.rules import LABELS_FILE, RuleSet, load_rules
from daemon.reading.vocabulary import Vocabulary, load_vocabulary


@dataclass(frozen=True)
class Engine:
    """Everything ``parse_email`` needs: the rules, the scoring, the label vocabulary, two
    settings, and the model endpoint if one is configured (``daemon.providers.model``)."""

    rules: RuleSet
    scoring: Scoring
    region: str = "US"
    regex_timeout: timedelta = timedelta(seconds=1)
    labels: Vocabulary = field(default_factory=Vocabulary)
    #: the webhook mappings (``rules/webhooks/``); their errors are also in ``rules.errors``
    webhooks: MappingSet = field(default_factory=MappingSet)
    #: asked only where its ``uses`` say (``reading``: an email nothing else can read)
    model: ChatModel | None = None

    @classmethod
    def load(cls, rules_dir: Path, *, region: str = "US",
             regex_timeout: timedelta = timedelta(seconds=1), model: ChatModel | None = None) -> Engine:
        """Load rules, scoring and the label vocabulary from ``rules_dir``. Broken rule
        files and a broken ``labels.yaml`` are in ``rules.errors`` (without the vocabulary,
        the reader reads without its words); a broken scoring file raises
        ``RuleError``."""
        rules = load_rules(rules_dir)
        try:
            labels = load_vocabulary(Path(rules_dir) / LABELS_FILE)
        except RuleError as exc:
            labels = Vocabulary()
            rules = dataclasses.replace(rules, errors=(*rules.errors, exc, *exc.also))
        webhooks = load_mappings(rules_dir)
        if webhooks.errors:
            rules = dataclasses.replace(rules, errors=(*rules.errors, *webhooks.errors))
        return cls(
            rules=rules,
            scoring=load_scoring(Path(rules_dir) / "scoring.yaml"),
            region=region,
            regex_timeout=regex_timeout,
            labels=labels,
            webhooks=webhooks,
            model=model,
        )
