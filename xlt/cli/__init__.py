"""The command-line layer: what a person types.

- `app`: the body of run.py's Hydra task (one job, its errors, a single run's sync);
- `precheck`: every job of a command line validated before the first starts;
- `main`: the `xlt` command (`xlt report`, `xlt sync`, `xlt reproduce`);
- `reproduce`: a run again, from its saved snapshot.
"""
