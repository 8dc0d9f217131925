"""The one error type users see: a field, what is wrong with it, and the fix."""


class ConfigError(ValueError):
    """Bad user input, reported as one line before any heavy work starts."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def first_line(e: BaseException) -> str:
    """An exception's message in one line (its type when it has none)."""
    text = str(e).strip()
    return text.splitlines()[0].strip() if text else type(e).__name__
