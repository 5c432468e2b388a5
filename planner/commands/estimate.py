"""Commands of this area (filled in by its owner)."""


def register(groups):
    """Attach this module's commands to the CLI groups."""
