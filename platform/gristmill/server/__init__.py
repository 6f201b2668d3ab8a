"""``gristmill server``: the HTTP API (FastAPI on uvicorn), generated from the service layer.

Every route is an operation of :mod:`gristmill.services`; authentication is a dependency of every
route but the probes and the password login, and :func:`gristmill.services.invoke` runs the policy
check and the audit trail. Nothing here decides access or holds logic of its own.
"""
