"""Durability: the one place for what keeps files whole across crashes and damage.

- ``atomic``: write through a temporary file, fsync, rename;
- ``integrity``: sizes and sha256 recorded when written, checked before use, and the one
  way a damaged file or folder is set aside (``<name>.damaged-<time>``, never deleted);
- ``scratch``: temporary folders outside the project, removed once their owner is gone;
- ``lock``: one run per project folder, and staging folders made under it.
"""
