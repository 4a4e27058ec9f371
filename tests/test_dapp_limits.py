"""The backend designs against the same limits the node enforces (a real Cartesi Machine's and node's).
A task at the largest size the rules allow is played in `test_dapp_liveness.py`
(`test_a_full_round_at_the_scale_limit_stays_within_the_machine_limits`); the time of every input type at
that size is measured by `benchmarks.dapp_scale` (docs/benchmarks.md), not by a test."""
from __future__ import annotations

from dapp.schema import MAX_OUTPUT_BYTES, MAX_OUTPUTS_PER_INPUT
from rollups_node.rollup_http_schema import MAX_OUTPUTS, TX_BUFFER_BYTES


def test_the_backends_limits_are_the_nodes():
    assert MAX_OUTPUTS_PER_INPUT == MAX_OUTPUTS and MAX_OUTPUT_BYTES == TX_BUFFER_BYTES
