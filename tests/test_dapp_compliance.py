"""Issue 17: a QoS task's compliance on the rollup. Its public test set names each row's cell; when a round's global
model exists the rollup classifies every row with it and records, per cell, the sessions, the predicted and actual
SLA violations and the true positives (`CellCompliance`), so an auditor reads "cell 1: 30% of sessions predicted in
violation" from notices and can re-derive it. A test set that names a cell the task does not have is dropped."""
from __future__ import annotations

import json

import numpy as np
from dapp_fixtures import (PUBLISHER, Chain, close_when_due, create_task, play_round, post_test_set, report,
                           task_message, trainer, validator)
from eth_utils import keccak

from dapp import qmodel
from dapp.qmodel import QOS_INPUTS, Q_MAX, QLayer, QModel
from dapp.schema import BlobRejected, CellCompliance, GlobalModel, TestSetPosted
from frontend_console.explorer import rounds
from frontend_console.views import rounds_table
from rich.console import Console
from rollups_client.outputs import RollupOutput

QOS = qmodel.arch_named("qos")
HIGH, LOW = 200, 20


def cells_set(labels: list[int], cells: list[int], says_violation: list[bool]) -> bytes:
    """A QoS test set (labels | cells | 12 features): a row the `flags` model calls a violation has feature 0 high
    and feature 1 low, else the reverse."""
    features = np.zeros((len(labels), QOS_INPUTS), dtype=np.uint8)
    features[:, 0] = [HIGH if v else LOW for v in says_violation]
    features[:, 1] = [LOW if v else HIGH for v in says_violation]
    return bytes(labels) + bytes(cells) + features.tobytes()


def flags_model(salt: int = 0) -> bytes:
    """An FRQ1 qos model that predicts "violation" (class 1) exactly when feature 0 exceeds feature 1: hidden units
    0 and 1 copy the two features through both ReLU layers, the logit of class 1 is unit 0 and of class 0 unit 1.
    ``salt`` changes an unused bias: another digest, the same predictions."""
    first = np.zeros((QOS_INPUTS, 32), dtype=np.int64)
    first[0, 0] = first[1, 1] = Q_MAX
    second = np.zeros((32, 16), dtype=np.int64)
    second[0, 0] = second[1, 1] = Q_MAX
    last = np.zeros((16, 2), dtype=np.int64)
    last[0, 1] = last[1, 0] = Q_MAX
    scale = 1 << 24
    layers = (QLayer("dense", first, (scale,) * 32, (0,) * 31 + (salt,), True),
              QLayer("dense", second, (scale,) * 16, (0,) * 16, True),
              QLayer("dense", last, (scale,), (0, 0), False))
    return qmodel.encode(QModel(QOS.id, layers))


# cell 0: 4 sessions, 1 violation, predicted 2 (1 right); cell 1: 6 sessions, 3 violations, predicted 2 (both right)
LABELS = [1, 0, 0, 0, 1, 1, 1, 0, 0, 0]
CELLS = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
SAYS = [True, True, False, False, True, True, False, False, False, False]
QOS_SET = cells_set(LABELS, CELLS, SAYS)


def qos_chain(test_set: bytes = QOS_SET) -> Chain:
    chain = Chain()
    create_task(chain, rounds=2, contest_blocks=20, test_set=test_set, test_set_digest=keccak(test_set),
                test_set_size=len(LABELS), model_arch=QOS.id)
    return chain


def test_each_round_records_every_cells_compliance_from_the_global_model():
    chain = qos_chain()
    assert chain.of_type(TestSetPosted)
    play_round(chain, 1, 1, PUBLISHER, models={0: flags_model(1), 1: flags_model(2)})
    (glob,) = chain.of_type(GlobalModel)
    assert glob.accuracy_bps == 8_000  # rows 1 and 6 are misclassified
    cells = chain.of_type(CellCompliance)
    assert [(c.round, c.group, c.sessions, c.correct, c.predicted_violations, c.actual_violations, c.true_positives)
            for c in cells] == [(1, 0, 4, 3, 2, 1, 1), (1, 1, 6, 5, 2, 3, 2)]
    notices = chain.notices
    assert notices.index(cells[0]) == notices.index(glob) + 1  # right after the model they describe


def test_the_console_and_the_explorer_show_each_cells_predicted_violations():
    chain = qos_chain()
    play_round(chain, 1, 1, PUBLISHER, models={0: flags_model(1), 1: flags_model(2)})
    outputs = [RollupOutput(i, i, 0, "Notice", b"", n.encode(), message=n) for i, n in enumerate(chain.notices)]
    console = Console(width=400, record=True)
    console.print(rounds_table(outputs, 1))
    shown = console.export_text()
    assert "SLA compliance per cell" in shown
    rows = {tuple(c.strip() for c in line.split("│")[1:4]): [c.strip() for c in line.split("│")[4:-1]]
            for line in shown.splitlines() if line.startswith("│") and line.count("│") == 9}
    assert rows[("1", "1", "0")] == ["4", "50.0%", "25.0%", "100.0%", "75.0%"]  # sessions, predicted, actual, recall
    assert rows[("1", "1", "1")] == ["6", "33.3%", "50.0%", "66.7%", "83.3%"]   # and the cell's accuracy
    cells = json.loads(json.dumps(rounds(outputs)))[0]["cells"]  # the explorer page's JSON
    assert [(c["group"], c["sessions"], c["predicted_violations"]) for c in cells] == [(0, 4, 2), (1, 6, 2)]
    assert cells[1]["text"].startswith("cell 1: 33.3% predicted in violation")


def test_a_round_without_a_new_global_model_records_no_compliance():
    chain = qos_chain()
    for g in (0, 1):  # every validator reports, nobody reveals: the previous global (none) stands
        chain.send(validator(g), report(1, 1, 9000, {trainer(g, i): 8800 for i in range(3)}, model=flags_model(g)))
    close_when_due(chain, 1, 1, PUBLISHER)
    assert not chain.of_type(GlobalModel) and not chain.of_type(CellCompliance)


def test_digit_tasks_record_no_compliance():
    chain = Chain()
    create_task(chain, rounds=2, contest_blocks=20)
    play_round(chain, 1, 1, PUBLISHER)
    assert chain.of_type(GlobalModel) and not chain.of_type(CellCompliance)


def test_a_test_set_naming_a_cell_the_task_lacks_or_a_third_class_is_dropped():
    for cells, labels, why in ([CELLS[:-1] + [2], LABELS, "group 2, the task has 2 groups"],
                               [CELLS, LABELS[:-1] + [2], "a label is 2, above class 1"]):
        bad = cells_set(labels, cells, SAYS)
        chain = Chain()
        chain.send(PUBLISHER, task_message(rounds=2, test_set_digest=keccak(bad), test_set_size=len(labels),
                                           model_arch=QOS.id))
        result = post_test_set(chain, 1, bad)
        assert isinstance(result.outputs[0].message, BlobRejected) and why in result.summary
        assert chain.task().test_set is None

