"""Serving: the champion model plus online features, behind BentoML services in ``bentos/``."""
