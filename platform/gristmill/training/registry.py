"""A project's registered models: aliases, the promotion gate and the promotion history.

Every trained model is registered as a new version of the MLflow model named after the project.
The gate then decides which alias it gets:

- no ``champion`` yet: the new version becomes ``champion``;
- otherwise the current champion is scored on the new model's holdout (the same rows, the same
  metric) and the new version becomes ``champion`` only if it beats it by more than
  ``training.promotion_margin``; else it becomes ``challenger`` and the champion stays. A champion
  whose holdout was these very rows (its ``fingerprint_holdout`` tag) is not rescored: it was refitted on
  every row, holdout included, so its recorded holdout score (from fold models that never saw the
  holdout) stands in; a champion refitted on rows that may include this holdout is rescored, and
  the reason says the comparison can favour it.

A model that fails its quality gate (``training.gate``, :mod:`gristmill.training.gate`) is still
registered, tagged ``gate: failed`` with the reasons (``gate_failures``), but gets no alias: the
gate's answer is ``rejected`` and it never becomes champion (``promote`` and ``rollback`` refuse it).

A version never holds both aliases: whatever gives it ``champion`` (the gate, ``promote``,
``rollback``) takes its ``challenger`` away, and ``challenge`` refuses the champion.

MLflow keeps no history of which version held an alias when (mlflow#2169), so every alias move,
automatic or by hand, is appended to ``<workspace>/registry/<project>/promotions.jsonl``: when,
who, the action, from which version to which, the scores and the reason. ``rollback`` reads it to
find the champion before the current one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from gristmill.errors import GristmillError, ModelNotFound
from gristmill.workspace import Workspace

CHAMPION = "champion"
CHALLENGER = "challenger"
#: What the gate answers for a model that failed a quality gate: no alias at all.
REJECTED = "rejected"


@dataclass
class Decision:
    """What the gate did with a new version."""

    alias: str
    version: str
    previous_champion: str | None
    score: float
    champion_score: float | None
    metric: str
    margin: float
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def history_path(ws: Workspace, project: str):
    return ws.root / "registry" / project / "promotions.jsonl"


def history(ws: Workspace, project: str) -> list[dict]:
    """Every alias move of ``project``, oldest first."""
    path = history_path(ws, project)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _append(ws: Workspace, project: str, entry: dict) -> dict:
    from gristmill.identity.principal import acting_actor

    entry = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "by": acting_actor(), **entry}
    path = history_path(ws, project)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, default=str) + "\n")
    return entry


def _client(ws: Workspace):
    from gristmill.config import mlflow_client
    from gristmill.training.train import configure_mlflow

    configure_mlflow(ws)
    return mlflow_client(ws)


def _give_champion(client, project: str, version: str) -> bool:
    """``champion`` to ``version``; a version never holds both aliases, so its ``challenger`` goes
    (True when it did)."""
    client.set_registered_model_alias(project, CHAMPION, version)
    if alias_version(client, project, CHALLENGER) == version:
        client.delete_registered_model_alias(project, CHALLENGER)
        return True
    return False


def alias_version(client, project: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(project, alias).version)
    except MlflowException:
        return None


def champion_version(ws: Workspace, project: str) -> str | None:
    """The version the ``champion`` alias names now, or None."""
    return alias_version(_client(ws), project, CHAMPION)


def aliases(ws: Workspace, project: str) -> dict[str, str]:
    """The versions ``champion`` and ``challenger`` name now (an unset alias is left out)."""
    client = _client(ws)
    found = {alias: alias_version(client, project, alias) for alias in (CHAMPION, CHALLENGER)}
    return {alias: version for alias, version in found.items() if version}


def judge(has_champion: bool, metric: str, greater_is_better: bool, score: float,
          champion_score: float | None, margin: float, note: str = "",
          gate_failures: list[str] | None = None) -> tuple[str, str]:
    """The gate itself: the alias a new model earns, and why (``rejected``, no alias, when it
    failed a quality gate)."""
    if gate_failures:
        return REJECTED, "failed the quality gate: " + "; ".join(gate_failures)
    if not has_champion:
        return CHAMPION, "first model of the project"
    if champion_score is None:
        return CHALLENGER, note or "the champion could not be scored on the new holdout"
    gain = score - champion_score if greater_is_better else champion_score - score
    also = f"; {note}" if note else ""
    if gain > margin:
        return CHAMPION, f"beats the champion by {gain:.4g} {metric} (margin {margin:g}){also}"
    return CHALLENGER, (f"does not beat the champion by more than the margin "
                        f"({gain:+.4g} {metric}, margin {margin:g}){also}")


def tag_version(ws: Workspace, project: str, version: str, tags: dict[str, str]) -> None:
    """Set tags on a registered version of ``project``'s model."""
    client = _client(ws)
    for key, value in tags.items():
        client.set_model_version_tag(project, version, key, value)


def decide(ws: Workspace, project: str, version: str, metric: str, greater_is_better: bool,
           score: float, champion_score: float | None, margin: float, note: str = "",
           flags: list[str] | None = None, gate_failures: list[str] | None = None) -> Decision:
    """Apply the gate to a freshly registered ``version`` and record the move. ``flags`` (likely
    leaks) do not change the alias; they join the reason, so whoever reads the decision sees them.
    ``gate_failures`` (the quality gate's failed checks) leave the version without an alias."""
    client = _client(ws)
    champion = alias_version(client, project, CHAMPION)
    challenger = alias_version(client, project, CHALLENGER)
    alias, reason = judge(champion is not None, metric, greater_is_better, score, champion_score, margin,
                          note, gate_failures)
    if flags:
        reason = "; ".join([reason, *flags])
    if alias == CHAMPION:
        _give_champion(client, project, version)
    elif alias == CHALLENGER:
        client.set_registered_model_alias(project, alias, version)
    client.set_model_version_tag(project, version, f"holdout_{metric}", repr(float(score)))
    decision = Decision(alias, version, champion, score, champion_score, metric, margin, reason)
    _append(ws, project, {"action": "train", "alias": alias,
                          "from_version": {CHAMPION: champion, CHALLENGER: challenger}.get(alias),
                          "to_version": version,
                          "metric": metric, "score": score, "champion_score": champion_score,
                          "margin": margin, "reason": reason})
    return decision


def promote(ws: Workspace, project: str, version: str | None = None) -> dict:
    """Make ``version`` (default: the challenger) the champion, by hand."""
    client = _client(ws)
    _require_model(client, project)
    target = version or alias_version(client, project, CHALLENGER)
    if target is None:
        raise GristmillError(f"project {project!r} has no challenger: give --version")
    _require_version(client, project, target)
    _require_gate_passed(client, project, target)
    before = alias_version(client, project, CHAMPION)
    if before == target:
        raise GristmillError(f"version {target} of {project!r} is already the champion")
    _give_champion(client, project, target)
    return _append(ws, project, {"action": "promote", "alias": CHAMPION, "from_version": before,
                                 "to_version": target, "reason": "promoted by hand"})


def challenge(ws: Workspace, project: str, version: str) -> dict:
    """Give ``challenger`` to ``version`` by hand: the service's A/B split or shadow mode scores it."""
    client = _client(ws)
    _require_model(client, project)
    _require_version(client, project, version)
    if alias_version(client, project, CHAMPION) == version:
        raise GristmillError(f"version {version} of {project!r} is the champion: a challenger must be "
                             "another version")
    before = alias_version(client, project, CHALLENGER)
    client.set_registered_model_alias(project, CHALLENGER, version)
    return _append(ws, project, {"action": "challenge", "alias": CHALLENGER, "from_version": before,
                                 "to_version": version, "reason": "made challenger by hand"})


def rollback(ws: Workspace, project: str, to: str | None = None) -> dict:
    """Give ``champion`` back to the version that held it before (or to version ``to``)."""
    client = _client(ws)
    _require_model(client, project)
    current = alias_version(client, project, CHAMPION)
    target = to or _previous_champion(history(ws, project), current)
    if target is None:
        raise GristmillError(f"project {project!r} has no earlier champion to roll back to: "
                             "give --to VERSION")
    _require_version(client, project, target)
    _require_gate_passed(client, project, target)
    if target == current:
        raise GristmillError(f"version {target} of {project!r} is already the champion")
    dropped = _give_champion(client, project, target)
    reason = "rolled back by hand" + ("; it was the challenger: no challenger now" if dropped else "")
    return _append(ws, project, {"action": "rollback", "alias": CHAMPION, "from_version": current,
                                 "to_version": target, "reason": reason})


def _previous_champion(moves: list[dict], current: str | None) -> str | None:
    """The version that held ``champion`` right before ``current`` took it."""
    for move in reversed(moves):
        if move.get("alias") == CHAMPION and move.get("to_version") == current:
            return move.get("from_version")
    return None


def versions(ws: Workspace, project: str) -> list[dict]:
    """Registered versions of ``project``, newest first, with aliases and recorded scores."""
    client = _client(ws)
    _require_model(client, project)
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(project).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    out = []
    for mv in client.search_model_versions(f"name = '{project}'"):
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, timezone.utc)
        out.append({"version": str(mv.version), "aliases": sorted(aliases.get(str(mv.version), [])),
                    "created_at": created.isoformat(timespec="seconds"), "run_id": mv.run_id,
                    "training_set_id": mv.tags.get("training_set_id", ""),
                    "scores": {k: float(v) for k, v in mv.tags.items() if k.startswith("holdout_")},
                    "gate": mv.tags.get("gate", "none"),
                    "gate_failures": [r for r in mv.tags.get("gate_failures", "").split("; ") if r]})
    return sorted(out, key=lambda v: int(v["version"]), reverse=True)


def _require_model(client, project: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(project)
    except MlflowException:
        raise ModelNotFound(f"project {project!r} has no registered model: run `gristmill train "
                            f"{project}` first") from None


def _require_version(client, project: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(project, str(version))
    except MlflowException:
        known = ", ".join(sorted((str(v.version) for v in client.search_model_versions(f"name = '{project}'")),
                                 key=int))
        raise ModelNotFound(f"project {project!r} has no version {version} (versions: {known})") from None


def _require_gate_passed(client, project: str, version: str) -> None:
    """A version that failed its quality gate never becomes champion."""
    tags = client.get_model_version(project, str(version)).tags
    if tags.get("gate") == "failed":
        raise GristmillError(f"version {version} of {project!r} failed its quality gate and cannot be "
                             f"champion ({tags.get('gate_failures', 'see gristmill models list')})")
