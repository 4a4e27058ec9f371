"""docs/PROTOCOL.md states every message the backend accepts or emits with its exact signature and tag."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from dapp.schema import INPUTS, NOTICES, Message

PROTOCOL = (Path(__file__).resolve().parents[1] / "docs" / "PROTOCOL.md").read_text()


def _named_signature(cls: type[Message]) -> str:
    def camel(name: str) -> str:
        first, *rest = name.split("_")
        return first + "".join(part.capitalize() for part in rest)
    return f"{cls.__name__}({','.join(f.metadata['abi'] + ' ' + camel(f.name) for f in dataclasses.fields(cls))})"


@pytest.mark.parametrize("cls", INPUTS + NOTICES, ids=lambda c: c.__name__)
def test_every_message_is_documented_with_its_signature_and_tag(cls):
    row = re.search(rf"^\| {cls.__name__} \| `([^`]*)` \| `(0x[0-9a-f]{{8}})` \|", PROTOCOL, re.MULTILINE)
    assert row, f"docs/PROTOCOL.md has no table row for {cls.__name__}"
    assert (row.group(1), row.group(2)) == (_named_signature(cls), "0x" + cls.tag().hex())
