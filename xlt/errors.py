"""The one error type users see: a field, what is wrong with it, and the fix."""


class ConfigError(ValueError):
    """Bad user input, reported as one line before any heavy work starts."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
