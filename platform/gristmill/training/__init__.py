"""Training stage: Optuna-tuned models tracked in MLflow and registered with aliases."""
