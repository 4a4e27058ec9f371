"""The QoS task (issue 17): each station's own windows, labelled by the next window's SLA, non-IID by cell; its
options, its test-set bytes, and a short federated run that learns to catch violations."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dapp import qnn
from dapp.qmodel import QOS_INPUTS, arch_named
from fedrollup.cli import main
from flower_sim import qos_data
from flower_sim.attacks import flip_labels
from flower_sim.config import SimulationConfig
from flower_sim.qos_data import (FEATURE_SCALES, QOS_FEATURES, WINDOWS, emulated_table, generate, make_qos_splits,
                                 public_test_set, read_emulated, station_layout, violated)
from flower_sim.splits import SplitSpec

FIXTURE = Path(__file__).parent / "data" / "qos_emulated.csv"
SPEC = SplitSpec(trainers=6, validators=3, seed=7, task="qos")  # one cell per technology: WiFi, LTE, 5G


def feature(x: np.ndarray, name: str) -> np.ndarray:
    """The values a column of u8 / 255 features stands for."""
    return FEATURE_SCALES[name].decode(np.rint(x[:, QOS_FEATURES.index(name)] * 255))


def test_the_same_seed_gives_the_same_windows_and_another_seed_others():
    a, b = make_qos_splits(SPEC, FIXTURE), make_qos_splits(SPEC, FIXTURE)
    other = make_qos_splits(replace(SPEC, seed=8), FIXTURE)
    for x, y in ((a.test, b.test), *zip(a.trainers, b.trainers), *zip(a.validators, b.validators)):
        assert np.array_equal(x.x, y.x) and np.array_equal(x.y, y.y)
    assert np.array_equal(a.test_groups, b.test_groups)
    assert not np.array_equal(a.test.x, other.test.x)


def test_features_are_bytes_over_255_and_named_as_the_rollups_architecture_counts_them():
    splits = make_qos_splits(SPEC, FIXTURE)
    assert len(QOS_FEATURES) == QOS_INPUTS
    for data in (splits.test, *splits.trainers, *splits.validators):
        assert data.x.dtype == np.float32 and data.x.shape == (len(data), QOS_INPUTS)
        codes = np.rint(data.x.astype(np.float64) * 255)
        assert codes.min() >= 0 and codes.max() <= 255
        assert np.array_equal(codes.astype(np.float32) / np.float32(255), data.x)  # x is exactly u8 / 255
        assert set(np.unique(data.y)) <= {0, 1}


def test_each_label_is_the_next_windows_sla_not_the_current_ones():
    sizes, *_ = station_layout(SPEC)
    w = generate(SPEC, sizes, emulated_table(FIXTURE))
    x = w.features.astype(np.float32) / 255
    same_station = w.station[1:] == w.station[:-1]
    # the next row's "previous window" columns are this row's current ones, byte for byte
    pairs = (("throughput_mbps", "throughput_prev_mbps"), ("rtt_ms", "rtt_prev_ms"), ("loss_pct", "loss_prev_pct"))
    for now, prev in pairs:
        column, previous = QOS_FEATURES.index(now), QOS_FEATURES.index(prev)
        assert np.array_equal(w.features[:-1, column][same_station], w.features[1:, previous][same_station])
    broken = violated(feature(x, "throughput_mbps"), feature(x, "rtt_ms"), feature(x, "loss_pct"), SPEC)
    label = w.labels[:-1][same_station]
    next_agrees = np.mean(label == broken[1:][same_station])
    now_agrees = np.mean(label == broken[:-1][same_station])
    assert next_agrees > 0.97  # all but windows within one byte step of a bound
    assert now_agrees < next_agrees - 0.03  # a real forecast: the current window does not give the answer away


def test_cells_differ_by_technology_load_and_violation_rate_non_iid_by_construction():
    splits = make_qos_splits(SPEC, FIXTURE)
    by_cell = [splits.test.x[splits.test_groups == c] for c in range(3)]
    throughput = [np.median(feature(x, "throughput_mbps")) for x in by_cell]
    assert throughput[2] > 3 * throughput[0]  # 5G's cell against WiFi's
    technology = [set(np.unique(np.rint(feature(x, "technology")))) for x in by_cell]
    assert technology == [{0.0}, {1.0}, {2.0}]
    rates = [float(t.y.mean()) for t in splits.trainers]
    assert max(rates) - min(rates) > 0.05
    assert 0.05 < splits.test.y.mean() < 0.35  # violations are the rare class at the default SLA


def test_every_trainer_holds_its_own_stations_windows_in_its_validators_cell():
    splits = make_qos_splits(SPEC, FIXTURE)
    cfg = SimulationConfig(trainers=SPEC.trainers, validators=SPEC.validators, task="qos")
    sizes, trainers, _, _ = station_layout(SPEC)
    stations = [s for ids in trainers for s in ids]
    for t in range(SPEC.trainers):
        assert stations[t] in trainers[cfg.group_of(t)]
        assert set((splits.trainer_index[t] // WINDOWS).tolist()) == {stations[t]}  # one station's own windows
    used = np.concatenate([*splits.trainer_index, *splits.validator_index])
    assert len(np.unique(used)) == len(used)
    assert sorted(set(splits.test_groups.tolist())) == [0, 1, 2]


def test_the_public_test_set_bytes_round_trip():
    splits = make_qos_splits(SPEC, FIXTURE)
    data = public_test_set(splits.test, splits.test_groups, size=100)
    assert len(data) == 100 * (2 + QOS_INPUTS)
    parsed = qnn.parse_test_set(data, arch_named("qos"))  # as the rollup reads it
    assert np.array_equal(parsed.labels, splits.test.y[:100])
    assert np.array_equal(parsed.groups, splits.test_groups[:100])
    assert np.array_equal(parsed.inputs, np.rint(splits.test.x[:100] * 255).astype(np.int64))
    assert np.array_equal(parsed.inputs.astype(np.float32) / np.float32(255), splits.test.x[:100])


def test_a_window_draws_a_measured_sending_window_of_its_link_rate_and_nearest_load(tmp_path):
    table = emulated_table(FIXTURE)
    sample = read_emulated(FIXTURE)
    sent = sample["goodput_mbps"] > 0
    link_index = np.repeat(np.arange(len(table.links)), 40).reshape(-1, 8)
    active = np.tile(np.arange(1, 9), (len(link_index), 1))  # loads up to 8, beyond the sample's
    goodput, rtt = table.draw(np.random.default_rng(3), link_index, active)
    for li, a, g, r in zip(link_index.ravel(), active.ravel(), goodput.ravel(), rtt.ravel()):
        load = table.nearest[li, min(a, table.max_active)]
        same = sent & (sample["link_mbps"] == table.links[li]) & (sample["active_stations"] == load)
        assert ((sample["goodput_mbps"] == g) & (sample["rtt_ms"] == r) & same).any()
    assert table.max_active == int(sample["active_stations"][sent].max())


def test_the_reader_names_a_missing_column_and_reads_an_empty_rtt_as_missing(tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text(FIXTURE.read_text().replace("rtt_ms", "delay"))
    with pytest.raises(ValueError, match="rtt_ms"):
        read_emulated(broken)
    lines = FIXTURE.read_text().splitlines()
    no_ping = tmp_path / "no_ping.csv"
    no_ping.write_text("\n".join([lines[0], lines[1].rsplit(",", 1)[0] + ","]) + "\n")
    assert np.isnan(read_emulated(no_ping)["rtt_ms"]).all()


def test_a_label_flipper_swaps_violation_and_compliance():
    y = np.array([0, 1] * 50)
    flipped = flip_labels(y, 1.0, np.random.default_rng(1), classes=2)
    assert np.array_equal(flipped, 1 - y)


def test_the_qos_task_brings_its_model_and_survives_the_flower_run_config():
    cfg = SimulationConfig(task="qos").validate()
    assert cfg.model == "qos" and SimulationConfig().model == "cnn"
    assert SimulationConfig.from_run_config(cfg.to_run_config()) == cfg
    assert cfg.split_spec().task == "qos" and cfg.split_spec().sla_mbps == cfg.sla_mbps


@pytest.mark.parametrize("argv,words", [
    (["--task", "qos", "--model", "cnn"], "--model cnn does not fit --task qos"),
    (["--model", "qos"], "--model qos does not fit --task mnist"),
    (["--task", "qos", "--partition", "dirichlet"], "--partition and --data apply to --task mnist"),
    (["--task", "qos", "--data", "mnist.npz"], "--partition and --data apply to --task mnist"),
    (["--task", "qos", "--sla-loss-pct", "0"], "--sla-loss-pct in (0, 100)"),
])
def test_options_that_do_not_fit_the_task_give_one_line(argv, words, capsys):
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


@pytest.mark.slow
def test_a_short_qos_run_records_violation_figures_and_catches_violations(tmp_path):
    out = tmp_path / "run"
    assert main(["simulate", "--task", "qos", "--rounds", "2", "--trainers", "4", "--validators", "2",
                 "--attack", "labelflip", "--malicious", "0.25", "--lr", "0.3", "--batch-size", "8",
                 "--local-epochs", "5", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["task"] == "qos" and metrics["config"]["model"] == "qos"
    last = metrics["rounds"][-1]
    for key in ("global_accuracy", "global_accuracy_bps", "validators", "contributions", "global_violation_precision",
                "global_violation_recall", "test_violation_rate"):
        assert key in last
    assert 0 < last["test_violation_rate"] < 0.5
    assert last["global_violation_recall"] > 0  # always-compliant catches none
    assert qos_data.SAMPLE_PATH.is_file()
