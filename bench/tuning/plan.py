"""What the tuning benchmark measures: the models, the settings per section, and how much work each
measurement does (`Plan`; `QUICK` is the smoke test's: every section and every kind of setting,
on MLP-1 only, with tiny step counts)."""

from __future__ import annotations

from dataclasses import dataclass, field

SECTIONS = ("threads", "onednn", "precision", "pipeline", "xla", "batch", "logging", "startup")
TRAINING_SECTIONS = set(SECTIONS[:6])
MODEL_NAMES = ("CNN-1", "MLP-1", "MTL")
STUDY_BATCH_SIZE = 128  # TrainSettings.batch_size's default; every other batch size is compared with it
MTL_LOSS_WEIGHTS = {"item": 0.5, "group": 0.5}
# Variables a "default" process must not inherit, or it would not be the default.
TUNING_VARIABLES = ("TF_ENABLE_ONEDNN_OPTS", "TF_SET_ONEDNN_FPMATH_MODE", "MLFLOW_ENABLE_ASYNC_LOGGING")
# The start-up section's imports, each timed in a fresh process.
IMPORTS = {
    "python (no import)": "pass",
    "tensorflow": "import tensorflow",
    "keras": "import keras",
    "mlflow": "import mlflow",
    "mlflow.keras": "import mlflow.keras",
    "prefect": "import prefect",
    "optuna": "import optuna",
}


@dataclass(frozen=True)
class Plan:
    """How much work each measurement does; `--quick` shrinks it to a smoke test."""

    train_size: int = 10_000  # images the throughput runs cycle through
    warmup_steps: dict = field(default_factory=lambda: {"CNN-1": 10, "MLP-1": 20, "MTL": 4})
    timed_steps: dict = field(default_factory=lambda: {"CNN-1": 40, "MLP-1": 100, "MTL": 12})
    skipped_steps: int = 2  # at the start of every timed fit call: iterator set-up, prefetch fill
    repeats: int = 5
    accuracy_train_size: int = 10_000  # one epoch on these, then the whole test set
    accuracy_test_size: int | None = None
    logging_train_size: int = 20_000
    logging_epochs: int = 3
    logging_repeats: int = 3
    startup_repeats: int = 3
    models: tuple[str, ...] = MODEL_NAMES
    settings: tuple[str, ...] | None = None  # the settings measured, by name (None: every one)
    imports: tuple[str, ...] = tuple(IMPORTS)

    def chosen(self, settings: list, sections: set[str]) -> list:
        """Those of `settings` (Setting or ProcessSetting) in `sections` that this plan measures."""
        return [
            setting
            for setting in settings
            if setting.section in sections and (self.settings is None or setting.name in self.settings)
        ]

    def steps(self, model: str, batch_size: int) -> tuple[int, int]:
        """Warm-up and timed steps at this batch size: the same samples as at the study's batch size."""
        scale = STUDY_BATCH_SIZE / batch_size
        return (max(2, round(self.warmup_steps[model] * scale)), max(1, round(self.timed_steps[model] * scale)))


QUICK = Plan(
    train_size=2_048,
    warmup_steps={"CNN-1": 2, "MLP-1": 2, "MTL": 1},
    timed_steps={"CNN-1": 3, "MLP-1": 3, "MTL": 2},
    skipped_steps=1,
    repeats=1,
    accuracy_train_size=512,
    accuracy_test_size=500,
    logging_train_size=2_048,
    logging_epochs=2,
    logging_repeats=1,
    startup_repeats=1,
    models=("MLP-1",),
    # one setting of each kind: threads set, an environment variable with accuracy, each in-process lever
    settings=(
        "intra_op 1 / inter_op 1",
        "oneDNN bf16 math mode (TF_SET_ONEDNN_FPMATH_MODE=BF16)",
        "tf.data cache+shuffle+prefetch",
        "jit_compile=True (XLA)",
        "mixed_bfloat16",
        "batch 256",
    ),
    imports=("python (no import)", "optuna"),
)


@dataclass(frozen=True)
class Setting:
    """A setting applied inside one process (the model, its compilation or its input)."""

    name: str
    section: str
    pipeline: str = "numpy"  # or "tf.data"
    batch_size: int = STUDY_BATCH_SIZE
    jit_compile: bool = False
    policy: str = "float32"
    accuracy: bool = False  # also train one epoch and report test accuracy


IN_PROCESS = [
    Setting("default", "reference", accuracy=True),
    Setting("tf.data cache+shuffle+prefetch", "pipeline", pipeline="tf.data"),
    Setting("jit_compile=True (XLA)", "xla", jit_compile=True),
    Setting("mixed_bfloat16", "precision", policy="mixed_bfloat16", accuracy=True),
    *(Setting(f"batch {size}", "batch", batch_size=size, accuracy=True) for size in (64, 256, 512)),
]


@dataclass(frozen=True)
class ProcessSetting:
    """A setting TensorFlow reads once at start-up: it gets a process of its own."""

    name: str
    section: str
    env: dict = field(default_factory=dict)
    threads: tuple[int, int] | None = None  # intra_op, inter_op
    accuracy: bool = False


PROCESS_SETTINGS = [
    *(
        ProcessSetting(f"intra_op {intra} / inter_op {inter}", "threads", threads=(intra, inter))
        for intra in (1, 2)
        for inter in (1, 2)
    ),
    ProcessSetting("TF_ENABLE_ONEDNN_OPTS=0", "onednn", env={"TF_ENABLE_ONEDNN_OPTS": "0"}),
    ProcessSetting(
        "oneDNN bf16 math mode (TF_SET_ONEDNN_FPMATH_MODE=BF16)",
        "precision",
        env={"TF_SET_ONEDNN_FPMATH_MODE": "BF16"},
        accuracy=True,
    ),
]
