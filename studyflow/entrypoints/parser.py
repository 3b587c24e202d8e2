"""The `studyflow` command line's grammar: its commands, their options and their help (argparse).

Building it imports only the configs and the parts' names: `--help` and a bad option answer before
TensorFlow, MLflow or Prefect is imported.
"""

from __future__ import annotations

import argparse

from studyflow.config import PROFILES
from studyflow.config.help import ParametersHelp
from studyflow.config.sweeps import SWEEP_CONFIGS, SWEEP_KINDS

SWEEP_OPTIONS = ("trials", "study_name", "storage")  # a sweep's fields given as options too
OPTIONS_IN_HELP = ("study_name", "storage")  # left out of a sweep's parameter list: their options say it all


def runnable_parts() -> dict:
    """The parts `run` takes, the whole study last, by name."""
    from flows.registry import PARTS, STUDY  # names only: no flow (nor TensorFlow) is imported here

    return {**PARTS, "study": STUDY}


def build_parser() -> argparse.ArgumentParser:
    parts = runnable_parts()
    part_lines = "\n".join(f"  {name:<12} {part.summary}" for name, part in parts.items())
    parser = argparse.ArgumentParser(
        prog="studyflow",
        description="Run the MNIST / Fashion-MNIST study as Prefect flows tracked in MLflow.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"study parts:\n{part_lines}",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error instead of its one-line message"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="keep TensorFlow's start-up notices (oneDNN, CPU features) on the console",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run one study part, or the whole study",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a study part as a Prefect flow; every run it makes is an MLflow run.",
        epilog=f"parts:\n{part_lines}\n\nexample: studyflow run perceptron --set pairs='[[1,0],[4,9]]'",
        add_help=False,
    )
    run.add_argument(
        "-h",
        "--help",
        action=ParametersHelp,
        configs={name: part.config for name, part in parts.items()},
        name="part",
        help="show this help; after a part (run mlp --help), also its parameters",
    )
    run.add_argument("part", choices=list(parts), metavar="part", help="one of: " + ", ".join(parts))
    _add_profile_and_settings(run, "override a parameter (VALUE as JSON where it parses); repeatable")
    run.add_argument(
        "--force",
        action="store_true",
        help="redo every step; by default a step that a finished run already did with the same "
        "inputs, code and data is reused, so a rerun after a crash redoes only what was lost",
    )
    report = commands.add_parser(
        "report",
        help="write the study report (Markdown + HTML) from the MLflow store",
        description="Set every part's latest finished run beside the original study's figures.",
    )
    report.add_argument("--out", metavar="DIR", help="output folder (default: reports/<timestamp>/)")
    report.add_argument(
        "--run",
        dest="run_assignments",
        action="append",
        default=[],
        metavar="PART=RUN_ID",
        help="report this parent run for a part instead of its latest; repeatable",
    )
    report.add_argument(
        "--published",
        action="store_true",
        help="a report to commit (make paper-report): every part's run paper-profile, run ids "
        "instead of links to a local MLflow UI",
    )
    commands.add_parser(
        "doctor",
        help="check the stack and close runs left RUNNING by dead processes",
        description="Check the tracking store, the Prefect API, the datasets and disk space; close as KILLED "
        "every run left RUNNING by a process that no longer exists, and say what was fixed.",
    )
    _add_sweep_parser(commands)
    dashboard = commands.add_parser(
        "dashboard",
        help="optuna-dashboard over the sweeps' Optuna storage, on 127.0.0.1",
        description="Serve Optuna's dashboard (studies, trials, intermediate values, importances) over the "
        "sweeps' storage: SQLite mlruns/optuna.db unless --storage names another.",
    )
    dashboard.add_argument("--storage", metavar="URL", help="SQLAlchemy URL of the Optuna storage")
    dashboard.add_argument("--port", type=_port, default=8080, help="port on 127.0.0.1 (default 8080)")
    _add_serve_parser(commands)
    ui = commands.add_parser(
        "ui",
        help="the MLflow UI and a Prefect UI over the local stores, on 127.0.0.1, until Ctrl-C",
        description="Serve the MLflow UI over the tracking store and a Prefect UI over the Prefect home, so "
        "that a finished command's runs and flow runs can be seen, with the links between them. "
        "A store or Prefect server that is a server already is only named.",
    )
    ui.add_argument(
        "--mlflow-port",
        type=_port,
        help="default: the port the links to MLflow point at (5000, or STUDYFLOW_MLFLOW_UI_URL's)",
    )
    ui.add_argument(
        "--prefect-port",
        type=_port,
        help="default: the port the links to Prefect point at (4200, or STUDYFLOW_PREFECT_UI_URL's)",
    )
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
    from studyflow.entrypoints.serve import (
        DEFAULT_HOST,
        DEFAULT_MAX_BATCH,
        DEFAULT_MODEL_URI,
        DEFAULT_PORT,  # no MLflow
        MAX_BATCH_VARIABLE,
    )

    serve = commands.add_parser(
        "serve",
        help="serve the champion (or any model) with MLflow's scoring server",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run MLflow's scoring server (`mlflow models serve --env-manager local`) from this "
        "environment for a model of the tracking store; the model is checked first.",
        epilog="example:\n  studyflow serve\n  curl -s http://127.0.0.1:5050/invocations -H 'Content-Type: "
        "application/json' -d '{\"inputs\": [<28 rows of 28 pixels 0-255>]}'\n(see README, Serving)",
    )
    serve.add_argument(
        "--model-uri", default=DEFAULT_MODEL_URI, help=f"the model to serve (default {DEFAULT_MODEL_URI})"
    )
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"interface to listen on (default {DEFAULT_HOST}; 0.0.0.0 only inside a container)",
    )
    serve.add_argument(
        "--max-batch",
        type=_positive,
        metavar="N",
        help=f"images per request at most, more is answered 413 (default ${MAX_BATCH_VARIABLE}, "
        f"else {DEFAULT_MAX_BATCH})",
    )


def _add_sweep_parser(commands) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="an Optuna sweep of MLP widths, CNN filters or the MTL lambda",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run (or resume) an Optuna study as a Prefect flow: one MLflow parent run in "
        "studyflow-sweep-<kind>, one child run per trial. Running the same command again "
        "continues the study until N trials have finished.",
        epilog="examples:\n  studyflow sweep cnn --profile paper\n"
        "  studyflow sweep mlp --trials 6 --set search_space='{\"max_depth\": 4}'\n"
        "  studyflow sweep cnn --trials 40 --set workers=2 --storage postgresql://user:pw@127.0.0.1/optuna",
        add_help=False,
    )
    sweep.add_argument(
        "-h",
        "--help",
        action=ParametersHelp,
        configs=SWEEP_CONFIGS,
        name="kind",
        skip=OPTIONS_IN_HELP,
        help="show this help; after a kind (sweep cnn --help), also its parameters",
    )
    sweep.add_argument("kind", choices=SWEEP_KINDS, help="what to search: " + ", ".join(SWEEP_KINDS))
    sweep.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="finished (complete or pruned) trials the study must have in total (default: the "
        "profile's: the parameter trials of sweep KIND --help)",
    )
    _add_profile_and_settings(sweep, "override a parameter, e.g. search_space, pruner, epochs, workers; repeatable")
    sweep.add_argument("--study-name", help="Optuna study name (default sweep-<kind>-<profile>)")
    sweep.add_argument(
        "--storage", metavar="URL", help="SQLAlchemy URL of the Optuna storage (default: SQLite mlruns/optuna.db)"
    )


def _add_profile_and_settings(command: argparse.ArgumentParser, set_help: str) -> None:
    """--profile and --set, as `run` and `sweep` both take them."""
    command.add_argument(
        "--profile",
        choices=PROFILES,
        default="quick",
        help="quick: subsets and few epochs; paper: the original settings",
    )
    command.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE", help=set_help)
