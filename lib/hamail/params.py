# SPDX-License-Identifier: GPL-2.0-or-later
"""Typed, immutable parameter declarations: one table gives validation, metadata and help."""

from __future__ import annotations

from hamail.secret import Secret

__all__ = ["Kind", "Param", "ParamTable", "ParamError", "Config", "parse_boolean", "parse_duration"]

_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "n"})
_UNIT_SECONDS = {"": 1.0, "ms": 0.001, "msec": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0,
                 "h": 3600.0, "hr": 3600.0}
# Parameter tables are built at every agent start: this module avoids dataclasses, typing and re
# (10-25 ms of imports each) and keeps its classes small by hand.


class _KindValue:
    """One value type: its name and the OCF <content type> it is published as."""

    __slots__ = ("value", "content_type")

    def __init__(self, value: str, content_type: str) -> None:
        self.value, self.content_type = value, content_type

    def __repr__(self) -> str:
        return f"Kind.{self.value.upper()}"


class Kind:
    """The value types a parameter can have (content types are what both ra-api-1.dtd and OCF 1.1 accept)."""

    STRING = _KindValue("string", "string")
    INTEGER = _KindValue("integer", "integer")
    BOOLEAN = _KindValue("boolean", "boolean")
    SELECT = _KindValue("select", "string")
    DURATION = _KindValue("duration", "time")
    PORT = _KindValue("port", "integer")
    PATH = _KindValue("path", "string")


def parse_boolean(text: str) -> bool:
    """Pacemaker's idea of a boolean (crm_is_true), strict about anything else."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


def parse_duration(text: str) -> float:
    """Seconds from '30', '30s', '500ms', '5min', '2h' (Pacemaker's time units)."""
    clean = text.strip().lower()
    number = clean.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = clean[len(clean.rstrip("abcdefghijklmnopqrstuvwxyz")):]
    if unit not in _UNIT_SECONDS or not number or not number.replace(".", "", 1).isdigit():
        raise ValueError(f"{text!r} is not a duration (e.g. 30, 30s, 500ms, 5min)")
    return float(number) * _UNIT_SECONDS[unit]


class Param:
    """One instance parameter of an agent: its type, default, constraints and documentation (immutable)."""

    __slots__ = ("name", "kind", "shortdesc", "longdesc", "default", "required", "unique_group", "reloadable",
                 "private", "deprecated", "replaced_with", "choices", "minimum", "maximum", "fallback")

    def __init__(self, name: str, kind: Kind, shortdesc: str, longdesc: str = "",
                 default: str | None = None, required: bool = False, unique_group: str | None = None,
                 reloadable: bool = False, private: bool = False, deprecated: bool = False,
                 replaced_with: str | None = None, choices: tuple = (), minimum: int | None = None,
                 maximum: int | None = None, fallback: str | None = None) -> None:
        """``fallback``: the value an invalid one is read as, where the upstream agent tolerates invalid values
        (heartbeat's shell agents read anything but a known "true" as false): parsing warns instead of failing."""
        values = locals()
        for slot in self.__slots__:
            object.__setattr__(self, slot, values[slot])
        object.__setattr__(self, "choices", tuple(choices))
        self._check()

    def __setattr__(self, name, value):
        raise AttributeError("Param is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Param) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Param({self.name!r}, {self.kind})"

    def _check(self) -> None:
        if not (self.name.isidentifier() and self.name.isascii()):
            raise ValueError(f"bad parameter name {self.name!r}")
        if self.kind is Kind.SELECT and not self.choices:
            raise ValueError(f"select parameter {self.name} needs choices")
        if self.required and self.default is not None:
            raise ValueError(f"required parameter {self.name} cannot have a default")
        if self.default is not None:
            self.convert(self.default)  # a table with a bad default is a programming error
        if self.fallback is not None:
            self.convert(self.fallback)

    @property
    def env_name(self) -> str:
        """The environment variable Pacemaker passes the value in."""
        return "OCF_RESKEY_" + self.name

    def convert(self, text: str):
        """The typed value of text, or ValueError with a message naming the problem (never the value if private)."""
        try:
            return self._convert(text)
        except ValueError as exc:
            if self.private:
                raise ValueError("invalid value (not shown: private parameter)") from None
            raise exc

    def _convert(self, text: str):
        kind = self.kind
        if kind is Kind.STRING:
            return Secret(text) if self.private else text
        if kind is Kind.BOOLEAN:
            return parse_boolean(text)
        if kind is Kind.SELECT:
            if text not in self.choices:
                raise ValueError(f"{text!r} is not one of {', '.join(self.choices)}")
            return text
        if kind is Kind.DURATION:
            return parse_duration(text)
        if kind is Kind.PATH:
            if not text.startswith("/") or "\0" in text:
                raise ValueError(f"{text!r} is not an absolute path")
            return text
        try:
            number = int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        low, high = (1, 65535) if kind is Kind.PORT else (self.minimum, self.maximum)
        if low is not None and number < low or high is not None and number > high:
            raise ValueError(f"{number} is out of range {low if low is not None else ''}..{high if high is not None else ''}")
        return number

    def describe_type(self) -> str:
        """A short human description of the accepted values, for help text."""
        if self.kind is Kind.SELECT:
            return "one of " + "|".join(self.choices)
        return self.kind.value


class ParamError:
    """One invalid or missing parameter, with a readable message."""

    __slots__ = ("name", "message")

    def __init__(self, name: str, message: str) -> None:
        self.name, self.message = name, message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamError) and (self.name, self.message) == (other.name, other.message)

    def __repr__(self) -> str:
        return f"ParamError({self.name!r}, {self.message!r})"

    def __str__(self) -> str:
        return f"parameter {self.name}: {self.message}"


class Config:
    """The typed values of one invocation's parameters; immutable, read by name or attribute."""

    __slots__ = ("_values", "_given", "tolerated")

    def __init__(self, values, given: frozenset, tolerated: tuple = ()) -> None:
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "_given", given)
        # ParamErrors of invalid values read as their parameter's fallback: warnings, not errors.
        object.__setattr__(self, "tolerated", tuple(tolerated))

    def __getitem__(self, name: str):
        return self._values[name]

    def __getattr__(self, name: str):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("Config is immutable")

    def given(self, name: str) -> bool:
        """Whether the user set this parameter (rather than it taking its default)."""
        return name in self._given

    def replace(self, **values):
        """A copy with some values replaced (counted as given), of the same class."""
        merged = dict(self._values)
        merged.update(values)
        return type(self)(merged, self._given | frozenset(values), self.tolerated)

    def secrets(self) -> list[Secret]:
        """Every private value, so log and exit-reason text can be scrubbed of them."""
        return [v for v in self._values.values() if isinstance(v, Secret) and v]

    def __repr__(self) -> str:
        return f"Config({self._values!r})"


class ParamTable:
    """An agent's parameters, declared once."""

    def __init__(self, *params: Param) -> None:
        names = [p.name for p in params]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"duplicate parameters: {sorted(duplicates)}")
        for p in params:
            if p.replaced_with and p.replaced_with not in names:
                raise ValueError(f"{p.name} is replaced by unknown {p.replaced_with}")
        self._params = tuple(params)
        self._by_name = {p.name: p for p in params}

    def __getitem__(self, index):  # type: ignore[override]
        return self._params[index]

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self):
        return iter(self._params)

    def get(self, name: str) -> Param | None:
        """The parameter of that name, if declared."""
        return self._by_name.get(name)

    def parse(self, environ) -> tuple[Config, list[ParamError]]:
        """Typed values from OCF_RESKEY_* variables, and every problem found (missing, invalid).

        Invalid values are replaced by their default (or None) so that a lenient caller, such as
        stop, can still work with what is valid.
        """
        values: dict = {}
        given: set[str] = set()
        errors: list[ParamError] = []
        tolerated: list[ParamError] = []
        # An empty value means unset, as in the shell agents' ${OCF_RESKEY_x:-default}.
        raw = {p.name: environ.get(p.env_name, "") for p in self._params}
        for p in self._params:
            if p.deprecated and p.replaced_with and raw[p.name] and not raw[p.replaced_with]:
                raw[p.replaced_with] = raw[p.name]
        for p in self._params:
            text = raw[p.name]
            if text:
                try:
                    values[p.name] = p.convert(text)
                    given.add(p.name)
                    continue
                except ValueError as exc:
                    if p.fallback is None:
                        errors.append(ParamError(p.name, str(exc)))
                    else:
                        tolerated.append(ParamError(p.name, f"{exc}: read as {p.fallback}, as the upstream agent does"))
                        values[p.name] = p.convert(p.fallback)
                        given.add(p.name)
                        continue
            elif p.required:
                errors.append(ParamError(p.name, "is required but not set"))
            values[p.name] = p.convert(p.default) if p.default is not None else None
        return Config(values, frozenset(given), tolerated), errors

    def help_text(self) -> str:
        """Parameter help for the usage action: name, type, default, short description."""
        lines = []
        for p in self._params:
            flags = [p.describe_type()]
            if p.required:
                flags.append("required")
            if p.default is not None and not p.private:
                flags.append(f"default {p.default}")
            if p.deprecated:
                flags.append(f"deprecated{', use ' + p.replaced_with if p.replaced_with else ''}")
            lines.append(f"  {p.name} ({'; '.join(flags)})\n      {p.shortdesc}")
        return "\n".join(lines)
