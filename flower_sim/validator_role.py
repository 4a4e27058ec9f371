"""A validator's role in a deployment (`fedrollup validator`): its SuperLink, its trainers' keys, its ServerApp.

On the validator's own machine: start the SuperLink over TLS with SuperNode authentication and register the public
key of each trainer of its group (`flwr supernode register`: the SuperLink then refuses any other SuperNode), say
`READY_LINE` (its trainers may connect), fetch the run's configuration from the manager (`manager_link.fetch_config`)
and `flwr run` the validator ServerApp (`flower_sim.validator_app`) on its SuperLink for the whole run: per round it
fetches the global model from the manager, runs its group's round and sends its model and report back. It ends when
the run ends, stopping its SuperLink; it fails (one line) when the ServerApp failed, which `flwr run --stream` does
not say in its exit code, so the role asks the SuperLink (`flwr ls`).
"""
from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError
from flower_sim.deployment import (BIN, READY_LINE, SUPERLINK_PORT, Children, RoleError, Tls, listening,
                                   public_keys_in, run_config, superlink_argv, wait_for,
                                   write_app, write_connection)
from flower_sim.manager_link import client_context, fetch_config

CONNECTION = "validator"  # the `flwr` connection name of the validator's own SuperLink


@dataclass(frozen=True)
class ValidatorOptions:
    """What `fedrollup validator` runs: which validator, where its manager is, where its SuperLink listens, its
    TLS material and its trainers' public keys, and its working folder."""

    id: int = 0                              # the validator's group, from 0
    manager: str = ""                        # the manager's link, https://host:port (or http://, not encrypted)
    manager_ca: Path | None = None           # the CA its https:// link is verified against; None: the system's
    host: str = "0.0.0.0"                    # the SuperLink's bind address
    port: int = SUPERLINK_PORT
    advertise: str = ""                      # the address its trainers dial (in its certificate); default --host
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure: bool = False                   # no TLS, no SuperNode authentication (a test network only)
    trainer_keys: Path | None = None         # folder of its trainers' *.pub keys
    workdir: Path = Path("validator")
    wait_manager_s: float = 3600.0
    wait_nodes_s: float = 180.0
    round_timeout_s: float = 1800.0
    reply_timeout_s: float = 600.0
    key_file: Path | None = None             # its own rollup key (0600): it sends its own inputs
    deployment: Path | None = None           # the rollup's deployment file (with --key-file)
    node: str = ""                           # the rollups node it reads the rollup's answers from
    rpc: str = ""                            # L1's JSON-RPC URL; "": the deployment file's

    def own_key(self) -> dict[str, str]:
        """The run config that makes its ServerApp send its own rollup inputs (`validator_agent`); {} without
        --key-file. ConfigError for a key file that is not its owner's only, or missing rollup options."""
        if self.key_file is None:
            if self.deployment or self.node or self.rpc:
                raise ConfigError("--deployment, --node and --rpc go with --key-file (the validator sends its own "
                                  "rollup inputs)")
            return {}
        if self.deployment is None or not self.node:
            raise ConfigError("--key-file needs --deployment FILE and --node URL: the validator sends its own rollup "
                              "inputs and reads the rollup's answers")
        if not self.deployment.is_file():
            raise ConfigError(f"--deployment {self.deployment}: no such file")
        from flower_sim.key_file import read_key_file  # web3: only for a validator holding its own key
        read_key_file(self.key_file)  # refused here, before the SuperLink starts, unless mode 0600
        return {"key-file": str(self.key_file.resolve()), "deployment-file": str(self.deployment.resolve()),
                "node-url": self.node, "rpc-url": self.rpc}

    def checked(self) -> tuple[Tls | None, list[Path]]:
        """(TLS material or None, the trainers' public keys); ConfigError for options that cannot run."""
        if self.id < 0:
            raise ConfigError("--id is the validator's group, from 0")
        if not self.manager.startswith(("http://", "https://")):
            raise ConfigError(f"--manager {self.manager!r}: give the manager's URL, e.g. https://10.0.0.1:8700")
        client_context(self.manager, self.manager_ca)  # a CA that is missing, unreadable or given for http://
        given = [p for p in (self.tls_ca, self.tls_cert, self.tls_key) if p is not None]
        if self.insecure:
            if given or self.trainer_keys:
                raise ConfigError("--insecure runs without TLS and SuperNode authentication: drop the --tls-* and "
                                  "--trainer-keys options, or --insecure")
            return None, []
        if len(given) != 3:
            raise ConfigError("give --tls-ca, --tls-cert and --tls-key (or --insecure on a test network)")
        if self.trainer_keys is None:
            raise ConfigError("give --trainer-keys DIR: the public keys of the trainers its SuperLink admits")
        tls = Tls(self.tls_ca.resolve(), self.tls_cert.resolve(), self.tls_key.resolve()).check()
        return tls, public_keys_in(self.trainer_keys)

    @property
    def address(self) -> str:
        """Where trainers and `flwr` reach the SuperLink, host:port."""
        host = self.advertise or ("127.0.0.1" if self.host in ("0.0.0.0", "") else self.host)
        return f"{host}:{self.port}"


def write_validator_app(folder: Path, values: dict) -> Path:
    """The validator's Flower app: its ServerApp and the timed trainer, with the run config `values`."""
    return write_app(folder, "fedrollup-validator", "One validator's group rounds with timed trainers",
                     "flower_sim.validator_app:app", "flower_sim.station_app:app", values)


def register_keys(children: Children, keys: list[Path], timeout_s: float = 120.0) -> None:
    """Register each trainer's public key with the SuperLink (`flwr supernode register`, its Control API), a few
    at a time (each is a `flwr` process that mostly waits on its imports)."""
    def register(key: Path) -> subprocess.CompletedProcess:
        return children.run([str(BIN / "flwr"), "supernode", "register", str(key), CONNECTION, "--format", "json"],
                            timeout_s)

    with ThreadPoolExecutor(max_workers=4) as pool:
        done_all = list(pool.map(register, keys))
    for key, done in zip(keys, done_all):
        answer = flwr_json(done)
        if not answer.get("success"):
            said = str(answer.get("error-message", "")).strip().splitlines() or [f"exit code {done.returncode}"]
            raise RoleError(f"registering trainer key {key.name} with the SuperLink failed: {said[-1]}")


def run_status(children: Children, timeout_s: float = 60.0) -> list[str]:
    """The status of every run on the SuperLink ("finished:completed", "finished:failed" ...), by `flwr ls`."""
    done = children.run([str(BIN / "flwr"), "ls", CONNECTION, "--format", "json"], timeout_s)
    answer = flwr_json(done)
    if not answer.get("success"):
        raise RoleError(f"`flwr ls` did not list the runs: {answer.get('error-message', done.returncode)}")
    return [r["status"] for r in answer["runs"]]


def flwr_json(done: subprocess.CompletedProcess) -> dict:
    """The JSON document a `flwr ... --format json` command printed (without one: its output as the error)."""
    try:
        return json.loads(done.stdout[done.stdout.index("{"):])
    except ValueError:
        return {"error-message": (done.stdout + done.stderr).strip()[-300:]}


def run(options: ValidatorOptions) -> int:
    tls, keys = options.checked()
    own_key = options.own_key()
    workdir = options.workdir.resolve()
    children = Children({"FLWR_HOME": str(workdir / "flwr-home")})
    manager = options.manager.rstrip("/")
    ca = options.manager_ca.resolve() if options.manager_ca else None
    if not manager.startswith("https://"):
        print(f"warning: the link to the manager at {manager} is not encrypted (plain HTTP): anyone on the path "
              f"reads the run's configuration and could serve a forged global model; use the manager's https:// "
              f"URL (fedrollup manager --tls-cert/--tls-key)", flush=True)
    try:
        write_connection(workdir / "flwr-home", CONNECTION, options.address, tls.ca if tls else None)
        superlink = children.start(superlink_argv(options.host, options.port, tls, supernode_auth=bool(keys)))
        host, port = options.address.rsplit(":", 1)
        wait_for(lambda: listening(host, int(port)), 60, f"the SuperLink on {options.address}", superlink)
        register_keys(children, keys)
        print(f"{READY_LINE} on {options.address} for validator {options.id}: "
              + (f"TLS, {len(keys)} trainer key(s) registered, no other SuperNode admitted" if tls else
                 "insecure, any SuperNode admitted") + f"; waiting for the manager at {manager}", flush=True)
        cfg = fetch_config(manager, options.wait_manager_s, ca)
        if options.id >= cfg.validators:
            raise ConfigError(f"--id {options.id}: the manager's run has {cfg.validators} validators "
                              f"(0 .. {cfg.validators - 1})")
        values = {**cfg.to_run_config(), "validator-id": options.id, "manager-url": manager,
                  "out": str(workdir / "models"), "wait-nodes-s": options.wait_nodes_s,
                  "wait-global-s": options.round_timeout_s, "reply-timeout-s": options.reply_timeout_s, **own_key,
                  **({"manager-ca": str(ca)} if ca else {})}
        app = write_validator_app(workdir / "app", values)
        print(f"validator {options.id}: `flwr run` of its ServerApp for {cfg.rounds} round(s) of the manager's run",
              flush=True)
        flwr = children.start([str(BIN / "flwr"), "run", str(app), CONNECTION, "--run-config", run_config(values),
                               "--stream"])
        if flwr.wait() != 0:
            raise RoleError(f"`flwr run` of validator {options.id}'s ServerApp exited with code {flwr.returncode}")
        failed = [s for s in run_status(children) if not s.endswith("completed")]
        if failed:  # `flwr run --stream` exits 0 even when its ServerApp failed
            raise RoleError(f"validator {options.id}'s ServerApp run ended {failed[0]} (its log above says why)")
        print(f"validator {options.id}: the run completed", flush=True)
        return 0
    finally:
        children.stop_all()
