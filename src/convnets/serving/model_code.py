"""The servable model's code, logged as MLflow's "model from code" (no pickled object)."""

from mlflow.models import set_model

from convnets.serving.model import ImageClassifier

set_model(ImageClassifier())
