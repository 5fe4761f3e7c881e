"""Safe YAML loading that remembers where every key came from (file and line), with limits checked before any
work: a size cap (checked before reading), UTF-8 text, and no aliases (so no alias bomb is ever expanded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from compress.errors import UserInputError

MAX_YAML_BYTES = 1 << 20  # recipes, suites and targets are small; a larger one is a mistake (input sets pass more)


@dataclass(frozen=True)
class Loc:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class LocDict(dict):
    """A dict that knows the location of itself (`loc`) and of each key (`locs`)."""

    def __init__(self, *args, loc: Loc | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.loc = loc
        self.locs: dict = {}


class LocList(list):
    def __init__(self, *args, loc: Loc | None = None):
        super().__init__(*args)
        self.loc = loc


class YAMLInputError(UserInputError, yaml.YAMLError):
    """A YAML file that does not parse, repeats a key or uses an alias: bad input (exit 2), naming file and line."""


class DuplicateKeyError(yaml.YAMLError):
    pass


class AliasError(yaml.YAMLError):
    pass


class SafeLineLoader(yaml.SafeLoader):
    """yaml.SafeLoader (no arbitrary objects, no aliases) whose mappings and sequences carry line numbers."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):  # refused as parsed: nothing has been expanded yet
            mark = self.peek_event().start_mark
            raise AliasError(f"{self.name}:{mark.line + 1}: aliases (*name) are not supported; write the value out")
        return super().compose_node(parent, index)


def _mark(loader: SafeLineLoader, node: yaml.Node) -> Loc:
    return Loc(loader.name, node.start_mark.line + 1)


def _construct_map(loader: SafeLineLoader, node: yaml.MappingNode) -> LocDict:
    loader.flatten_mapping(node)
    data = LocDict(loc=_mark(loader, node))
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in data:
            raise DuplicateKeyError(f"{_mark(loader, key_node)}: duplicate key '{key}'")
        data[key] = loader.construct_object(value_node, deep=True)
        data.locs[key] = _mark(loader, key_node)
    return data


def _construct_seq(loader: SafeLineLoader, node: yaml.SequenceNode) -> LocList:
    return LocList((loader.construct_object(n, deep=True) for n in node.value), loc=_mark(loader, node))


SafeLineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
SafeLineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def read_text(path: Path, display_name: str | None = None, limit: int = MAX_YAML_BYTES) -> str:
    """A small UTF-8 text file's content; UserInputError naming the file if it is larger than `limit` bytes (checked
    before reading) or not UTF-8 text."""
    name = display_name or str(path)
    size = Path(path).stat().st_size
    if size > limit:
        raise UserInputError(f"{name}: expected a text file of at most {limit:,} bytes; found {size:,} bytes")
    try:
        return Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserInputError(f"{name}: expected UTF-8 text; found byte 0x{err.object[err.start]:02x} at offset "
                             f"{err.start} (a binary file?)") from None


def load_located(path: Path, display_name: str | None = None, limit: int = MAX_YAML_BYTES):
    """Parse one YAML file safely (`read_text`'s limits, no aliases); mappings become LocDicts. YAMLInputError for
    a file that does not parse."""
    loader = SafeLineLoader(read_text(path, display_name, limit))
    loader.name = display_name or str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise YAMLInputError(f"{loader.name}: not valid YAML: {err}") from None
    finally:
        loader.dispose()


def load_plain(path: Path, display_name: str | None = None, limit: int = MAX_YAML_BYTES):
    """`load_located` as plain dicts and lists."""
    return to_plain(load_located(path, display_name, limit))


def line_of(data, loc: tuple) -> Loc | None:
    """The location of the deepest key of `loc` (a pydantic error location) found in `data`."""
    found = getattr(data, "loc", None)
    for part in loc:
        if isinstance(data, LocDict) and part in data:
            found = data.locs.get(part, found)
            data = data[part]
        elif isinstance(data, LocList) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
            found = getattr(data, "loc", found)
        else:
            break
    return found


def to_plain(data):
    """LocDict/LocList trees back to plain dicts and lists."""
    if isinstance(data, dict):
        return {k: to_plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_plain(v) for v in data]
    return data
