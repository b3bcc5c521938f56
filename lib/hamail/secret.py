# SPDX-License-Identifier: GPL-2.0-or-later
"""A wrapper for secrets so that they cannot reach logs, argv or exception text by accident."""

__all__ = ["Secret"]


class Secret:
    """A secret value: prints as '***'; only reveal() gives the text, for stdin or a protocol library."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret text; pass it only to stdin, a file of mode 0600 or a protocol library."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __reduce__(self):  # never pickle the value into a file or a pipe by accident
        raise TypeError("Secret values cannot be pickled")
