"""Keras model builders. They know nothing of MLflow or Prefect."""
