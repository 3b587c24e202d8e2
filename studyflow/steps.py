"""Idempotent steps: a finished step is reused, not redone, when nothing it depends on changed.

A step is a Prefect task whose result is persisted under a key made of
- its resolved inputs (configuration, widths, settings; arrays by content, so the data's digest),
- the code it runs: the source of its module and of every project module that module imports,
  directly or not, so a change inside a helper the task calls invalidates it,
- the tracking store it records into (a result that names an MLflow run is only valid there).

This is Prefect's own caching (a `CachePolicy` and persisted results, which also show the task as
Cached in the Prefect UI), with two additions Prefect cannot know about:
- the key covers helper modules, where Prefect's TASK_SOURCE covers only the task function;
- a cached result that names an MLflow run is used only if that run still exists and FINISHED in
  the current store, so the story in MLflow and in Prefect cannot disagree; otherwise it is redone.

A step that was killed or failed never wrote a result, so a rerun after a crash redoes exactly the
work that was in flight. Two identical commands at once train each step once: a step's key is
locked while it runs (Prefect's SERIALIZABLE cache isolation with file locks), the second waits
and reuses the result; a lock whose process died is taken over. `force=True` (the flows' `force`
parameter) redoes everything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect.cache_policies import CachePolicy
from prefect.locking.filesystem import FileSystemLockManager
from prefect.types._datetime import now
from pydantic import BaseModel

from studyflow import paths, processes, tracking
from studyflow.code_digest import code_digest

KEY_VERSION = "1"  # bump when the key's recipe itself changes


# ---------------------------------------------------------------------------------------- the key


def fingerprint(value: Any) -> Any:
    """A JSON-able, order-stable stand-in for a step input; arrays by content (their digest).

    Unknown types are an error, so a key is never made from an object's repr by accident.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.generic):
        return fingerprint(value.item())
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {
            "ndarray": hashlib.sha256(array.tobytes()).hexdigest(),
            "dtype": str(array.dtype),
            "shape": list(array.shape),
        }
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "get_weights") and hasattr(value, "to_json"):  # a Keras model: its architecture and weights
        digest = hashlib.sha256(value.to_json().encode())
        for weights in value.get_weights():
            digest.update(np.ascontiguousarray(weights).tobytes())
        return {"keras_model": digest.hexdigest()}
    if isinstance(value, pd.DataFrame):
        return {"dataframe": hashlib.sha256(value.to_csv().encode()).hexdigest()}
    if isinstance(value, BaseModel):
        return fingerprint(value.model_dump(mode="python"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        return {"dataclass": type(value).__qualname__, **{name: fingerprint(item) for name, item in fields.items()}}
    if isinstance(value, dict):
        return {str(key): fingerprint(item) for key, item in sorted(value.items(), key=lambda pair: str(pair[0]))}
    if isinstance(value, (list, tuple)):
        return [fingerprint(item) for item in value]
    raise TypeError(f"cannot key a step on a {type(value).__name__}; list it in the step's ignored inputs")


def step_key(function: Callable, inputs: dict[str, Any], store: str) -> str:
    """The cache key of one call of `function`: inputs, code closure, tracking store."""
    payload = {
        "version": KEY_VERSION,
        "step": f"{function.__module__}.{function.__qualname__}",
        "code": code_digest(function.__module__),
        "store": store,
        "inputs": {name: fingerprint(value) for name, value in sorted(inputs.items())},
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return f"{function.__name__}-{hashlib.sha256(text.encode()).hexdigest()[:40]}"


@dataclass
class StepCachePolicy(CachePolicy):
    """Prefect cache policy keyed by `step_key`; `ignored` inputs (run handles) are left out."""

    ignored: tuple[str, ...] = ()

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> str:
        keyed = {name: value for name, value in inputs.items() if name not in self.ignored}
        return step_key(task_ctx.task.fn, keyed, tracking.tracking_uri())


# ------------------------------------------------------------------------------------- the steps
# (`tasks.prefect_task.step_task` makes a step task with this policy.)


def step_results_dir() -> Path:
    """Where step results live: beside the tracking store they refer to (mlruns/ by default)."""
    return paths.step_results_dir()


# Said when a step waits for another process doing the same step: a command otherwise sits silent,
# for as long as that step takes.
WAITING_FOR_STEP = "[studyflow] the same step is running in process {owner}: waiting for its result"


def _say_waiting(lock: Path) -> None:
    try:
        owner = json.loads(lock.read_text()).get("process") or "(unknown)"
    except (OSError, ValueError):  # released meanwhile
        return
    print(WAITING_FOR_STEP.format(owner=owner), flush=True)


class ProcessAwareLockManager(FileSystemLockManager):
    """Prefect's file locks, each naming the process that holds it, so that a lock left behind by a
    killed process (kill -9 runs no clean-up) is taken over instead of waited on for ever.

    A lock file appears whole or not at all (written aside, then hard-linked into place, which fails
    if another process got there first), so no reader ever sees a half-written or owner-less lock.
    """

    def acquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        self._ensure_lock_files_directory_exists()
        path = self._lock_path_for_key(key)
        while True:
            if self.is_locked(key) and not self.is_lock_holder(key, holder):
                _say_waiting(path)
                if not self.wait_for_lock(key, acquire_timeout):
                    return False
            expiration = None if hold_timeout is None else now("UTC") + timedelta(seconds=hold_timeout)
            record = {
                "holder": holder,
                "expiration": None if expiration is None else str(expiration),
                "process": processes.identity(),
            }
            aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
            aside.write_text(json.dumps(record))
            try:
                os.link(aside, path)  # atomic: creates the lock only if there is none
            except FileExistsError:
                if self.is_lock_holder(key, holder):
                    return True
                continue  # another process took it first: wait for it again
            finally:
                aside.unlink(missing_ok=True)
            self._locks[key] = {"holder": holder, "expiration": expiration, "path": path}
            return True

    def is_locked(self, key: str, use_cache: bool = False) -> bool:
        path = self._lock_path_for_key(key)
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            self._locks.pop(key, None)
            return False
        owner = record.get("process", "")
        if owner and processes.is_alive(owner) is False:
            self._take_over(path, record)
            self._locks.pop(key, None)
            return self.is_locked(key)  # another waiter may have taken it over and locked it since
        return super().is_locked(key, use_cache=use_cache)

    @staticmethod
    def _take_over(path: Path, dead: dict) -> None:
        """Remove a dead process's lock: moved aside atomically, so two waiters cannot both remove it;
        a live lock moved aside by mistake (taken in between) is put back."""
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.dead")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return  # another waiter removed it first
        try:
            if json.loads(aside.read_text()).get("holder") != dead.get("holder"):
                os.link(aside, path)  # not the dead one: restore it (fails only if yet another took the key)
        except (OSError, ValueError):
            pass
        finally:
            aside.unlink(missing_ok=True)


def step_policy(task) -> CachePolicy:
    """The task's step policy, serialised per key: a second identical command waits for the first's
    step to finish and then reuses its result, instead of training the same model twice."""
    return task.cache_policy.configure(
        isolation_level="SERIALIZABLE", lock_manager=ProcessAwareLockManager(step_results_dir() / "locks")
    )


def configured_step(task, force: bool = False):
    """The step task with its persisted result, its serialised cache key, and `force` (redo)."""
    return task.with_options(refresh_cache=force, result_storage=step_results_dir(), cache_policy=step_policy(task))


def run_step(
    task,
    *args: Any,
    force: bool = False,
    parent: tracking.RunRecorder | None = None,
    also_link: tracking.RunRecorder | None = None,
    **kwargs: Any,
):
    """Call a step task: reuse its persisted result, unless `force` or its MLflow run is gone.

    A reused result's MLflow run is linked from `parent` (tag `studyflow.reused_run_ids`), so the new
    parent run lists every model it is made of, whether trained now or before; and from `also_link`,
    the part's parent run when `parent` is a replicate group between the two.
    """
    if parent is not None:
        args = (parent, *args)
    result = configured_step(task, force)(*args, **kwargs)
    return checked_result(
        task, result, parent, force, redo=lambda: configured_step(task, True)(*args, **kwargs), also_link=also_link
    )


def checked_result(
    task,
    result,
    parent: tracking.RunRecorder | None,
    force: bool,
    redo: Callable[[], Any],
    also_link: tracking.RunRecorder | None = None,
):
    """A step's result as run_step returns it: redone (`redo()`) if the MLflow run it names is not FINISHED
    in this store, linked from `parent` (and `also_link`) if it was reused from an earlier flow run."""
    run_id = getattr(result, "run_id", None)
    if parent is None or not run_id or force:
        return result
    run = _finished_run(parent.client, run_id)
    if run is None:
        print(
            f"[studyflow] {task.name}: the cached result names run {run_id}, which is not FINISHED in "
            f"{tracking.tracking_uri()}; redoing the step"
        )
        result = redo()
    elif run.data.tags.get("mlflow.parentRunId") != parent.run_id:
        link_reused_run(parent, run_id)
        if also_link is not None and also_link.run_id != parent.run_id:
            link_reused_run(also_link, run_id)
        print(
            f"[studyflow] {run.info.run_name}: reused finished run {run_id} (same inputs, code and "
            f"data); force=True redoes it"
        )
    return result


def _finished_run(client, run_id: str):
    """The run, if it exists, is active and FINISHED in this store; else None."""
    try:
        run = client.get_run(run_id)
    except Exception:  # deleted for good, or never in this store
        return None
    return run if run.info.status == "FINISHED" and run.info.lifecycle_stage == "active" else None


def link_reused_run(parent: tracking.RunRecorder, run_id: str) -> None:
    current = parent.client.get_run(parent.run_id).data.tags.get(tracking.Tag.REUSED_RUN_IDS, "")
    run_ids = [value for value in current.split(",") if value]
    if run_id not in run_ids:
        parent.set_tags({tracking.Tag.REUSED_RUN_IDS: ",".join([*run_ids, run_id])})
