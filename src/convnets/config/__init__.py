"""Configuration: how conf/ is read, and the one answer to "is this run's configuration
valid?", asked once before TensorFlow is imported.

- ``loader``: ``ProjectConfigLoader`` (Kedro's OmegaConf loader with the registry's
  training pipelines and the environments' training overrides);
- ``keys``: environments, unknown keys (typos) with the closest known one;
- ``costs``: what image and batch sizes would cost on the disk and in memory;
- ``check``: the run's whole check (keys, values, pipeline combination, costs), called by
  ``cli.py`` before any import of the pipelines and by the guard hook in a session;
- ``context``: ``ProjectContext``, whose parameter validation keeps a bad section for
  the check to report.
"""
