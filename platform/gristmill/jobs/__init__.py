"""Jobs: the team's long work (ingest, features, training, monitoring) on Celery workers.

:mod:`~gristmill.jobs.store` keeps every job's record in the metadata database,
:mod:`~gristmill.jobs.scheduler` decides which queued job runs on which worker (slots, per-user and
per-project limits, fair order between users) and takes back the jobs of lost workers,
:mod:`~gristmill.jobs.engine` is the Celery application, :mod:`~gristmill.jobs.runner` runs one
attempt in a child process, :mod:`~gristmill.jobs.worker` is ``gristmill worker``.
"""
