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


def one_line(text: str, limit: int = 240) -> str:
    """An error as one table cell: its first line, cut at `limit` characters (the run keeps it whole)."""
    line = (str(text or "").strip().splitlines() or [""])[0].replace("|", "/")
    return line if len(line) <= limit else line[:limit - 3] + "..."
