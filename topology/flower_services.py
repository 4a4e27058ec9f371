"""Flower's Deployment Engine on the emulated hosts: a SuperLink per validator, a SuperNode per station, over TLS.

Each SuperLink binds its validator's address (the stations' gateway) with the run's certificates; each
SuperNode dials its own group's SuperLink with the run CA as `--root-certificates` and carries its partition
in `--node-config`. `wait_registered` proves a SuperNode got through TLS across the emulated links: the
SuperLink's Fleet API logs every node that registers or activates.

How a SuperNode runs its ClientApps (`--clientapp-isolation`): "subprocess" is Flower's default, a fresh
`flwr-clientapp` process per message, each importing TensorFlow again; "warm" runs the SuperNode with
`--isolation process` and next to it `topology.warm_clientapp`, which forks every ClientApp from a process
that imported TensorFlow and the trainer once (measured in README's topology section).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from pathlib import Path

from topology.processes import VENV_BIN, HostProcess, HostProcesses, wait_until
from topology.tls import ServerCertificate, make_certificates
from topology.topo import EdgeTopology

SUPERLINK_PORT = 9100
RUNTIME_API = "127.0.0.1:9094"  # a SuperNode's Runtime API, on its own station's loopback
CLIENTAPP_ISOLATION = ("warm", "subprocess")
DEFAULT_CLIENTAPP_ISOLATION = "warm"  # 4.1x faster rounds at 20 stations, same accuracy (README)

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


@dataclass
class FlowerServices:
    """The running Flower processes: SuperLink per validator host, SuperNode per station."""

    superlinks: dict[str, HostProcess] = field(default_factory=dict)
    supernodes: dict[str, HostProcess] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)        # validator -> "ip:port"
    certificates: dict[str, ServerCertificate] = field(default_factory=dict)
    insecure: bool = False
    clientapp_isolation: str = DEFAULT_CLIENTAPP_ISOLATION
    executors: dict[str, HostProcess] = field(default_factory=dict)  # station -> warm ClientApp executor

    def describe_clientapps(self) -> str:
        """How the stations run their ClientApps, in words."""
        if self.clientapp_isolation == "warm":
            return ("ClientApps forked per message from a per-station process that preloaded TensorFlow "
                    "(--clientapp-isolation warm)")
        return "a fresh ClientApp process per message, Flower's default (--clientapp-isolation subprocess)"


def superlink_argv(address: str, port: int, cert: ServerCertificate | None) -> list[str]:
    """Flower's default in-memory state: with a SQLite file (`--database x.sqlite`), 10 SuperNodes pushing
    replies at once on 2 busy cores hit "database is locked", the SuperLink answers 500 and that reply is
    lost (measured: the 20-station run hung in round 1)."""
    tls = (["--ssl-ca-certfile", str(cert.ca), "--ssl-certfile", str(cert.cert), "--ssl-keyfile", str(cert.key)]
           if cert else ["--insecure"])
    return [str(VENV_BIN / "flower-superlink"), *tls, "--host", address, "--port", str(port),
            "--disable-runtime-dependency-installation"]


def supernode_argv(superlink: str, partition: tuple[int, int], ca: str | None,
                   clientapp_isolation: str = DEFAULT_CLIENTAPP_ISOLATION) -> list[str]:
    tls = ["--root-certificates", ca] if ca else ["--insecure"]
    host, port = RUNTIME_API.rsplit(":", 1)
    isolation = (["--isolation", "process", "--host", host, "--port", port] if clientapp_isolation == "warm"
                 else [])
    return [str(VENV_BIN / "flower-supernode"), *tls, "--superlink", superlink, *isolation,
            "--node-config", f"partition-id={partition[0]} num-partitions={partition[1]}"]


def warm_executor_argv(supernode_pid: int) -> list[str]:
    """`topology.warm_clientapp` serving the SuperNode `supernode_pid` on its station (and exiting with it)."""
    return [str(VENV_BIN / "python"), "-m", "topology.warm_clientapp", "--runtime-api-address", RUNTIME_API,
            "--insecure", "--parent-pid", str(supernode_pid)]


def start_superlinks(processes: HostProcesses, topo: EdgeTopology, tls: bool = True,
                     port: int = SUPERLINK_PORT, timeout_s: float = 60.0) -> FlowerServices:
    """One SuperLink per validator host, bound to its address; returns once each accepts connections."""
    network = processes.network
    services = FlowerServices(insecure=not tls)
    if tls:
        services.certificates = make_certificates(network.run_dir / "certs",
                                                  {v.name: topo.addresses(v.name) for v in topo.validators})
    for validator in topo.validators:
        address = topo.address(validator.name)
        process = processes.start(validator.name, "superlink",
                                  superlink_argv(address, port, services.certificates.get(validator.name)))
        services.superlinks[validator.name] = process
        services.addresses[validator.name] = f"{address}:{port}"
    for validator in topo.validators:
        address = topo.address(validator.name)
        wait_until(lambda: network.reachable(validator.name, address, port), timeout_s,
                   f"SuperLink on {validator.name} listening on {address}:{port}",
                   services.superlinks[validator.name])
    return services


def start_supernodes(processes: HostProcesses, topo: EdgeTopology, services: FlowerServices,
                     stations: list[str] | None = None,
                     clientapp_isolation: str = DEFAULT_CLIENTAPP_ISOLATION) -> None:
    """A SuperNode on each station (all by default), dialing its own group's SuperLink; with "warm"
    isolation, its warm ClientApp executor next to it (its Runtime API is on the station's loopback)."""
    if clientapp_isolation not in CLIENTAPP_ISOLATION:
        raise ValueError(f"ClientApp isolation {clientapp_isolation!r} is not one of {CLIENTAPP_ISOLATION}")
    services.clientapp_isolation = clientapp_isolation
    repository = str(Path(__file__).resolve().parent.parent)
    for name in stations or [s.name for s in topo.stations]:
        validator = topo.validator_of(name).name
        cert = services.certificates.get(validator)
        supernode = processes.start(
            name, "supernode",
            supernode_argv(services.addresses[validator], trainer_partition(topo, name),
                           str(cert.ca) if cert else None, clientapp_isolation))
        services.supernodes[name] = supernode
        if clientapp_isolation == "warm":
            services.executors[name] = processes.start(name, "clientapp-executor",
                                                       warm_executor_argv(supernode.popen.pid),
                                                       env={"PYTHONPATH": repository})


def trainer_partition(topo: EdgeTopology, station: str) -> tuple[int, int]:
    """(partition-id, num-partitions) of a station as a trainer: its index among all stations, so the
    partition id is the trainer id `flower_sim` uses (groups are contiguous blocks of stations)."""
    names = [s.name for s in topo.stations]
    return names.index(station), len(names)


def registered_nodes(superlink: HostProcess) -> int:
    """How many SuperNodes the SuperLink's log shows registering (Fleet API `register-node` calls)."""
    try:
        text = superlink.log.read_text(errors="replace")
    except OSError:
        return 0
    return text.count("[Fleet.ActivateNode] Activated")


def tls_handshake(processes: HostProcesses, station: str, address: str, ca: str, timeout_s: float = 20.0) -> str:
    """From `station`, open TLS to address ("ip:port") verifying the run CA and the IP SAN; the TLS version."""
    host, port = address.rsplit(":", 1)
    code = ("import socket, ssl, sys; ctx = ssl.create_default_context(cafile=sys.argv[1]); "
            "s = ctx.wrap_socket(socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5), "
            "server_hostname=sys.argv[2]); print(s.version())")
    probe = processes.run(station, "tls-probe", [sys.executable, "-c", code, ca, host, port], timeout_s)
    return probe.log_tail(1).strip()


def executor_ready(executor: HostProcess) -> bool:
    """Whether a warm ClientApp executor's log says it has preloaded and serves tasks."""
    from topology.warm_clientapp import READY  # heavy: Flower (0.5 s); `fedrollup --help` loads this module

    try:
        return READY in executor.log.read_text(errors="replace")
    except OSError:
        return False


def wait_registered(topo: EdgeTopology, services: FlowerServices, timeout_s: float = 90.0) -> float:
    """Wait until every validator's SuperLink has seen each SuperNode of its group register (and, with warm
    ClientApps, every station's executor has preloaded, so the first round does not pay for it)."""
    started = 0.0
    for validator in topo.validators:
        expected = sum(1 for s in services.supernodes if topo.node(s).group == validator.group)
        link = services.superlinks[validator.name]
        started += wait_until(lambda: registered_nodes(link) >= expected, timeout_s,
                              f"{expected} SuperNode(s) registered with the SuperLink on {validator.name}", link)
    for name, executor in services.executors.items():
        started += wait_until(lambda: executor_ready(executor), timeout_s,
                              f"the warm ClientApp executor on {name} preloaded", executor)
    dead = [f"{n}: {p.log_tail(1)}" for n, p in [*services.supernodes.items(), *services.executors.items()]
            if not p.alive]
    if dead:
        raise RuntimeError(f"SuperNode(s) or ClientApp executor(s) exited: {'; '.join(dead)}")
    return started


def write_connections(processes: HostProcesses, topo: EdgeTopology, services: FlowerServices,
                      hosts: list[str] | None = None) -> dict[str, str]:
    """Write `$FLWR_HOME/config.toml` on each validator host (and on `hosts`, e.g. the manager) with one
    SuperLink connection per validator named after it, the host's own validator as default; returns
    {validator: connection name}. This is what `flwr run <app> <validator>` on those hosts uses."""
    for host in [v.name for v in topo.validators] + list(hosts or []):
        default = host if host in services.addresses else topo.validators[0].name
        lines = ["[superlink]", f'default = "{default}"', ""]
        for validator, address in services.addresses.items():
            lines += [f"[superlink.{validator}]", f'address = "{address}"']
            cert = services.certificates.get(validator)
            lines += [f'root-certificates = "{cert.ca}"'] if cert else ["insecure = true"]
            lines.append("")
        (processes.host_dir(host) / "flwr-home" / "config.toml").write_text("\n".join(lines))
    return {v: v for v in services.addresses}


def runs_listed(processes: HostProcesses, host: str, connection: str, timeout_s: float = 60.0) -> bool:
    """`flwr ls <connection>` from `host` answers over the SuperLink's Control API (TLS when configured)."""
    probe = processes.run(host, "flwr-ls", [str(VENV_BIN / "flwr"), "ls", connection, "--format", "json"], timeout_s)
    return '"success": true' in probe.log.read_text(errors="replace").replace("'", '"')
