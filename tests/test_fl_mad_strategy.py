"""The MAD validator strategy: boundary decisions, FedAvg weighting of Positives, fallback to the global model."""
from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord

from flower_sim.grid import InProcessGrid
from flower_sim.mad_strategy import MadFedAvg
from tests.fl_fixtures import ScriptedJudge, constant_client_app


def run_round(judge: ScriptedJudge, examples: dict[int, int], mad_bps: int = 2_500):
    grid = InProcessGrid(constant_client_app(examples), num_nodes=len(examples), run_config={})
    strategy = MadFedAvg(judge, mad_bps=mad_bps, min_train_nodes=len(examples),
                         min_available_nodes=len(examples), fraction_evaluate=0.0)
    global_arrays = ArrayRecord([np.full(3, -1.0, dtype=np.float32)])
    messages = strategy.configure_train(1, global_arrays, ConfigRecord({}), grid)
    arrays, _ = strategy.aggregate_train(1, grid.send_and_receive(messages))
    return arrays.to_numpy_ndarrays()[0], {d.trainer_id: d.positive for d in strategy.decisions}


def test_exactly_75_percent_of_the_validator_accuracy_is_positive_one_bps_less_is_not():
    judge = ScriptedJudge(own_bps=8_000, bps={0: 6_000, 1: 5_999, 2: 9_000})
    _, positive = run_round(judge, {0: 10, 1: 10, 2: 10})
    assert positive == {0: True, 1: False, 2: True}


def test_positives_are_averaged_weighted_by_sample_count_and_negatives_are_left_out():
    # trainer 1 sends 1.0 with 10 samples, trainer 3 sends 3.0 with 30 samples, trainer 2 is rejected.
    judge = ScriptedJudge(own_bps=9_000, bps={0: 100, 1: 9_000, 2: 1_000, 3: 8_800})
    weights, positive = run_round(judge, {0: 50, 1: 10, 2: 1_000, 3: 30})
    assert positive == {0: False, 1: True, 2: False, 3: True}
    assert weights == pytest.approx(np.full(3, (1.0 * 10 + 3.0 * 30) / 40))


def test_when_nothing_is_positive_the_validator_keeps_the_global_model():
    judge = ScriptedJudge(own_bps=9_500, bps={0: 1_000, 1: 900})
    weights, positive = run_round(judge, {0: 10, 1: 10})
    assert positive == {0: False, 1: False}
    assert weights == pytest.approx(np.full(3, -1.0))


def test_a_tighter_mad_rejects_what_the_paper_default_accepts():
    judge = ScriptedJudge(own_bps=9_000, bps={0: 7_000, 1: 9_000})
    assert run_round(judge, {0: 10, 1: 10}, mad_bps=2_500)[1] == {0: True, 1: True}
    assert run_round(judge, {0: 10, 1: 10}, mad_bps=1_000)[1] == {0: False, 1: True}
