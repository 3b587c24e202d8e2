-- Run once by stack/postgres-start.sh when the data volume is new: the MLflow server's database
-- (runs and Model Registry) and the Prefect server's.
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
-- The sweeps' Optuna studies (optuna-dashboard reads them).
CREATE DATABASE optuna;
