"""The serving wing: the model a client calls, and how it reaches the MLflow registry.

- ``model``: ``ImageClassifier`` (the MLflow pyfunc) and ``classify``, shared with ``predict``;
- ``model_code``: the file MLflow logs as the model's code ("model from code");
- ``servable_dataset``: the Kedro dataset that logs, registers and crowns a version;
- ``model_source``: the Kedro datasets that find a registered or local model to use.

``python -m convnets.serve`` (``convnets/serve.py``) is the command that serves one.
"""
