"""Starting the local dev L1: the anvil binary installed by npm, on loopback (or a given address), with a
configurable block time."""
from __future__ import annotations

import errno
import ipaddress
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

from contracts_config.artifacts import ANVIL_BINARY
from common.errors import ConfigError

DEFAULT_PORT = 8545
DEFAULT_CHAIN_ID = 31337


def anvil_binary() -> Path:
    if ANVIL_BINARY.exists():
        return ANVIL_BINARY
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise ConfigError(f"anvil is missing (expected {ANVIL_BINARY}): run `make setup` (npm ci in contracts-config/)")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_bind_address(host: str) -> None:
    """`host` is an IPv4 address of this machine (or 0.0.0.0, every address); else a one-line ConfigError."""
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise ConfigError(f"--host {host!r} is not an IPv4 address (e.g. 127.0.0.1, 10.2.0.2 or 0.0.0.0)") from None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, 0))
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(f"--host {host} is not an address of this machine (see `ip -4 addr`)") from None
            raise ConfigError(f"cannot listen on {host}: {err.strerror}") from None


def url_host(host: str) -> str:
    """The address to put in a URL for a server bound to `host`: loopback for 0.0.0.0 (every address)."""
    return "127.0.0.1" if host == "0.0.0.0" else host


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
FREE_PORTS_FROM = 20_000  # below the kernel's ephemeral range (32768 up by default)


def free_port(run: int = 1) -> int:
    """The first of `run` consecutive TCP ports on loopback that nothing uses right now, chosen below the kernel's
    ephemeral range: a port from that range can be taken by any client socket (web3's to anvil, say) between this
    check and the server's bind, which once made a node fail to start ("Address already in use")."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768
    rng = random.SystemRandom()
    for _ in range(1_000):
        first = rng.randrange(FREE_PORTS_FROM, max(FREE_PORTS_FROM + 1, low - run))
        if all(_port_free(first + i) for i in range(run)):
            return first
    raise OSError(f"no {run} consecutive free TCP ports on loopback between {FREE_PORTS_FROM} and {low}")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def rpc_answers(url: str) -> bool:
    try:
        reply = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                              timeout=1)
        return reply.ok and "result" in reply.json()
    except (requests.RequestException, ValueError):
        return False


def start_anvil(port: int = DEFAULT_PORT, block_time: float | None = 1.0, chain_id: int = DEFAULT_CHAIN_ID,
                log_path: Path | None = None, timeout: float = 20.0, host: str = "127.0.0.1") -> subprocess.Popen:
    """Start anvil on `host`:`port`; return once it answers JSON-RPC. `block_time=None` mines per transaction."""
    if not port_is_free(port, host):
        raise ConfigError(f"port {port} is already in use on {host} (is another chain running? "
                         "try `fedrollup chain down` or pass another --l1-port)")
    command = [str(anvil_binary()), "--host", host, "--port", str(port), "--chain-id", str(chain_id)]
    if block_time:
        command += ["--block-time", f"{block_time:g}"]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    url = f"http://{url_host(host)}:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"anvil exited at start with code {process.returncode}"
                             + (f" (see {log_path})" if log_path else ""))
        if rpc_answers(url):
            return process
        time.sleep(0.1)
    process.kill()
    raise ConfigError(f"anvil did not answer at {url} within {timeout:g} s")
