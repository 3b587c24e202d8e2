"""Units of work: plain functions, each with a thin Prefect task wrapper where a flow uses it."""

import studyflow  # noqa: F401  (sets library defaults before TensorFlow, MLflow or Prefect load)
