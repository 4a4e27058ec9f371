"""Shared helpers of the topology tests: the root/Mininet skip marker and a snapshot of what a run leaves."""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from topology.clean import netns_of, root_interfaces
from topology.emulator import mininet_available


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "building network namespaces needs root (CI runs as root)"
    if not mininet_available():
        return "Mininet is not installed here (run `make topology-deps` as root)"
    return None


needs_mininet = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="reading other processes' namespaces needs root")


@dataclass(frozen=True)
class MachineState:
    """Network namespaces in use by any process, and root-namespace interfaces."""

    namespaces: frozenset[str]
    interfaces: frozenset[str]

    @classmethod
    def now(cls) -> MachineState:
        spaces = {netns_of(int(p)) for p in os.listdir("/proc") if p.isdigit()} - {""}
        return cls(frozenset(spaces), frozenset(root_interfaces()))

    def added_since(self, before: MachineState) -> tuple[set[str], set[str]]:
        return set(self.namespaces - before.namespaces), set(self.interfaces - before.interfaces)
