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

from studyflow.config import PROFILES, PartConfig, parse_set_options
from studyflow.config.base import auto_precision_reason
from studyflow.config.study import ReportConfig
from studyflow.config.help import ParametersHelp
from studyflow.config.sweeps import SWEEP_CONFIGS, SWEEP_KINDS, SweepConfig, sweep_config
from studyflow.quiet import import_tensorflow_quietly
from studyflow.startup import start_budget
from studyflow.errors import ConfigError, StudyflowError


_stopping = False  # set by the first Ctrl-C or SIGTERM
SWEEP_OPTIONS = ("trials", "study_name", "storage")  # a sweep's fields given as options too
OPTIONS_IN_HELP = ("study_name", "storage")  # left out of a sweep's parameter list: their options say it all


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
    print("studyflow: stopped at once (second signal); `studyflow doctor` closes what was left open",
          file=sys.stderr, flush=True)
    os._exit(128 + signum)


def _parts():
    from flows.registry import PARTS, STUDY  # names only: no flow (nor TensorFlow) is imported here

    return {**PARTS, "study": STUDY}


def build_parser() -> argparse.ArgumentParser:
    parts = _parts()
    part_lines = "\n".join(f"  {name:<12} {part.summary}" for name, part in parts.items())
    parser = argparse.ArgumentParser(
        prog="studyflow",
        description="Run the MNIST / Fashion-MNIST study as Prefect flows tracked in MLflow.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"study parts:\n{part_lines}",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of its one-line message")
    parser.add_argument("--verbose", action="store_true",
                        help="keep TensorFlow's start-up notices (oneDNN, CPU features) on the console")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="run one study part, or the whole study",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a study part as a Prefect flow; every run it makes is an MLflow run.",
        epilog=f"parts:\n{part_lines}\n\nexample: studyflow run perceptron --set pairs='[[1,0],[4,9]]'",
        add_help=False,
    )
    run.add_argument("-h", "--help", action=ParametersHelp, configs={name: part.config for name, part in parts.items()},
                     name="part", help="show this help; after a part (run mlp --help), also its parameters")
    run.add_argument("part", choices=list(parts), metavar="part", help="one of: " + ", ".join(parts))
    run.add_argument("--profile", choices=PROFILES, default="quick",
                     help="quick: subsets and few epochs (minutes); paper: the original settings")
    run.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                     help="override a parameter (VALUE as JSON where it parses); repeatable")
    run.add_argument("--force", action="store_true",
                     help="redo every step; by default a step that a finished run already did with the same "
                          "inputs, code and data is reused, so a rerun after a crash redoes only what was lost")
    report = commands.add_parser(
        "report", help="write the study report (Markdown + HTML) from the MLflow store",
        description="Set every part's latest finished run beside the original study's figures.")
    report.add_argument("--out", metavar="DIR", help="output folder (default: reports/<timestamp>/)")
    report.add_argument("--run", dest="run_assignments", action="append", default=[], metavar="PART=RUN_ID",
                        help="report this parent run for a part instead of its latest; repeatable")
    report.add_argument("--published", action="store_true",
                        help="a report to commit (make paper-report): every part's run paper-profile, run ids "
                             "instead of links to a local MLflow UI")
    commands.add_parser(
        "doctor", help="check the stack and close runs left RUNNING by dead processes",
        description="Check the tracking store, the Prefect API, the datasets and disk space; close as KILLED "
                    "every run left RUNNING by a process that no longer exists, and say what was fixed.")
    _add_sweep_parser(commands)
    dashboard = commands.add_parser(
        "dashboard", help="optuna-dashboard over the sweeps' Optuna storage, on 127.0.0.1",
        description="Serve Optuna's dashboard (studies, trials, intermediate values, importances) over the "
                    "sweeps' storage: SQLite mlruns/optuna.db unless --storage names another.")
    dashboard.add_argument("--storage", metavar="URL", help="SQLAlchemy URL of the Optuna storage")
    dashboard.add_argument("--port", type=_port, default=8080, help="port on 127.0.0.1 (default 8080)")
    _add_serve_parser(commands)
    ui = commands.add_parser(
        "ui", help="the MLflow UI and a Prefect UI over the local stores, on 127.0.0.1, until Ctrl-C",
        description="Serve the MLflow UI over the tracking store and a Prefect UI over the Prefect home, so "
                    "that a finished command's runs and flow runs can be seen, with the links between them. "
                    "A store or Prefect server that is a server already is only named.")
    ui.add_argument("--mlflow-port", type=_port,
                    help="default: the port the links to MLflow point at (5000, or STUDYFLOW_MLFLOW_UI_URL's)")
    ui.add_argument("--prefect-port", type=_port,
                    help="default: the port the links to Prefect point at (4200, or STUDYFLOW_PREFECT_UI_URL's)")
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535)")
    return port


def _add_serve_parser(commands) -> None:
    from studyflow.entrypoints.serve import (DEFAULT_HOST, DEFAULT_MAX_BATCH, DEFAULT_MODEL_URI, DEFAULT_PORT,  # no MLflow
                                 MAX_BATCH_VARIABLE)

    serve = commands.add_parser(
        "serve", help="serve the champion (or any model) with MLflow's scoring server",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run MLflow's scoring server (`mlflow models serve --env-manager local`) from this "
                    "environment for a model of the tracking store; the model is checked first.",
        epilog="example:\n  studyflow serve\n  curl -s http://127.0.0.1:5050/invocations -H 'Content-Type: "
               "application/json' -d '{\"inputs\": [<28 rows of 28 pixels 0-255>]}'\n(see README, Serving)")
    serve.add_argument("--model-uri", default=DEFAULT_MODEL_URI,
                       help=f"the model to serve (default {DEFAULT_MODEL_URI})")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"interface to listen on (default {DEFAULT_HOST}; 0.0.0.0 only inside a container)")
    serve.add_argument("--max-batch", type=_positive, metavar="N",
                       help=f"images per request at most, more is answered 413 (default ${MAX_BATCH_VARIABLE}, "
                            f"else {DEFAULT_MAX_BATCH})")


def _add_sweep_parser(commands) -> None:
    sweep = commands.add_parser(
        "sweep", help="an Optuna sweep of MLP widths, CNN filters or the MTL lambda",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run (or resume) an Optuna study as a Prefect flow: one MLflow parent run in "
                    "studyflow-sweep-<kind>, one child run per trial. Running the same command again "
                    "continues the study until N trials have finished.",
        epilog="examples:\n  studyflow sweep cnn --profile paper\n"
               "  studyflow sweep mlp --trials 6 --set search_space='{\"max_depth\": 4}'\n"
               "  studyflow sweep cnn --trials 40 --set workers=2 --storage postgresql://user:pw@127.0.0.1/optuna",
        add_help=False,
    )
    sweep.add_argument("-h", "--help", action=ParametersHelp, configs=SWEEP_CONFIGS, name="kind", skip=OPTIONS_IN_HELP,
                       help="show this help; after a kind (sweep cnn --help), also its parameters")
    sweep.add_argument("kind", choices=SWEEP_KINDS, help="what to search: " + ", ".join(SWEEP_KINDS))
    sweep.add_argument("--trials", type=int, metavar="N",
                       help="finished (complete or pruned) trials the study must have in total (default: the "
                            "profile's: the parameter trials of sweep KIND --help)")
    sweep.add_argument("--profile", choices=PROFILES, default="quick",
                       help="quick: subsets and few epochs; paper: the original settings")
    sweep.add_argument("--study-name", help="Optuna study name (default sweep-<kind>-<profile>)")
    sweep.add_argument("--storage", metavar="URL",
                       help="SQLAlchemy URL of the Optuna storage (default: SQLite mlruns/optuna.db)")
    sweep.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                       help="override a parameter, e.g. search_space, pruner, epochs, workers; repeatable")


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
            raise ConfigError(f"{', '.join(clash)} given twice: as option (--{clash[0].replace('_', '-')} ...) "
                              "and with --set; give one")
        return sweep_config(args.kind, args.profile, **overrides, **options)
    if args.force:
        overrides["force"] = True
    return _parts()[args.part].config.for_profile(args.profile, **overrides)


def _say_precision(args: argparse.Namespace, config: PartConfig) -> None:
    """Once per command, when it trains in the precision "auto" chose: which, and why."""
    if "precision" in type(config).model_fields and \
            parse_set_options(getattr(args, "assignments", [])).get("precision", "auto") == "auto":
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
        _parts()[args.part].preflight(config)  # e.g. the model part 5 inspects exists


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
    part = _parts()[part_name]
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

    experiment = tracking.connect().get_experiment_by_name(tracking.experiment_name(part)) \
        if part in (*PART_NAMES, *(f"sweep-{kind}" for kind in SWEEP_KINDS)) else None
    page = tracking.experiment_url(experiment.experiment_id) if experiment else tracking.experiments_url()
    if tracking.uses_tracking_server():
        return f"[studyflow] MLflow UI: {page}"
    studyflow = Path(sys.executable).parent / "studyflow"
    return (f"[studyflow] the runs in MLflow and the flow runs in Prefect: start both UIs with\n  {studyflow} ui\n"
            f"then open {page}")


if __name__ == "__main__":
    sys.exit(main())
