"""The error a built-in model build raises (its own module, so the builders need not import the registry)."""


class ModelBuildError(RuntimeError):
    """A built-in model cannot be built here; the message says what to install."""
