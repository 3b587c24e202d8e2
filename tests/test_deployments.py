"""prefect.yaml against the flows it deploys: every committed flow has a quick deployment on the
studyflow work pool whose parameters the flow takes (read without importing the flow modules), and
the deployments run the worker's own checkout of the code (no image, no remote storage)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import yaml
from commands import REPO as REPO_ROOT


def _deployments() -> list[dict]:
    return yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]


def _committed_flow_files() -> list[Path]:
    """The flow modules in the repository (a colleague's uncommitted file is not yet deployable)."""
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "flows/*.py"], capture_output=True, text=True)
    if listed.returncode != 0:
        return sorted((REPO_ROOT / "flows").glob("*.py"))
    return [REPO_ROOT / name for name in listed.stdout.split()]


def _flows_in(path: Path) -> dict[str, set[str]]:
    """The flows of a module and their parameters, found without importing it (no TensorFlow): a
    function decorated with @flow(...) takes its own arguments; one decorated with
    @part_flow(name, SomeConfig) takes the config's fields (the configs import no TensorFlow)."""
    from studyflow.config import parts, study, sweeps

    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Name) and target.id == "flow":
                    found[node.name] = {argument.arg for argument in node.args.args}
                elif isinstance(target, ast.Name) and target.id == "part_flow":
                    config_name = decorator.args[1].id
                    config = next(
                        getattr(module, config_name)
                        for module in (parts, study, sweeps)
                        if hasattr(module, config_name)
                    )
                    found[node.name] = {"profile", *config.model_fields}
    return found


def test_every_flow_has_a_quick_deployment_on_the_studyflow_pool():
    deployments = _deployments()
    declared = {deployment["entrypoint"] for deployment in deployments}
    flows = {f"flows/{path.name}:{name}" for path in _committed_flow_files() for name in _flows_in(path)}
    missing = sorted(flows - declared)
    assert not missing, (
        f"flows without a deployment: {missing}; add a 5-line block to prefect.yaml "
        "(see its header) and run `make deployments`"
    )
    for deployment in deployments:
        assert deployment["name"] == "quick"
        assert deployment["work_pool"]["name"] == "studyflow"
        assert deployment["parameters"]["profile"] == "quick"
        path, _, function = deployment["entrypoint"].partition(":")
        arguments = _flows_in(REPO_ROOT / path).get(function)
        assert arguments is not None, f"{deployment['entrypoint']} is not a flow"
        assert set(deployment["parameters"]) <= arguments, deployment["entrypoint"]


def test_deployments_run_local_code_from_the_workers_checkout():
    config = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    assert config["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $STUDYFLOW_CODE_DIR }}"}}
    ]
    assert not config.get("build") and not config.get("push")  # no image, no remote storage
