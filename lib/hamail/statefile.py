"""Small per-instance state files under HA_RSCTMP, written atomically."""

from __future__ import annotations

import os

__all__ = ["rsctmp", "StateFile"]


def rsctmp(environ) -> str:
    """The directory for volatile agent state (cleared at boot)."""
    return environ.get("HA_RSCTMP", "") or "/run/resource-agents"


class StateFile:
    """One small text file holding an instance's state; absent means stopped."""

    def __init__(self, directory: str, name: str) -> None:
        self.path = os.path.join(directory, name.replace("/", "_"))

    def read(self) -> str | None:
        """The stored text, None when absent."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                return handle.read().strip()
        except FileNotFoundError:
            return None

    def write(self, text: str) -> None:
        """Replace the content atomically (a crash leaves the old or the new text, never half)."""
        os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, self.path)

    def remove(self) -> None:
        """Delete the file (absent is fine)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
