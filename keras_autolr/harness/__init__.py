"""The experiment harness: tasks, models, data, the method registry, runner and reports.

`tasks` (the one task registry), `models`, `datasets`, `methods` (LR methods
by name), `runner` (resumable runs and grids), `reports`, `metrics`,
`timing`, `profiles` and `leaderboard` (AlgoPerf-style scoring). It imports
only the runtime; the pipelines and the CLI build on it.
"""

__all__ = []
