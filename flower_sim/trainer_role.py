"""A trainer's role in a deployment (`fedrollup trainer`): its SuperNode, with its partition and its key.

On the trainer's own device: a SuperNode dialing its validator's SuperLink over TLS (the validator's CA), signing
its requests with its authentication key (the SuperLink admits it only if its validator registered the public key),
its data partition in `--node-config` (the partition id is the trainer id the run knows it by). With "warm"
ClientApp isolation, `flower_sim.warm_clientapp` runs next to it and forks each ClientApp (`flower_sim.station_app`,
the trainer, timed) from a process that preloaded TensorFlow. With `--rollup-key-file` the trainer holds its own
rollup key: the key's path (never the key) reaches its ClientApps in the node config, and its agent
(`flower_sim.trainer_agent`) runs beside the SuperNode, ending with it. The command becomes the SuperNode (exec): it
lasts as long as the SuperNode, and exits with its code (Flower's 305 when the SuperLink refuses its key).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError
from flower_sim.deployment import (CLIENTAPP_ISOLATION, DEFAULT_CLIENTAPP_ISOLATION, RUNTIME_PORT, role_env,
                                   supernode_argv, warm_executor_argv)


@dataclass(frozen=True)
class TrainerOptions:
    """What `fedrollup trainer` runs: its validator's SuperLink, how it trusts it, its key, its partition."""

    superlink: str = ""                      # host:port of its validator's SuperLink
    tls_ca: Path | None = None               # the CA that signed the SuperLink's certificate
    insecure: bool = False
    key: Path | None = None                  # its SuperNode authentication key (private; the .pub is registered)
    partition_id: int = -1
    num_partitions: int = 0
    clientapp_isolation: str = DEFAULT_CLIENTAPP_ISOLATION
    runtime_port: int = RUNTIME_PORT        # its SuperNode's Runtime API on the loopback (one per trainer)
    rollup_key_file: Path | None = None     # its own rollup key (0600): it registers, signs and contests from it
    deployment: Path | None = None          # the rollup's deployment file
    node: str = ""                          # the rollups node it reads the rollup's answers from
    rpc: str = ""                           # L1's JSON-RPC; "": the deployment file's
    workdir: Path = Path("trainer")         # its folder: the updates it signed (kept to contest them)

    def own_rollup(self):
        """Its `trainer_agent.OwnRollup` (None without --rollup-key-file: the run mnemonic's account signs);
        ConfigError for a key file others may read, or missing rollup options."""
        if self.rollup_key_file is None:
            if self.deployment or self.node or self.rpc:
                raise ConfigError("--deployment, --node and --rpc go with --rollup-key-file (the trainer sends its "
                                  "own rollup inputs)")
            return None
        if self.deployment is None or not self.node:
            raise ConfigError("--rollup-key-file needs --deployment FILE and --node URL: the trainer registers and "
                              "contests from its own key and reads the rollup's answers")
        if not self.deployment.is_file():
            raise ConfigError(f"--deployment {self.deployment}: no such file")
        from flower_sim.trainer_agent import OwnRollup  # web3: only for a trainer holding its own key
        from flower_sim.key_file import read_key_file  # (same)

        read_key_file(self.rollup_key_file, "--rollup-key-file", "the trainer's")  # refused before anything starts
        return OwnRollup(self.rollup_key_file.resolve(), self.deployment.resolve(), self.node,
                         self.workdir.resolve(), self.rpc)

    def check(self) -> TrainerOptions:
        host, _, port = self.superlink.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--superlink {self.superlink!r}: give its validator's SuperLink as host:port")
        if not 0 <= self.partition_id < self.num_partitions:
            raise ConfigError(f"--partition-id {self.partition_id} is not one of the --num-partitions "
                              f"{self.num_partitions} partitions (0 .. {self.num_partitions - 1})")
        if self.clientapp_isolation not in CLIENTAPP_ISOLATION:
            raise ConfigError(f"--clientapp-isolation {self.clientapp_isolation!r}: one of {CLIENTAPP_ISOLATION}")
        if self.insecure:
            if self.tls_ca or self.key:
                raise ConfigError("--insecure runs without TLS and SuperNode authentication: drop --tls-ca and "
                                  "--key, or --insecure")
            return self
        for option, path in (("--tls-ca", self.tls_ca), ("--key", self.key)):
            if path is None:
                raise ConfigError(f"give {option} (or --insecure on a test network)")
            if not Path(path).is_file():
                raise ConfigError(f"{option} {path}: no such file")
        return self


def run(options: TrainerOptions) -> int:
    """Become the trainer's SuperNode (exec: no supervising process stays behind, 45 MiB saved per trainer), with
    the warm executor started first to serve this very process id; it exits when the SuperNode does."""
    options.check()
    own = options.own_rollup()
    argv = supernode_argv(options.superlink, (options.partition_id, options.num_partitions),
                          str(options.tls_ca) if options.tls_ca else None, options.clientapp_isolation,
                          str(options.key) if options.key else None, options.runtime_port,
                          own.node_config() if own is not None else None)
    env = role_env()
    if options.clientapp_isolation == "warm":
        # holding its own key: its ClientApps fork with web3 and its agent's code loaded, not each importing it
        subprocess.Popen(warm_executor_argv(os.getpid(), options.runtime_port,
                                            ("flower_sim.trainer_agent",) if own is not None else ()),
                         env=env, stdin=subprocess.DEVNULL)
    if own is not None:  # its agent: contests from its key when its validator leaves it out or misjudges it
        subprocess.Popen([sys.executable, "-m", "flower_sim.trainer_agent", "--trainer-id", str(options.partition_id),
                          "--parent-pid", str(os.getpid()), "--node-config", json.dumps(own.node_config())],
                         env=env, stdin=subprocess.DEVNULL)
    print(f"trainer {options.partition_id}: SuperNode dialing {options.superlink} "
          f"({'TLS, authenticated by its key' if options.key else 'insecure'}), partition "
          f"{options.partition_id} of {options.num_partitions}"
          + (f"; its rollup inputs from its own key ({options.rollup_key_file})" if own is not None else ""),
          flush=True)
    os.execve(argv[0], argv, env)
    return 0  # not reached: the SuperNode's exit code is the command's
