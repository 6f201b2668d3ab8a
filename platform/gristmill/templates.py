"""Starter files written by ``gristmill init``."""

STARTER = """# Gristmill project spec: every key is described in `gristmill.spec` (pydantic models).
project: {project}
description: ""

# Raw files: a file, a folder or a glob; relative paths start at this file's folder.
sources:
  - path: data/                  # every file inside is ingested; tables are named after files

# The thing predictions are about, and the column that identifies it.
entity:
  name: customer
  key: customer_id

# Ingested tables that feed features (table names are the snake_case file names).
features:
  - table: customers             # static attributes: no timestamp
  - table: transactions          # events: running counts, sums and means per entity
    timestamp: created_at
    kind: events

# Outcomes to learn, each observed at a point in time (features are taken as of then).
label:
  table: labels
  target: churned
  timestamp: as_of

training:
  metric: auto                   # roc_auc | log_loss | accuracy | rmse | mae | r2
  budget_seconds: 120

serving:
  port: 3000

monitoring:
  drift_share_threshold: 0.5
"""


def starter_spec(project: str) -> str:
    return STARTER.format(project=project)
