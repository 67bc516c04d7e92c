"""A value computed on first use and kept on the instance.

What :func:`functools.cached_property` does, without the lock it takes on every first use
in Python 3.11: statements and entries are read by the million during verification, and
each computes its canonical bytes, its hash and its parsed body once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class once(Generic[T]):  # noqa: N801 - used as a decorator, like cached_property
    """Decorate a method of one argument: its result replaces it on the instance."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> once[T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | once[T]:
        if instance is None:
            return self
        value = self.compute(instance)
        # A non-data descriptor: from now on the instance's own attribute is found first.
        instance.__dict__[self.name] = value
        return value


def known(instance: object, **values: Any) -> None:
    """Give ``instance`` values it would otherwise compute (its :class:`once` attributes) or
    marks only this process knows, where the value is already at hand.

    The instances are frozen dataclasses; what is kept this way is never compared, hashed or
    written out, and each use says beside it why the value is the one computing would give.
    """
    vars(instance).update(values)


def recalled(instance: object, name: str) -> Any:
    """A value :func:`known` gave ``instance``, or None."""
    return vars(instance).get(name)
