"""The alias invariant over generated sequences of promote / challenge / rollback / gate moves:
at most one version holds each alias, no version holds both, and a champion stays a champion.

An in-memory stand-in for MlflowClient keeps this fast; test_registry.py runs the same moves on a
real MLflow registry through the CLI."""

import random

import pytest
from mlflow.exceptions import MlflowException

from gristmill.errors import GristmillError
from gristmill.training import registry


class _Version:
    def __init__(self, version):
        self.version, self.tags, self.run_id, self.creation_timestamp = version, {}, "", 0


class FakeClient:
    def __init__(self, n):
        self.versions = {str(i): _Version(str(i)) for i in range(1, n + 1)}
        self.aliases: dict[str, str] = {}

    def get_registered_model(self, name):
        return type("Model", (), {"aliases": dict(self.aliases)})()

    def get_model_version(self, name, version):
        if str(version) not in self.versions:
            raise MlflowException(f"no version {version}")
        return self.versions[str(version)]

    def search_model_versions(self, query):
        return list(self.versions.values())

    def get_model_version_by_alias(self, name, alias):
        if alias not in self.aliases:
            raise MlflowException(f"no alias {alias}")
        return self.versions[self.aliases[alias]]

    def set_registered_model_alias(self, name, alias, version):
        self.aliases[alias] = str(version)

    def delete_registered_model_alias(self, name, alias):
        del self.aliases[alias]

    def set_model_version_tag(self, name, version, key, value):
        self.versions[str(version)].tags[key] = value


def _check(client):
    held = list(client.aliases.values())
    assert len(held) == len(set(held)), f"one version holds both aliases: {client.aliases}"


@pytest.mark.parametrize("seed", range(40))
def test_no_sequence_of_moves_gives_one_version_both_aliases(seed, workspace, monkeypatch):
    rng = random.Random(seed)
    n = rng.randint(2, 5)
    client = FakeClient(n)
    monkeypatch.setattr(registry, "_client", lambda ws: client)
    project = f"p{seed}"
    registry.decide(workspace, project, "1", "roc_auc", True, 0.8, None, 0.0)
    for _ in range(12):
        version = str(rng.randint(1, n))
        move = rng.choice(["promote", "promote_default", "challenge", "rollback", "rollback_to", "gate"])
        try:
            if move == "promote":
                registry.promote(workspace, project, version)
            elif move == "promote_default":
                registry.promote(workspace, project)
            elif move == "challenge":
                registry.challenge(workspace, project, version)
            elif move == "rollback":
                registry.rollback(workspace, project)
            elif move == "rollback_to":
                registry.rollback(workspace, project, version)
            else:  # a training registers a new version and the gate decides its alias
                n += 1
                client.versions[str(n)] = _Version(str(n))
                registry.decide(workspace, project, str(n), "roc_auc", True, rng.random(),
                                rng.random(), 0.0)
        except GristmillError as exc:
            assert "already the champion" not in str(exc) or client.aliases[registry.CHAMPION] == version
        _check(client)
        assert registry.CHAMPION in client.aliases


def test_rollback_to_the_challenger_then_promote(workspace, monkeypatch):
    """The sequence of issue 16: v1 champion, v2 promoted, v1 made challenger, rollback to v1."""
    client = FakeClient(2)
    monkeypatch.setattr(registry, "_client", lambda ws: client)
    registry.decide(workspace, "seq", "1", "roc_auc", True, 0.8, None, 0.0)
    registry.decide(workspace, "seq", "2", "roc_auc", True, 0.7, 0.8, 0.0)
    registry.promote(workspace, "seq")
    registry.challenge(workspace, "seq", "1")
    moved = registry.rollback(workspace, "seq")
    assert client.aliases == {"champion": "1"} and "no challenger now" in moved["reason"]
    with pytest.raises(GristmillError, match="no challenger"):
        registry.promote(workspace, "seq")
    assert registry.promote(workspace, "seq", "2")["to_version"] == "2"
    assert client.aliases == {"champion": "2"}
