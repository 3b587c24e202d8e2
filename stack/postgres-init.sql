-- Run once by the postgres image when its volume is new: the Prefect server's database
-- (POSTGRES_DB creates the MLflow one).
CREATE DATABASE prefect;
-- The sweeps' Optuna studies (optuna-dashboard reads them).
CREATE DATABASE optuna;
