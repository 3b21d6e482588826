"""The errors a user is expected to meet, each with a message that says what to do.

``kedro run`` (``convnets.cli``) shows them as one message and exit status 2, without
a traceback; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input or a state of the project folder that the user can fix: the message
    says what is wrong, why, and what to do."""
