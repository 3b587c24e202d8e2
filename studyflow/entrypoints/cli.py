"""The `studyflow` command line: run a study part or the whole study, or serve the champion."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from studyflow.config import PartConfig, parse_set_options
from studyflow.config.base import auto_precision_reason
from studyflow.config.study import ReportConfig
from studyflow.config.sweeps import SWEEP_KINDS, SweepConfig, sweep_config
from studyflow.entrypoints.parser import SWEEP_OPTIONS, build_parser, runnable_parts
from studyflow.errors import ConfigError, StudyflowError
from studyflow.quiet import import_tensorflow_quietly
from studyflow.startup import start_budget

_stopping = False  # set by the first Ctrl-C or SIGTERM


def _interrupt(signum, frame):
    """The first Ctrl-C or SIGTERM stops the work: open runs are closed KILLED on the way out (SIGTERM,
    from a worker cancelling or `kill`, takes the same path). A second one exits at once, even where
    Prefect's engine has put this handler back (it wraps SIGTERM while a flow runs)."""
    global _stopping
    if _stopping:
        _exit_now(signum, frame)
    _stopping = True
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)
    raise KeyboardInterrupt(f"signal {signum}")


def _exit_now(signum, frame):
    print(
        "studyflow: stopped at once (second signal); `studyflow doctor` closes what was left open",
        file=sys.stderr,
        flush=True,
    )
    os._exit(128 + signum)


def command_config(args: argparse.Namespace) -> PartConfig:
    """The command's config, built once from its options: a bad parameter stops here, before
    TensorFlow, MLflow or Prefect is imported and before any store or server is touched."""
    if args.command == "report":
        run_ids = {key: str(value) for key, value in parse_set_options(args.run_assignments).items()}
        return ReportConfig.for_profile("quick", out_dir=args.out, run_ids=run_ids, published=args.published)
    overrides = parse_set_options(args.assignments)
    if args.command == "sweep":
        options = {name: getattr(args, name) for name in SWEEP_OPTIONS if getattr(args, name) is not None}
        clash = sorted(set(overrides) & set(options))
        if clash:
            raise ConfigError(
                f"{', '.join(clash)} given twice: as option (--{clash[0].replace('_', '-')} ...) "
                "and with --set; give one"
            )
        return sweep_config(args.kind, args.profile, **overrides, **options)
    if args.force:
        overrides["force"] = True
    return runnable_parts()[args.part].config.for_profile(args.profile, **overrides)


def _say_precision(args: argparse.Namespace, config: PartConfig) -> None:
    """Once per command, when it trains in the precision "auto" chose: which, and why."""
    if (
        "precision" in type(config).model_fields
        and parse_set_options(getattr(args, "assignments", [])).get("precision", "auto") == "auto"
    ):
        print(f"[studyflow] {auto_precision_reason()}", flush=True)


def check_inputs(args: argparse.Namespace, config: PartConfig) -> None:
    """Everything the command needs, checked before Prefect starts or TensorFlow is imported: the
    tracking server answers and the store can be written, the datasets are present and match their
    checksums, the Optuna database answers, the part's own inputs exist (the model part 5 inspects).
    Each failure is a StudyflowError naming what to fix."""
    from studyflow import tracking
    from tasks.data import check_dataset

    tracking.check_server()  # an unreachable MLflow server: said at once
    tracking.check_writable()
    names: list[str] = []
    if args.command == "sweep":
        names = [config.DATASET]
    elif args.command == "run":
        from flows.registry import datasets_needed

        names = datasets_needed(args.part, config)
    for name in names:
        check_dataset(name)
    if getattr(config, "fans_out", None) and config.fans_out():
        from studyflow.cluster import check_fan_out

        check_fan_out(config)  # a Dask cluster that cannot work as asked: said before any work
    if args.command == "sweep":
        from tasks.sweeps.storage import check_storage

        check_storage(config)  # an unreachable Optuna database
    elif args.command == "run":
        runnable_parts()[args.part].preflight(config)  # e.g. the model part 5 inspects exists


def run_sweep(kind: str, config: SweepConfig, prefect_ready: Callable[[], AbstractContextManager] = nullcontext):
    """Close what dead processes left open, then run the sweep's flow on this config."""
    from studyflow import tracking

    client = tracking.connect()
    from flows.common import run_with_config
    from flows.sweeps import SWEEP_FLOWS

    with prefect_ready():
        # A killed sweep's parent run is closed (and its flow run set Crashed) before the resume
        # reopens that parent: reopened first, it would carry the new flow run and hide the old one.
        _close_orphans(client)
        return run_with_config(SWEEP_FLOWS[kind], config)


def run_part(part_name: str, config: PartConfig, prefect_ready: Callable[[], AbstractContextManager] = nullcontext):
    """Close what dead processes left open, then run the part's flow on this config."""
    part = runnable_parts()[part_name]
    from studyflow import tracking

    client = tracking.connect()
    from flows.common import run_with_config

    with prefect_ready():  # every Prefect call inside: one made during the early boot would race it
        _close_orphans(client)
        return run_with_config(part.flow, config)


def _close_orphans(client) -> None:
    """Close what killed processes left RUNNING: MLflow runs KILLED, their Prefect flow runs Crashed."""
    from studyflow.entrypoints.doctor import close_orphaned_runs

    for fixed in close_orphaned_runs(client):
        print(f"[studyflow] {fixed}")


def run_report(config: ReportConfig, prefect_ready: Callable[[], AbstractContextManager] = nullcontext):
    from studyflow import tracking

    tracking.connect()
    from flows.common import run_with_config
    from flows.report import report_flow

    with prefect_ready():
        return run_with_config(report_flow, config)


def _doctor() -> int:
    from studyflow.entrypoints.doctor import run_doctor

    report = run_doctor()
    for name, ok, detail in report.checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    for fixed in report.fixed:
        print(f"fixed {fixed}")
    print(f"{len(report.fixed)} fixed; " + ("healthy" if report.healthy else "problems found"))
    return 0 if report.healthy else 1


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()  # the whole command, imports and Prefect's start included
    args = build_parser().parse_args(argv)
    global _stopping
    _stopping = False
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)

    prefect_ready: Callable[[], AbstractContextManager] = nullcontext  # no Prefect server booted early
    try:
        start_budget()  # a bad STUDYFLOW_START_TIMEOUT: said before any work
        if args.command == "doctor":
            return _doctor()
        if args.command == "dashboard":
            from studyflow.entrypoints.dashboard import run_dashboard

            return run_dashboard(args.storage, args.port)
        if args.command == "serve":
            from studyflow.entrypoints.serve import serve

            return serve(args.model_uri, args.host, args.port, args.max_batch)
        if args.command == "ui":
            from studyflow.entrypoints.ui import run_ui

            return run_ui(args.mlflow_port, args.prefect_port)
        config = command_config(args)
        _say_precision(args, config)
        check_inputs(args, config)  # data, stores and models, before Prefect starts or TensorFlow loads
        if args.verbose:
            import tensorflow  # noqa: F401  (its start-up notices kept)
        import_tensorflow_quietly()  # and its logger's warnings printed once
        from studyflow.local_prefect import EarlyLocalServer

        prefect_ready = EarlyLocalServer().ready  # boots while the flow's modules import
        if args.command == "report":
            run_report(config, prefect_ready)
            return 0
        if args.command == "sweep":
            run_sweep(args.kind, config, prefect_ready)
        else:
            run_part(args.part, config, prefect_ready)
    except KeyboardInterrupt as exc:
        from studyflow.tracking.endings import stop_reason

        print(f"studyflow: {stop_reason(exc)}; open runs were closed as KILLED", file=sys.stderr)
        return 143 if "SIGTERM" in (stop_reason(exc) or "") else 130
    except StudyflowError as exc:  # a problem the user can fix: one line, no traceback
        if args.debug:
            raise
        print(f"studyflow: error: {exc}", file=sys.stderr)
        return exc.exit_code
    label = f"sweep {args.kind}" if args.command == "sweep" else args.part
    print(f"[studyflow] {label} ({args.profile}) finished in {time.perf_counter() - started:.1f} s")
    print(ui_hint(f"sweep-{args.kind}" if args.command == "sweep" else args.part))
    return 0


def ui_hint(part: str) -> str:
    """Where to see the runs, once per command, as a command that works as printed."""
    from studyflow import tracking
    from studyflow.config.parts import PART_NAMES

    experiment = (
        tracking.connect().get_experiment_by_name(tracking.experiment_name(part))
        if part in (*PART_NAMES, *(f"sweep-{kind}" for kind in SWEEP_KINDS))
        else None
    )
    page = tracking.experiment_url(experiment.experiment_id) if experiment else tracking.experiments_url()
    if tracking.uses_tracking_server():
        return f"[studyflow] MLflow UI: {page}"
    studyflow = Path(sys.executable).parent / "studyflow"
    return (
        f"[studyflow] the runs in MLflow and the flow runs in Prefect: start both UIs with\n  {studyflow} ui\n"
        f"then open {page}"
    )


if __name__ == "__main__":
    sys.exit(main())
