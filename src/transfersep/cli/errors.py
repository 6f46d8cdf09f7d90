"""The command's own user error (kept apart so that every verb's module can raise it)."""


class UserError(Exception):
    """A problem with the command line or the files given; printed without a traceback."""
