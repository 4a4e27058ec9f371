"""Flower's Deployment Engine on the emulated hosts, started with the role commands a real deployment runs.

Each validator host runs `fedrollup validator` (`flower_sim.validator_role`): its SuperLink bound to its address
with the run's certificates and SuperNode authentication, the public keys of its group's stations registered (no
other SuperNode is admitted), then, once the manager's link answers, its ServerApp for the whole run. Each station
runs `fedrollup trainer` (`flower_sim.trainer_role`): a SuperNode dialing its own group's SuperLink with the run
CA as `--tls-ca`, its own key (generated here per station, as `fedrollup trainer keygen` does), its partition.
`wait_registered` proves a SuperNode got through TLS and authentication across the emulated links: the
SuperLink's Fleet API logs every node that activates.

How a SuperNode runs its ClientApps (`--clientapp-isolation`): "subprocess" is Flower's default, a fresh
`flwr-clientapp` process per message, each importing TensorFlow again; "warm" runs the SuperNode with
`--isolation process` and next to it `flower_sim.warm_clientapp`, which forks every ClientApp from a process
that imported TensorFlow and the trainer once (measured in README's topology section).
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from flower_sim.deployment import (CLIENTAPP_ISOLATION, DEFAULT_CLIENTAPP_ISOLATION, READY_LINE, SUPERLINK_PORT,
                                   write_supernode_key)
from flower_sim.key_file import write_key_file
from topology.processes import VENV_BIN, HostProcess, HostProcesses, wait_until
from topology.tls import ServerCertificate, make_certificates
from topology.topo import EdgeTopology

MANAGER_HOST = "mgr"
MANAGER_PORT = 8700
REPLY_TIMEOUT_S = 600  # per round, a validator waits this long for its stations' replies, then goes on
ROUND_TIMEOUT_S = 1800.0


@dataclass
class FlowerServices:
    """The running Flower processes: SuperLink per validator host, SuperNode per station."""

    superlinks: dict[str, HostProcess] = field(default_factory=dict)  # validator -> `fedrollup validator`
    supernodes: dict[str, HostProcess] = field(default_factory=dict)  # station -> `fedrollup trainer`
    addresses: dict[str, str] = field(default_factory=dict)        # validator -> "ip:port"
    certificates: dict[str, ServerCertificate] = field(default_factory=dict)
    insecure: bool = False
    clientapp_isolation: str = DEFAULT_CLIENTAPP_ISOLATION
    executors: dict[str, HostProcess] = field(default_factory=dict)  # station -> its trainer, with a warm executor
    keys: dict[str, Path] = field(default_factory=dict)  # station -> its SuperNode private key
    validator_addresses: list[str] = field(default_factory=list)  # each validator's own rollup address, by group
    trainer_addresses: list[str] = field(default_factory=list)  # each trainer's own rollup address, by trainer id

    def describe_clientapps(self) -> str:
        """How the stations run their ClientApps, in words."""
        if self.clientapp_isolation == "warm":
            return ("ClientApps forked per message from a per-station process that preloaded TensorFlow "
                    "(--clientapp-isolation warm)")
        return "a fresh ClientApp process per message, Flower's default (--clientapp-isolation subprocess)"


def start_superlinks(processes: HostProcesses, topo: EdgeTopology, tls: bool = True,
                     port: int = SUPERLINK_PORT, timeout_s: float = 120.0, chain=None) -> FlowerServices:
    """`fedrollup validator` on each validator host, its SuperLink bound to its address, admitting its group's
    stations' keys; returns once each says its SuperLink is ready. Each then waits for the manager's link
    (`run_rounds` starts it) to run its ServerApp. With a chain (`chain_host.ChainEndpoints`) each holds its own
    rollup key, written in its host's folder only (`fedrollup validator keygen`, mode 0600), and sends its own
    inputs through its own node; `validator_addresses` is what the manager is given."""
    network = processes.network
    services = FlowerServices(insecure=not tls)
    if tls:
        certs = network.run_dir / "certs"
        servers = {v.name: topo.addresses(v.name) for v in topo.validators}  # their SuperLinks
        servers[MANAGER_HOST] = topo.addresses(MANAGER_HOST)  # the manager link's HTTPS
        services.certificates = make_certificates(certs, servers)
        services.keys = {s.name: certs / "supernodes" / s.name for s in topo.stations}
        for validator in topo.validators:
            registered = certs / f"trainers-{validator.name}"
            registered.mkdir(parents=True, exist_ok=True)
            for station in topo.group(validator.group):
                public = write_supernode_key(services.keys[station.name])
                shutil.copy(public, registered / f"{station.name}.pub")
    manager, verify = manager_link(services, topo.address(MANAGER_HOST))
    repository = str(Path(__file__).resolve().parent.parent)
    for validator in sorted(topo.validators, key=lambda v: v.group):  # by group: the manager's address order
        address = topo.address(validator.name)
        cert = services.certificates.get(validator.name)
        security = (["--tls-ca", str(cert.ca), "--tls-cert", str(cert.cert), "--tls-key", str(cert.key),
                     "--trainer-keys", str(cert.ca.parent / f"trainers-{validator.name}")] if cert else ["--insecure"])
        argv = [str(VENV_BIN / "fedrollup"), "validator", "--id", str(validator.group - 1), "--manager", manager,
                *verify,
                "--host", address, "--port", str(port), *security,
                *(own_key(processes, validator.name, chain, services) if chain is not None else []),
                "--workdir", str(processes.host_dir(validator.name) / "validator"),
                "--round-timeout", f"{ROUND_TIMEOUT_S:g}", "--reply-timeout", str(REPLY_TIMEOUT_S)]
        services.superlinks[validator.name] = processes.start(validator.name, "validator", argv,
                                                              env={"PYTHONPATH": repository})
        services.addresses[validator.name] = f"{address}:{port}"
    for validator in topo.validators:
        role = services.superlinks[validator.name]
        wait_until(lambda: READY_LINE in log_text(role), timeout_s,
                   f"`fedrollup validator` on {validator.name}: its SuperLink ready on "
                   f"{services.addresses[validator.name]}", role)
        wait_until(lambda: network.reachable(validator.name, topo.address(validator.name), port), timeout_s,
                   f"the SuperLink on {validator.name} across the network", role)
    return services


def manager_link(services: FlowerServices, address: str) -> tuple[str, list[str]]:
    """The manager link's URL the validators dial and their option to verify it: https:// and the run CA when the
    run has TLS (the manager host's certificate names its addresses), http:// on an --insecure network."""
    cert = services.certificates.get(MANAGER_HOST)
    if cert is None:
        return f"http://{address}:{MANAGER_PORT}", []
    return f"https://{address}:{MANAGER_PORT}", ["--manager-ca", str(cert.ca)]


def manager_tls(services: FlowerServices) -> list[str]:
    """`fedrollup manager`'s options serving its link over HTTPS with the manager host's certificate (none on an
    --insecure network)."""
    cert = services.certificates.get(MANAGER_HOST)
    return ["--tls-cert", str(cert.cert), "--tls-key", str(cert.key)] if cert else []


def own_key(processes: HostProcesses, host: str, chain, services: FlowerServices) -> list[str]:
    """A fresh rollup key for the validator on ``host``, in its host's folder only, the options that use it (its
    own node); its address goes to ``services.validator_addresses`` (the validators are started by group)."""
    key = processes.host_dir(host) / "validator-key"
    key.unlink(missing_ok=True)  # a new run, a new key
    services.validator_addresses.append(write_key_file(key))
    node = dict(chain.members).get(host, chain.node_url)
    return ["--key-file", str(key), "--deployment", str(chain.deployment), "--node", node]


def start_supernodes(processes: HostProcesses, topo: EdgeTopology, services: FlowerServices,
                     stations: list[str] | None = None,
                     clientapp_isolation: str = DEFAULT_CLIENTAPP_ISOLATION, chain=None) -> None:
    """`fedrollup trainer` on each station (all by default), dialing its own group's SuperLink with its key;
    with "warm" isolation, its warm ClientApp executor runs next to its SuperNode (Runtime API on the station's
    loopback). With a chain each station holds its own rollup key, written in its host's folder only (`fedrollup
    trainer rollup-keygen`, mode 0600): it registers, signs and contests from it (`services.trainer_addresses`, by
    trainer id, is what the manager is given)."""
    if clientapp_isolation not in CLIENTAPP_ISOLATION:
        raise ValueError(f"ClientApp isolation {clientapp_isolation!r} is not one of {CLIENTAPP_ISOLATION}")
    services.clientapp_isolation = clientapp_isolation
    repository = str(Path(__file__).resolve().parent.parent)
    for name in stations or [s.name for s in topo.stations]:
        validator = topo.validator_of(name).name
        cert = services.certificates.get(validator)
        partition_id, partitions = trainer_partition(topo, name)
        security = (["--tls-ca", str(cert.ca), "--key", str(services.keys[name])] if cert else ["--insecure"])
        argv = [str(VENV_BIN / "fedrollup"), "trainer", "--superlink", services.addresses[validator], *security,
                "--partition-id", str(partition_id), "--num-partitions", str(partitions),
                "--clientapp-isolation", clientapp_isolation,
                *(trainer_own_key(processes, name, partition_id, chain, services) if chain is not None else [])]
        trainer = processes.start(name, "trainer", argv, env={"PYTHONPATH": repository})
        services.supernodes[name] = trainer
        if clientapp_isolation == "warm":
            services.executors[name] = trainer


def trainer_own_key(processes: HostProcesses, host: str, trainer_id: int, chain, services: FlowerServices) -> list[str]:
    """A fresh rollup key for the trainer on ``host``, in its host's folder only, and the options that use it (the
    chain host's node); its address goes to ``services.trainer_addresses[trainer_id]``."""
    key = processes.host_dir(host) / "trainer-rollup-key"
    key.unlink(missing_ok=True)  # a new run, a new key
    while len(services.trainer_addresses) <= trainer_id:
        services.trainer_addresses.append("")
    services.trainer_addresses[trainer_id] = write_key_file(key)
    return ["--rollup-key-file", str(key), "--deployment", str(chain.deployment), "--node", chain.node_url,
            "--workdir", str(processes.host_dir(host) / "trainer")]


def log_text(process: HostProcess) -> str:
    try:
        return process.log.read_text(errors="replace")
    except OSError:
        return ""


def trainer_partition(topo: EdgeTopology, station: str) -> tuple[int, int]:
    """(partition-id, num-partitions) of a station as a trainer: its index among all stations, so the
    partition id is the trainer id `flower_sim` uses (groups are contiguous blocks of stations)."""
    names = [s.name for s in topo.stations]
    return names.index(station), len(names)


def registered_nodes(validator: HostProcess) -> int:
    """How many SuperNodes the validator's SuperLink logs activating (Fleet API `activate-node` calls)."""
    return log_text(validator).count("[Fleet.ActivateNode] Activated")


def tls_handshake(processes: HostProcesses, station: str, address: str, ca: str, timeout_s: float = 20.0) -> str:
    """From `station`, open TLS to address ("ip:port") verifying the run CA and the IP SAN; the TLS version."""
    host, port = address.rsplit(":", 1)
    code = ("import socket, ssl, sys; ctx = ssl.create_default_context(cafile=sys.argv[1]); "
            "s = ctx.wrap_socket(socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5), "
            "server_hostname=sys.argv[2]); print(s.version())")
    probe = processes.run(station, "tls-probe", [sys.executable, "-c", code, ca, host, port], timeout_s)
    return probe.log_tail(1).strip()


def executor_ready(trainer: HostProcess) -> bool:
    """Whether a trainer's log says its warm ClientApp executor has preloaded and serves tasks."""
    from flower_sim.warm_clientapp import READY  # heavy: Flower (0.5 s); `fedrollup --help` loads this module

    return READY in log_text(trainer)


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
