"""The generic rule: website contact forms and senders no rule knows, read by the label
vocabulary (``rules/labels.yaml``) alone.

It is deliberately conservative: the pipeline accepts its lead only when a labelled name
and a labelled phone or email (or the lead metadata tags saying the same) were found and
survive normalizing. Anything less stays a ``no_matching_rule`` dead letter: a newsletter
with a phone number in its footer must never become a lead.
"""

from __future__ import annotations

from daemon.message import Message
from daemon.parsing import META_FIELDS, Extraction
from daemon.rules import Extractor, Rule
from daemon.vocabulary import VOCABULARY_FIELDS, LabelIndex, Vocabulary, has_shape, labelled

#: The source stamped on leads the generic rule reads.
SOURCE = "unknown"


_built: dict[int, tuple[Vocabulary, Rule]] = {}


def generic_rule(labels: Vocabulary) -> Rule:
    """The generic rule as a ``Rule`` value: one label extractor per vocabulary field,
    ``required: [full_name]``, ``require_any: [[phone, email]]``, version = the vocabulary's."""
    cached = _built.get(id(labels))
    if cached is not None and cached[0] is labels:
        return cached[1]
    rule = _build(labels)
    _built.clear()  # one vocabulary is in force at a time
    _built[id(labels)] = (labels, rule)
    return rule


def _build(labels: Vocabulary) -> Rule:
    fields = {name: [Extractor(label=list(labels.labels[name]))]
              for name in VOCABULARY_FIELDS if labels.labels.get(name)}
    if "full_name" not in fields:  # a rule needs an extractor for each required field
        fields["full_name"] = [Extractor(label=["Name"])]
    for name in ("phone", "email"):
        fields.setdefault(name, [Extractor(label=[name.title()])])
    return Rule.model_validate({
        "source": SOURCE,
        "version": labels.version,
        "description": "labels.yaml: emails no source rule recognises",
        "match": {"from": ["*"]},
        "fields": fields,
        "required": ["full_name"],
        "require_any": [["phone", "email"]],
    })


def extract_generic(msg: Message, labels: Vocabulary, region: str = "US") -> Extraction:
    """Every vocabulary field found under one of its labels (first value with the field's
    shape wins), then the lead metadata tags for what is still missing."""
    rule = generic_rule(labels)
    found: dict[str, str] = {}
    index = LabelIndex(msg.lines)
    for name in VOCABULARY_FIELDS:
        for hit in labelled(index, labels, name):
            value = hit.value.strip()
            if has_shape(name, value, region):
                found[name] = value
                break
    for tag, content in msg.lead_meta.items():
        meta_field = META_FIELDS.get(tag)
        if meta_field is not None and meta_field not in found and not (
                meta_field == "full_name" and ("first_name" in found or "last_name" in found)):
            found[meta_field] = content
    sender = msg.from_address or "no sender"
    warning = (f"{rule.name}: no rule matches this email (from {sender}, subject {msg.subject!r}); "
               "read by the generic rule of labels.yaml. Write a rule for this sender: "
               "leadpipe rules new SOURCE FILE.eml")
    return Extraction(rule=rule, fields=found, warnings=(warning,))
