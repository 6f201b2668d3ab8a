"""Feature stage: feature tables in the lake, Feast definitions in ``feature_repo/``, training sets
from point-in-time joins, and materialisation to the online store."""
