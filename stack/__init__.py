"""The local stack without Docker (stack/native.py is its command): the modules `native.py` runs.

layout       the stack folder, its settings (ports, addresses), the PostgreSQL password and URLs
bookkeeping  the processes the stack started: spawn, record, stop, and the wait for one to answer
postgres     the stack's own PostgreSQL cluster (initdb, pg_ctl, the databases)
servers      the MLflow and Prefect servers, the deployments, Dask, optuna-dashboard, the scoring server
workers      the Prefect process workers on the stack's work pool
"""
