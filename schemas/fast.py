"""A fast decoder for the input contracts: msgspec types derived from the pydantic models.

pydantic stays the contract and the arbiter. ``FastDecoder`` decodes with msgspec (about
4x faster: the hot path of every consumer); when msgspec refuses a record, the caller
asks pydantic, which either accepts it (msgspec is only stricter, e.g. about numbers
written as strings) or says exactly why not. Soundness, tested in
tests/schemas/test_fast.py: whatever msgspec accepts, pydantic accepts with equal values.

The derived types are built from the models' fields, so they follow the contracts: same
names, types, literals, lengths, patterns, bounds, defaults, and unknown fields refused.
Each derived class has ``type`` as a class attribute, like the models' ``type`` field.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import datetime
from typing import Annotated, Any, Literal, Union

import annotated_types
import msgspec
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from schemas.base import IDENTIFIER_PATTERN, TEXT_PATTERN, Contract

#: Marks a converted ``str`` annotation that carries the contract's identifier pattern. The struct
#: checks those fields in ``__post_init__`` with two string operations instead of a regex per field
#: (the regex cost ~2.5 us per clickstream event, most of the decode).
IDENTIFIER = object()
#: Marks a converted ``str`` annotation that carries the contract's text pattern (no control characters
#: but tab and line breaks), checked in ``__post_init__`` too: ``str.isprintable()`` first (C, and true
#: for almost every text), the regex only for text that is not.
TEXT = object()
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _meta(info: FieldInfo, annotation: Any) -> msgspec.Meta | None:
    """The msgspec constraints of a pydantic field's metadata (lengths, bounds, pattern)."""
    kwargs: dict[str, Any] = {}
    for item in info.metadata:
        if isinstance(item, annotated_types.MinLen):
            kwargs["min_length"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            kwargs["max_length"] = item.max_length
        elif isinstance(item, annotated_types.Ge):
            kwargs["ge"] = item.ge
        elif isinstance(item, annotated_types.Le):
            kwargs["le"] = item.le
        elif isinstance(item, annotated_types.Gt):
            kwargs["gt"] = item.gt
        elif isinstance(item, annotated_types.Lt):
            kwargs["lt"] = item.lt
        elif getattr(item, "pattern", None):
            # Python's "$" also matches before a trailing newline; the contract's (Rust) regex does not.
            pattern = item.pattern
            kwargs["pattern"] = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
        elif type(item).__name__ == "AfterValidator":
            continue
    return msgspec.Meta(**kwargs) if kwargs else None


STR_MAX = Contract.model_config.get("str_max_length")


def _convert(annotation: Any, cache: dict[type, type]) -> Any:
    """A pydantic field annotation as a msgspec one (nested models become Structs)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base = typing.get_args(annotation)[0]
        meta = _meta(FieldInfo.from_annotation(annotation), base)
        if typing.get_origin(base) in (Union, types.UnionType):  # constraints apply to the non-None members
            members = [a if a is type(None) else Annotated[(a, *typing.get_args(annotation)[1:])]  # type: ignore[misc]
                       for a in typing.get_args(base)]
            return Union[tuple(_convert(m, cache) for m in members)]  # noqa: UP007
        if base is str:  # one Meta: the field's own constraints, capped like every contract string
            kwargs = {k: getattr(meta, k) for k in ("min_length", "max_length", "pattern") if meta and getattr(meta, k)}
            kwargs.setdefault("max_length", STR_MAX)
            for pattern, mark in ((IDENTIFIER_PATTERN, IDENTIFIER), (TEXT_PATTERN, TEXT)):
                if kwargs.get("pattern") == pattern[:-1] + r"\Z":
                    del kwargs["pattern"]
                    return Annotated[str, msgspec.Meta(**kwargs), mark]
            return Annotated[str, msgspec.Meta(**kwargs)]
        converted = _convert(base, cache)
        return Annotated[converted, meta] if meta else converted
    if origin in (Union, types.UnionType):
        return Union[tuple(_convert(a, cache) for a in typing.get_args(annotation))]  # noqa: UP007
    if origin is list:
        (item,) = typing.get_args(annotation)
        return list[_convert(item, cache)]  # type: ignore[misc]
    if annotation is str:
        return Annotated[str, msgspec.Meta(max_length=STR_MAX)] if STR_MAX else str
    if origin is Literal or annotation in (int, float, bool, type(None)):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return struct_of(annotation, cache)
    if annotation is datetime or annotation is AwareDatetime:
        return Annotated[datetime, msgspec.Meta(tz=True)]
    raise TypeError(f"no msgspec equivalent for {annotation!r}")


def struct_of(model: type[BaseModel], cache: dict[type, type] | None = None, tagged: bool = True) -> type:
    """The msgspec Struct mirroring ``model``.

    In a union (``tagged``) its ``type`` literal is the msgspec tag; alone, msgspec would not
    require a tag, so ``type`` stays a required literal field.
    """
    cache = {} if cache is None else cache
    if model in cache:
        return cache[model]
    fields: list[tuple[str, Any, Any]] = []
    tag = None
    namespace: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]  # type: ignore[misc]
        if tagged and name == "type" and typing.get_origin(info.annotation) is Literal:
            (tag,) = typing.get_args(info.annotation)
            namespace["type"] = tag
            continue
        converted = _convert(annotation, cache)
        if info.is_required() or (info.default is None and not _admits_none(info.annotation)):
            # A None default the type refuses (``customer_id``) is a model validator's to fill: msgspec
            # requires the field and leaves a record without it to pydantic.
            fields.append((name, converted, msgspec.NODEFAULT))
        elif info.default_factory is not None:
            fields.append((name, converted, msgspec.field(default_factory=info.default_factory)))  # type: ignore[arg-type]
        else:
            fields.append((name, converted, info.default))
    identifiers = tuple(name for name, converted, _ in fields if _has_mark(converted, IDENTIFIER))
    texts = tuple(name for name, converted, _ in fields if _has_mark(converted, TEXT))
    if identifiers or texts:
        namespace["__post_init__"] = _string_checks(identifiers, texts)
    required = [f[:2] for f in fields if f[2] is msgspec.NODEFAULT]
    optional = [f for f in fields if f[2] is not msgspec.NODEFAULT]
    options: dict[str, Any] = {"forbid_unknown_fields": True, "frozen": True, "gc": False}
    if tag is not None:
        options.update(tag_field="type", tag=tag)
    struct = msgspec.defstruct(model.__name__, [*required, *optional], namespace=namespace, **options)
    cache[model] = struct
    return struct


def _admits_none(annotation: Any) -> bool:
    """Whether None is a value of ``annotation`` (``X | None``, ``Optional[X]``)."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation is type(None) or (typing.get_origin(annotation) in (Union, types.UnionType)
                                        and type(None) in typing.get_args(annotation))


def _has_mark(annotation: Any, mark: object) -> bool:
    """Whether a converted annotation is (or, in a union, has a member that is) marked ``mark``."""
    if typing.get_origin(annotation) is Annotated:
        return mark in typing.get_args(annotation)[1:]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return any(_has_mark(a, mark) for a in typing.get_args(annotation))
    return False


def _string_checks(names: tuple[str, ...], texts: tuple[str, ...] = ()) -> Any:
    """A ``__post_init__`` refusing identifiers and texts their patterns would refuse (msgspec reports a
    ValueError).

    The identifier pattern without a regex: no whitespace at either end (``str.strip()``), and every
    character printable (``str.isprintable()`` is False for line breaks and every control character,
    and also for a few characters the pattern allows, such as a no-break space inside: those go to
    pydantic, which accepts them; msgspec stays the stricter side). The checks are unrolled into one
    function, generated from the contracts' field names, because a loop with ``getattr`` costs twice
    as much per event.
    """
    lines = ["def __post_init__(self):"]
    for name in (*names, *texts):
        if not name.isidentifier():
            raise TypeError(f"not a field name: {name!r}")
    for name in names:
        lines += [f"    v = self.{name}",
                  "    if v is not None and (v.strip() != v or not v.isprintable()):",
                  f"        raise ValueError('{name} must have no surrounding whitespace and no control character')"]
    for name in texts:
        lines += [f"    v = self.{name}",
                  "    if v is not None and not v.isprintable() and _CONTROL.search(v):",
                  f"        raise ValueError('{name} must hold no control character but tab and line breaks')"]
    scope: dict[str, Any] = {"_CONTROL": _CONTROL}
    exec("\n".join(lines), scope)  # source built above from contract field names only
    return scope["__post_init__"]


def decoder_for(annotation: Any) -> msgspec.json.Decoder[Any]:
    """A JSON decoder for a contract: a model, or an ``Annotated`` discriminated union of models."""
    cache: dict[type, type] = {}
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = tuple(struct_of(m, cache) for m in typing.get_args(annotation))
        return msgspec.json.Decoder(Union[members])  # type: ignore[arg-type]  # noqa: UP007
    return msgspec.json.Decoder(struct_of(annotation, cache, tagged=False))
