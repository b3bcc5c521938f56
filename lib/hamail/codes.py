# SPDX-License-Identifier: GPL-2.0-or-later
"""Named exit codes as cheap IntEnum look-alikes: the base of OCFExit (hamail.ocf) and FenceExit (hamail.fence)."""

from __future__ import annotations

__all__ = ["Code", "CodeTable"]

# These behave like IntEnum members (OCFExit.SUCCESS, OCFExit(7), .name, .value, iteration),
# built by hand because importing enum and creating enum classes costs ~7 ms at every agent run.


class Code(int):
    """One named exit code: an int that knows its name."""

    def __new__(cls, value: int, name: str) -> Code:
        code = int.__new__(cls, value)
        code.name = name
        return code

    @property
    def value(self) -> int:
        """The plain integer."""
        return int(self)

    def __repr__(self) -> str:
        return f"<{self.name}: {int(self)}>"

    __str__ = __repr__


class CodeTable(type):
    """Metaclass giving a table of Codes enum-style lookup: Table(7) is the member of value 7."""

    def __new__(mcs, name, bases, namespace):
        members = {k: Code(v, k) for k, v in namespace.items() if k.isupper() and isinstance(v, int)}
        namespace.update(members)
        by_value: dict = {}
        for member in members.values():
            by_value.setdefault(int(member), member)
        namespace["_by_value"] = by_value
        return super().__new__(mcs, name, bases, namespace)

    def __call__(cls, value: int) -> Code:
        try:
            return cls._by_value[int(value)]
        except KeyError:
            raise ValueError(f"{value!r} is not a valid {cls.__name__}") from None

    def __iter__(cls):
        return iter(cls._by_value.values())

    def __contains__(cls, value) -> bool:
        return int(value) in cls._by_value
