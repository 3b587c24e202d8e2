"""What each experiment and parent run says about itself in the MLflow UI (its description), and
the experiment kind that makes MLflow 3's UI open our experiments on its model-training pages.

MLflow's UI reads an experiment's kind from the tag `mlflow.experimentKind`: `genai_development`
opens Overview/Traces pages, `custom_model_development` the runs table, metrics charts and models
that training studies need. Without the tag MLflow infers the kind and showed studyflow's
experiments as GenAI ones. Descriptions go where the UI shows them: the `mlflow.note.content` tag
of an experiment or run.
"""

from __future__ import annotations

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
DESCRIPTION_TAG = "mlflow.note.content"

PART_DESCRIPTIONS = {
    "pca": "Part 1 of the study: a 2-D PCA map of MNIST (digit centroids, 95 % ellipses) and how "
    "linearly separable each of the 45 digit pairs is (LinearSVC in 2, 10 and 50 PCA dimensions).",
    "perceptron": "Part 2: the classic perceptron on pairs of MNIST digits (first digit +1, second -1); "
    "training error per iteration, weight heatmaps, the train-test gap. One child run per pair and seed "
    "(several seeds: under a group run per pair, with means and 95 % intervals).",
    "mlp": "Part 3: dense ReLU networks (MLP-1..5 or any widths) on MNIST, 20 epochs in the original; "
    "learning curves, accuracy against training time. One child run per architecture and seed (several "
    "seeds: under a group run per architecture, with means and 95 % intervals).",
    "cnn": "Part 4: convolutional networks (CNN-1..5 or any filters) on MNIST; the architecture with the best "
    "mean validation accuracy goes to the Model Registry as mnist-cnn (alias champion on a win). "
    "One child run per architecture and seed (several seeds: under a group run per architecture, with "
    "means and 95 % intervals).",
    "inspect": "Part 5: inside a CNN (the champion by default): first-layer filters, activation maps of "
    "digits, and deep dreams from a digit and from noise.",
    "mtl": "Part 6: multi-task learning on Fashion-MNIST: one network with an item head (10 classes) and a "
    "group head, the loss weighted by lambda, against two single-task networks. One child run per "
    "model and seed (several seeds: under a group run per model, with means and 95 % intervals).",
    "report": "The study report: every part's latest results beside the original study's, as Markdown and HTML.",
    "sweep-mlp": "Optuna sweeps of MLP depth and widths; one child run per trial, pruned trials tagged.",
    "sweep-cnn": "Optuna sweeps of CNN depth and filters per layer; one child run per trial, pruned trials tagged.",
    "sweep-mtl": "Optuna sweeps of the multi-task loss weight lambda (two objectives: both tasks' validation "
    "accuracy); one child run per trial.",
}


def experiment_tags(part: str) -> dict[str, str]:
    return {EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND, DESCRIPTION_TAG: PART_DESCRIPTIONS.get(part, f"studyflow {part}")}


def parent_description(part: str, profile: str, parameters: dict) -> str:
    """A parent run's description: what the part does, and with which settings this run did it."""
    settings = ", ".join(f"{key}={value}" for key, value in parameters.items() if value is not None)
    return (
        f"{PART_DESCRIPTIONS.get(part, f'studyflow {part}')}\n\nThis run: profile {profile} "
        f"({'the original study' if profile == 'paper' else 'subsets and few epochs, a smoke test'}); "
        f"{settings}."
    )
