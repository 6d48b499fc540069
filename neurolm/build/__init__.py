"""The build: every stage of ``neurolm.stages`` chained by their ``outputs``, run only where lineage says so.

- :mod:`neurolm.build.config` — the typed build config (YAML), made of the stages' own params;
- :mod:`neurolm.build.plan` — steps, keys and run/skip decisions (pure; ``--dry-run``);
- :mod:`neurolm.build.run` — running the steps in order, recording each in the build state;
- :mod:`neurolm.build.report` — the plan and the result as text and markdown.
"""
