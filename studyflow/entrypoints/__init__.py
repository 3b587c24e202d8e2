"""The entry points, the top layer: the `studyflow` command line, the Dask worker preload, and the
servers and checks it starts (serve, dashboard, ui, doctor).

They may import flows, tasks and the core beneath them; nothing beneath imports them (the import
contracts in pyproject.toml check it).
"""
