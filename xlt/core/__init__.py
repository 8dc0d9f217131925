"""The bottom layer: what every other layer shares and nothing here depends on.

Errors users see (`errors`), credential scrubbing (`secrets`), console lines (`console`),
metric names (`metrics`), MLflow tag names (`tags`) and the devices a job may use (`devices`).
"""
