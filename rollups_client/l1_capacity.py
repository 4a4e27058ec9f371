"""How much of the rollup's input traffic an L1 block carries, and so how long a round's contest window must be;
how long L1's blocks make a round wait, and so how many rounds a task keeps open at once.

The contest window (`contestBlocks`, PROTOCOL "Deadlines") is an honest trainer's recourse: a trainer reported
Negative or left out contests and posts its update within it. A window too short for every trainer of the round to
do so silently takes that recourse from some of them: at 1,000 trainers (100 a round, the MLP model) the runs' two
1-s blocks carried ~14 of 100 contests, and the others came late and were refused. The bound is L1's gas, not time:
since Prague (EIP-7623) calldata costs at least 10 gas per token (a zero byte one token, any other byte four), so an
input of model bytes costs ~40 gas a byte and one 30M-gas block carries ~12 chunks of 58 KB (measured on anvil:
2,313,960 gas for a 57,924-byte CNN chunk; 1,061,900 for a 65,252-byte test-set chunk, many of whose bytes are 0).

`input_gas` bounds what one `InputBox.addInput` costs from above (its calldata at the floor price plus the
transaction's base cost and the InputBox's own work); `contest_blocks` is the window that carries, in a round, the
validators' reveals and a contest (the Contest input and the update's chunks) from every trainer of the round, in
blocks filled at most to `fill` of their gas limit (a public chain's blocks carry others' transactions too).

`open_rounds` is the task's openRounds K: round r + K takes reports once round r closed, which lands a contest
window and `CLOSE_LAG_BLOCKS` after r's reports; K rounds must outlast that or training waits for L1. Measured
(`benchmarks.e2e`, 20 trainers, ~3.3-s rounds, 2-block windows): at 12-s blocks K = 8 left 25 % of a round waiting
for the chain over 24 rounds and K = 24 none; at 1-s blocks K = 8 none.
"""
from __future__ import annotations

import math

from dapp.qmodel import Arch
from dapp.schema import CHUNK_DATA, MAX_OPEN_ROUNDS, Contest, ModelChunk

TX_BASE_GAS = 21_000  # every transaction
FLOOR_GAS_PER_BYTE = 40  # EIP-7623: 10 gas per token, 4 tokens per non-zero byte (model bytes: nearly all non-zero)
STANDARD_GAS_PER_BYTE = 26  # below the floor: 16 of calldata, 8 of the InputAdded event's data, hashing and copies
INPUT_BOX_GAS = 55_000  # InputBox.addInput's own fixed work: a storage slot (new for an application's first input)
ADD_INPUT_ABI_BYTES = 4 + 3 * 32 + 31  # selector, app address, offset, length, at most 31 bytes of padding
CLOSE_LAG_BLOCKS = 3  # from a round's contest deadline to its close read back: the close sent, mined, processed
FASTEST_ROUND_S = 2.5  # the shortest round this project's runs train (the demo's 20 trainers: 3.3 s median)


def input_gas(payload_bytes: int) -> int:
    """An upper bound of the gas of one `addInput` carrying `payload_bytes` (every byte non-zero): the EIP-7623
    floor for large inputs (measured within 1 % of it for a full chunk), the standard price for small ones."""
    calldata = payload_bytes + ADD_INPUT_ABI_BYTES
    return TX_BASE_GAS + max(FLOOR_GAS_PER_BYTE * calldata, INPUT_BOX_GAS + STANDARD_GAS_PER_BYTE * calldata)


def model_inputs_gas(model_bytes: int) -> int:
    """The gas of posting a model of `model_bytes` bytes in ModelChunks (a reveal, a contested update)."""
    full, rest = divmod(model_bytes, CHUNK_DATA)
    chunk = len(ModelChunk(0, 0, bytes(32), 0, 1, bytes(CHUNK_DATA)).encode())  # a full chunk, header included
    last = len(ModelChunk(0, 0, bytes(32), 0, 1, bytes(rest)).encode()) if rest else 0
    return full * input_gas(chunk) + (input_gas(last) if rest else 0)


def contest_gas(arch: Arch) -> int:
    """One trainer's contest: the Contest input, then its update's chunks."""
    contest = len(Contest(0, 0, bytes(32), 0, bytes(32), bytes(32)).encode())
    return input_gas(contest) + model_inputs_gas(arch.encoded_size)


def contest_blocks(arch: Arch, trainers_per_round: int, groups: int, gas_limit: int, fill: float = 1.0,
                   minimum: int = 1) -> int:
    """The L1 blocks a round's contest window needs so that every one of `trainers_per_round` trainers can contest
    after the `groups` validators revealed their models, at `fill` of each block's `gas_limit`."""
    need = groups * model_inputs_gas(arch.encoded_size) + trainers_per_round * contest_gas(arch)
    per_block = int(gas_limit * fill)
    return max(minimum, -(-need // per_block))


def contests_carried(arch: Arch, blocks: int, groups: int, gas_limit: int, fill: float = 1.0) -> int:
    """How many contests a window of `blocks` blocks carries after the reveals (what a trainer checks before it
    joins a task: fewer than the trainers of a round means some could not contest)."""
    room = blocks * int(gas_limit * fill) - groups * model_inputs_gas(arch.encoded_size)
    return max(0, room // contest_gas(arch))


def open_rounds(block_time_s: float, contest_blocks: int, rounds: int, minimum: int = 1,
                round_s: float = FASTEST_ROUND_S) -> int:
    """The rounds a task keeps open on chain so that rounds of `round_s` seconds never wait for a close: K rounds
    must last the contest window and the close's lag, at L1's `block_time_s`. At least `minimum`, at most
    `rounds` - 1 (a close must still elect a later round's producer: FLPoS) and the rollup's MAX_OPEN_ROUNDS."""
    waited_s = (contest_blocks + CLOSE_LAG_BLOCKS) * block_time_s
    return max(1, min(max(minimum, math.ceil(waited_s / round_s)), rounds - 1, MAX_OPEN_ROUNDS))
