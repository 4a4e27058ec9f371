"""Which emulator runs: Mininet-WiFi where the machine can, else the wired Mininet fallback, and what each lacks.

Mininet-WiFi needs its Python package (`mn_wifi`) and the kernel's `mac80211_hwsim` radios. Without either,
the same topology runs on Mininet with LinuxBridge switches for the APs and TCLink (HTB) bandwidth for the
radio links. Link delay and loss need the kernel's `sch_netem` in both cases. The probes are injectable so
the choice is unit-tested on any machine.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

MININET_WIFI = "mininet-wifi"
MININET_WIRED = "mininet-wired"

Probe = Callable[[], bool]


def kernel_module_available(name: str) -> bool:
    """Loaded (/sys/module) or loadable (`modprobe -n`, a dry run that loads nothing)."""
    if Path("/sys/module", name).exists():
        return True
    modprobe = shutil.which("modprobe") or ("/usr/sbin/modprobe" if Path("/usr/sbin/modprobe").exists() else None)
    if not modprobe:
        return False
    done = subprocess.run([modprobe, "-n", name], capture_output=True)
    return done.returncode == 0


def python_module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def mininet_available() -> bool:
    return python_module_available("mininet") and shutil.which("mnexec") is not None


@dataclass(frozen=True)
class Probes:
    """Facts about the machine; the defaults look at the real one."""

    mn_wifi: Probe = lambda: python_module_available("mn_wifi")
    hwsim: Probe = lambda: kernel_module_available("mac80211_hwsim")
    netem: Probe = lambda: kernel_module_available("sch_netem")
    mininet: Probe = mininet_available
    root: Probe = lambda: os.geteuid() == 0


@dataclass(frozen=True)
class EmulatorChoice:
    """The emulator that will run, why, and what it cannot emulate on this machine."""

    name: str                       # MININET_WIFI or MININET_WIRED
    reason: str
    netem: bool                     # link delay and loss can be applied
    limitations: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        lines = [f"emulator: {self.name} ({self.reason})"]
        lines += [f"  cannot emulate: {item}" for item in self.limitations]
        return "\n".join(lines)


class EmulatorUnavailable(RuntimeError):
    """Neither Mininet-WiFi nor Mininet can run here (not root, or Mininet not installed)."""


def choose_emulator(probes: Probes = Probes(), want_wired: bool = False) -> EmulatorChoice:
    """Mininet-WiFi when `mn_wifi` imports and the kernel has mac80211_hwsim (and `want_wired` is off),
    else the wired Mininet fallback. Raises EmulatorUnavailable when no emulator can run at all."""
    if not probes.root():
        raise EmulatorUnavailable("building an emulated network needs root (run it with sudo)")
    netem = probes.netem()
    no_netem = () if netem else ("link delay and loss (the kernel has no sch_netem); only bandwidth is shaped",)
    has_wifi, has_hwsim = probes.mn_wifi(), probes.hwsim()
    if has_wifi and has_hwsim and not want_wired:
        return EmulatorChoice(MININET_WIFI, "mn_wifi is importable and the kernel has mac80211_hwsim", netem,
                              no_netem)
    if not probes.mininet():
        raise EmulatorUnavailable("Mininet is not installed (run `make topology-deps` as root)")
    missing = [what for what, ok in (("the mn_wifi package", has_wifi), ("the mac80211_hwsim kernel module", has_hwsim))
               if not ok]
    reason = "asked for the wired network" if want_wired else f"missing {' and '.join(missing)}"
    limitations = ("radio: association, signal and rate control (stations are wired hosts on a LinuxBridge per "
                   "access point; each station's link rate comes from its position under the propagation model, "
                   "topology/radio.py, and a mobile station's is set again each round)",
                   "shared air time of a cell: each station's radio link is shaped on its own (TCLink/HTB)") + no_netem
    return EmulatorChoice(MININET_WIRED, f"wired Mininet fallback: {reason}", netem, limitations)
