"""The training levers (threads, oneDNN, precision, tf.data, XLA, batch size): each setting's worker
process, then its throughput (and accuracy) against the default of the same model, one row each."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench import common
from bench.tuning.measure import measure_accuracy, measure_throughput, tensorflow_state
from bench.tuning.plan import IN_PROCESS, PROCESS_SETTINGS, STUDY_BATCH_SIZE, Plan, ProcessSetting, Setting
from bench.tuning.workers import run_worker


def run_training_worker(spec: dict) -> dict:
    threads = spec.get("threads")
    import tensorflow as tf  # first, so that the thread counts are set before TensorFlow does any work

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(threads[1])
    plan = Plan(**spec["plan"])
    by_name = {setting.name: setting for setting in IN_PROCESS}
    throughput_settings = [by_name[name] for name in spec["throughput"]]
    accuracy_settings = [by_name[name] for name in spec["accuracy"]]
    result = {"models": {}}
    for model in spec["models"]:
        result["models"][model] = {"throughput": measure_throughput(model, throughput_settings, plan)}
        if accuracy_settings:
            result["models"][model]["accuracy"] = measure_accuracy(model, accuracy_settings, plan)
    result["tensorflow"] = tensorflow_state(tf)
    return result


def training_spec(plan: Plan, throughput: list[Setting], accuracy: list[Setting] = ()) -> dict:
    return {
        "kind": "training",
        "plan": dataclasses.asdict(plan),
        "models": list(plan.models),
        "throughput": [setting.name for setting in throughput],
        "accuracy": [setting.name for setting in accuracy],
    }


def ratio_row(section: str, name: str, model: str, measured: dict, reference: float, extra: str = "") -> dict:
    if "error" in measured:
        print(f"{section:<10} {name:<56} {model:<6} ERROR {measured['error'][:200]}")
        return {"section": section, "setting": name, "model": model, "error": measured["error"]}
    ratio = measured["samples_per_s"] / reference
    print(f"{section:<10} {name:<56} {model:<6} {measured['samples_per_s']:>8,.0f} samples/s  x{ratio:.2f}{extra}")
    return {
        "section": section,
        "setting": name,
        "model": model,
        "samples_per_s": measured["samples_per_s"],
        "samples_per_s_repeats": measured["samples_per_s_repeats"],
        "ratio_to_default": ratio,
        "batch_size": measured.get("batch_size", STUDY_BATCH_SIZE),
    }


def accuracy_note(
    accuracy: dict | None, name: str, reference_name: str = "default", precision: bool = False
) -> tuple[str, dict]:
    if any("error" in (accuracy or {}).get(key, {"error": "missing"}) for key in (name, reference_name)):
        return "", {}
    measured, reference = accuracy[name], accuracy[reference_name]
    difference = measured["test_accuracy"] - reference["test_accuracy"]
    fields = {
        "test_accuracy": measured["test_accuracy"],
        "default_test_accuracy": reference["test_accuracy"],
        "test_accuracy_difference": difference,
        "accuracy_fit_s": measured["fit_s_with_tracing"],
    }
    if "test_group_accuracy" in measured:
        fields["test_group_accuracy"] = measured["test_group_accuracy"]
    identical = precision and difference == 0.0  # a changed arithmetic would move some prediction
    if precision:
        fields["identical_to_default"] = identical
    return (
        f"  test acc {measured['test_accuracy']:.4f} ({difference:+.4f} vs batch 128 float32"
        f"{'; identical: arithmetic unchanged' if identical else ''})"
    ), fields


def pick(worker: dict, model: str, kind: str, name: str = "default") -> dict:
    """One measurement from a worker's result, or an error saying why there is none."""
    found = worker.get("models", {}).get(model, {}).get(kind, {}).get(name)
    return found if found is not None else {"error": worker.get("error", f"no {kind} result for {name}")[:3000]}


def run_training_workers(
    process_settings: list[ProcessSetting],
    in_process: list[Setting],
    plan: Plan,
    workdir: Path,
    default_at_end: bool = True,
) -> dict:
    """Every worker process, in turn. Without `default_at_end` (--quick), the start's default process
    stands for the end's as well: the same worker twice, for a drift a smoke test does not measure."""
    default = IN_PROCESS[:1]
    workers = {}
    if process_settings:  # the default in a process of its own, before and after the settings that need one
        workers["default (start)"] = run_worker("default (start)", training_spec(plan, default), {}, workdir)
        for setting in process_settings:
            spec = {**training_spec(plan, default, default if setting.accuracy else []), "threads": setting.threads}
            workers[setting.name] = run_worker(setting.name, spec, setting.env, workdir)
    if in_process:
        accuracy = default + [setting for setting in in_process if setting.accuracy]
        workers["in-process"] = run_worker(
            "in-process settings", training_spec(plan, default + in_process, accuracy), {}, workdir
        )
    if process_settings:
        workers["default (end)"] = (
            run_worker("default (end)", training_spec(plan, default), {}, workdir)
            if default_at_end
            else workers["default (start)"]
        )
    return workers


def process_rows(model: str, workers: dict, process_settings: list[ProcessSetting], results: dict) -> list[dict]:
    ends = [pick(workers[key], model, "throughput") for key in ("default (start)", "default (end)")]
    pooled = [value for end in ends for value in end.get("samples_per_s_repeats", [])]
    if not pooled:
        print(f"{model}: the default process failed, so the process settings have no reference")
        return []
    start, end = (found.get("samples_per_s", float("nan")) for found in ends)
    reference = common.median(pooled)
    results.setdefault("process_reference", {})[model] = {
        "samples_per_s": reference,
        "start": start,
        "end": end,
        "drift": end / start,
    }
    print(
        f"{'reference':<10} {'default process (start and end pooled)':<56} {model:<6} "
        f"{reference:>8,.0f} samples/s  drift end/start x{end / start:.2f}"
    )
    rows = []
    for setting in process_settings:
        worker = workers[setting.name]
        note, fields = "", {}
        if setting.accuracy:  # against the default's accuracy, measured in the in-process worker
            accuracy = {
                "default": pick(workers.get("in-process", {}), model, "accuracy"),
                setting.name: pick(worker, model, "accuracy"),
            }
            note, fields = accuracy_note(accuracy, setting.name, precision=setting.section == "precision")
        row = ratio_row(setting.section, setting.name, model, pick(worker, model, "throughput"), reference, note)
        rows.append(
            {**row, **fields, "tensorflow": worker.get("tensorflow"), "env": setting.env, "threads": setting.threads}
        )
    return rows


def in_process_rows(model: str, worker: dict, in_process: list[Setting]) -> list[dict]:
    default = pick(worker, model, "throughput")
    if "error" in default:
        print(f"{model}: the in-process default failed: {default['error'][:300]}")
        return []
    accuracy = worker["models"][model].get("accuracy")
    note, fields = accuracy_note(accuracy, "default")
    rows = [
        {
            **ratio_row(
                "reference", "default (in-process, alternated)", model, default, default["samples_per_s"], note
            ),
            **fields,
        }
    ]
    for setting in in_process:
        note, fields = (
            ("", {})
            if not setting.accuracy
            else accuracy_note(accuracy, setting.name, precision=setting.section == "precision")
        )
        measured = pick(worker, model, "throughput", setting.name)
        rows.append(
            {
                **ratio_row(setting.section, setting.name, model, measured, default["samples_per_s"], note),
                **fields,
                "jit_compile": measured.get("jit_compile"),
            }
        )
    return rows


def training_sections(
    selected: set[str], plan: Plan, workdir: Path, results: dict, default_at_end: bool = True
) -> None:
    process_settings = plan.chosen(PROCESS_SETTINGS, selected)
    in_process = plan.chosen(IN_PROCESS[1:], selected)  # the default is measured with every one of them
    workers = results["workers"] = run_training_workers(process_settings, in_process, plan, workdir, default_at_end)
    print("\nsection    setting                                                  model  throughput        ratio")
    rows = results["rows"] = []
    for model in plan.models:
        if process_settings:
            rows += process_rows(model, workers, process_settings, results)
        if in_process:
            rows += in_process_rows(model, workers["in-process"], in_process)
