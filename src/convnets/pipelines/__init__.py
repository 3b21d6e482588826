"""The project's pipelines, one package each; ``pipeline_registry.py`` names them.

``RELEASES_TRAINING_STATE``: the tag of the node whose outputs are the last ones made
from a namespace's training; after a successful run that included it,
``<namespace>.training_state`` is deleted (``hooks.TrainingStateHook``).
"""

RELEASES_TRAINING_STATE = "releases_training_state"
