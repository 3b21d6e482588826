"""Node tags a pipeline declares and the project's hooks act on."""

# On the node whose outputs are the last ones made from a namespace's training: after a
# successful run that included it, ``<namespace>.training_state`` is deleted
# (``hooks.TrainingStateHook``).
RELEASES_TRAINING_STATE = "releases_training_state"
