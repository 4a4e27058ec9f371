"""Flower's Deployment Engine for one role on its own machine: the SuperLink, SuperNode and app folder it runs.

What `fedrollup validator` and `fedrollup trainer` start (and the emulated network through them): a validator's
SuperLink over TLS with SuperNode authentication (`--enable-supernode-auth`: Flower 1.41 admits only SuperNodes
whose public key was registered over the SuperLink's Control API, `flwr supernode register`), a trainer's
SuperNode signing its requests with its private key (`--auth-supernode-private-key`) and carrying its partition
in `--node-config`, and, with "warm" ClientApp isolation, `flower_sim.warm_clientapp` next to it, which forks
every ClientApp from a process that imported TensorFlow and the trainer once. `Children` keeps a role's
processes and stops them all when the role ends, whichever way it ends.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common.errors import ConfigError, FedrollupError

BIN = Path(sys.executable).parent  # the venv's console scripts: flower-superlink, flower-supernode, flwr
SUPERLINK_PORT = 9100
RUNTIME_PORT = 9094  # a SuperNode's Runtime API, on its own machine's loopback (Flower's default)
CLIENTAPP_ISOLATION = ("warm", "subprocess")
DEFAULT_CLIENTAPP_ISOLATION = "warm"  # 4.1x faster rounds at 20 stations, same accuracy (README)
READY_LINE = "SuperLink ready"  # what `fedrollup validator` prints once its trainers can connect


class RoleError(FedrollupError):
    """A role's process failed (a SuperLink that did not start, a run that failed): said in one line."""

APP_PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "1.0.0"
description = "{description}"
dependencies = []

[tool.flwr.app]
publisher = "fedrollup"

[tool.flwr.app.components]
serverapp = "{serverapp}"
clientapp = "{clientapp}"

[tool.flwr.app.config]
{config}
"""


def toml_value(value) -> str:
    """A run-config value as TOML (and as `flwr run --run-config` wants it): strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def run_config(values: dict) -> str:
    """Flower's `--run-config` text: space-separated key=value, strings quoted."""
    return " ".join(f"{k}={toml_value(v)}" for k, v in values.items())


def write_app(folder: Path, name: str, description: str, serverapp: str, clientapp: str, config: dict) -> Path:
    """A Flower app folder holding only a pyproject.toml whose components are importable from the venv (so
    runtime dependency installation stays off); `config` gives the run config's keys and defaults."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(APP_PYPROJECT.format(
        name=name, description=description, serverapp=serverapp, clientapp=clientapp,
        config="\n".join(f"{k} = {toml_value(v)}" for k, v in config.items())))
    return folder


@dataclass(frozen=True)
class Tls:
    """A SuperLink's TLS material: the CA that signed its certificate, the certificate (its addresses as SANs),
    its key. None of the three: no TLS (`--insecure`)."""

    ca: Path
    cert: Path
    key: Path

    def check(self) -> Tls:
        for option, path in (("--tls-ca", self.ca), ("--tls-cert", self.cert), ("--tls-key", self.key)):
            if not Path(path).is_file():
                raise ConfigError(f"{option} {path}: no such file")
        return self


def superlink_argv(address: str, port: int, tls: Tls | None, supernode_auth: bool = False) -> list[str]:
    """Flower's default in-memory state: with a SQLite file (`--database x.sqlite`), 10 SuperNodes pushing
    replies at once on 2 busy cores hit "database is locked", the SuperLink answers 500 and that reply is
    lost (measured: the 20-station run hung in round 1). SuperNode authentication needs TLS (Flower's rule)."""
    if supernode_auth and tls is None:
        raise ConfigError("SuperNode authentication needs TLS: give --tls-ca/--tls-cert/--tls-key")
    security = (["--ssl-ca-certfile", str(tls.ca), "--ssl-certfile", str(tls.cert), "--ssl-keyfile", str(tls.key)]
                if tls else ["--insecure"])
    return [str(BIN / "flower-superlink"), *security, *(["--enable-supernode-auth"] if supernode_auth else []),
            "--host", address, "--port", str(port), "--disable-runtime-dependency-installation"]


def supernode_argv(superlink: str, partition: tuple[int, int], ca: str | None,
                   clientapp_isolation: str = DEFAULT_CLIENTAPP_ISOLATION, auth_key: str | None = None,
                   runtime_port: int = RUNTIME_PORT, node_config: dict[str, str] | None = None) -> list[str]:
    """A trainer's SuperNode: TLS against `ca` (None: insecure), signing with `auth_key` (its private key), its
    Runtime API (which its ClientApps reach) on the loopback's `runtime_port`; `node_config`: more string entries of
    its node config (a trainer holding its own rollup key: the paths and URLs its ClientApps use)."""
    tls = ["--root-certificates", ca] if ca else ["--insecure"]
    isolation = ["--isolation", "process"] if clientapp_isolation == "warm" else []
    auth = ["--auth-supernode-private-key", auth_key] if auth_key else []
    return [str(BIN / "flower-supernode"), *tls, "--superlink", superlink, *auth, *isolation,
            "--host", "127.0.0.1", "--port", str(runtime_port),
            "--node-config", " ".join([f"partition-id={partition[0]} num-partitions={partition[1]}",
                                       *(f"{k}={json.dumps(v)}" for k, v in (node_config or {}).items())])]


def warm_executor_argv(supernode_pid: int, runtime_port: int = RUNTIME_PORT,
                       also_preload: tuple[str, ...] = ()) -> list[str]:
    """`flower_sim.warm_clientapp` serving the SuperNode `supernode_pid` on its machine (and exiting with it);
    `also_preload`: modules its ClientApps need beyond the trainer's (a trainer holding its own key: web3's)."""
    return [str(BIN / "python"), "-m", "flower_sim.warm_clientapp", "--runtime-api-address",
            f"127.0.0.1:{runtime_port}", "--insecure", "--parent-pid", str(supernode_pid),
            *(["--also-preload", *also_preload] if also_preload else [])]


# ---------------------------------------------------------------------------------------------- SuperNode keys
def write_supernode_key(private: Path) -> Path:
    """A SuperNode's authentication key pair, EC P-384 in OpenSSH format (as `ssh-keygen -t ecdsa -b 384` makes
    them, what Flower reads): `private` (mode 0600) and `private` + `.pub`, the public key its validator
    registers; returns the public key's path."""
    key = ec.generate_private_key(ec.SECP384R1())
    private.parent.mkdir(parents=True, exist_ok=True)
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption()))  # Flower reads OpenSSH keys
    private.chmod(0o600)
    public = private.with_name(private.name + ".pub")
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                     serialization.PublicFormat.OpenSSH))
    return public


def public_keys_in(folder: Path) -> list[Path]:
    """The trainers' public keys a validator registers: every `*.pub` in `folder`, by name."""
    if not folder.is_dir():
        raise ConfigError(f"--trainer-keys {folder}: no such folder")
    keys = sorted(folder.glob("*.pub"))
    if not keys:
        raise ConfigError(f"--trainer-keys {folder}: no *.pub public key in it")
    return keys


def write_connection(flwr_home: Path, name: str, address: str, ca: Path | None) -> None:
    """`$FLWR_HOME/config.toml` with one SuperLink connection `name` (the default) for `flwr run/ls/supernode`."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    security = f'root-certificates = "{ca}"' if ca else "insecure = true"
    (flwr_home / "config.toml").write_text(f'[superlink]\ndefault = "{name}"\n\n[superlink.{name}]\n'
                                           f'address = "{address}"\n{security}\n')


# ---------------------------------------------------------------------------------------------- processes
def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def role_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a role's processes: the venv's console scripts first on PATH (a SuperLink or SuperNode
    starts `flower-superexec` from PATH), output unbuffered, and `extra`."""
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1", **(extra or {})}


class Children:
    """The processes a role started: their output goes to the role's own, and all of them stop when the role
    stops (`stop_all`, also on SIGTERM: a supervisor or the emulated network stopping the role)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = role_env(env)
        self.running: list[subprocess.Popen] = []
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds into the role's `finally: stop_all()`

    def start(self, argv: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL)
        self.running.append(process)
        return process

    def run(self, argv: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        """A short command (its output captured, for the role to judge)."""
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout_s)

    def stop_all(self, grace_s: float = 10.0) -> None:
        for process in reversed(self.running):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace_s
        for process in reversed(self.running):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(check, timeout_s: float, what: str, process: subprocess.Popen | None = None,
             interval_s: float = 0.2) -> None:
    """Wait until `check()`; a RoleError naming `what` on timeout or when `process` exits first."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if process is not None and process.poll() is not None:
            raise RoleError(f"{what}: the process exited (code {process.returncode}) first")
        if time.monotonic() > deadline:
            raise RoleError(f"{what}: not within {timeout_s:g} s")
        time.sleep(interval_s)

