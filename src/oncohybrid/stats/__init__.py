"""Statistics for imaging studies (issue #16): agreement, ROC, survival, diagnostic accuracy,
descriptive tables and their figures.

Pure computation on arrays and data frames: nothing here reads files, the database or the
network (``services.stats`` reads the CSV, ``cli/stats_cmds.py`` prints). Every function
returns plain dataclasses whose numbers carry their method and 95 % confidence interval, and
raises :class:`oncohybrid.errors.InputError` (exit code 2) for data it cannot use (one class
only, fewer than two raters, non-numeric values).
"""
