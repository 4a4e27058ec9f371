"""Issue 16 item 3 on the real parts (anvil, the @cartesi/rollups 2.2.0 contracts, the host-mode node, the backend):
a task with two rounds open at once takes round 2's reports while round 1 is still in its contest window; a validator
that claims to have kept the starting model (digest 0, nothing to reveal) while reporting a Positive is refused; one
that really accepted nothing keeps it, is averaged in as the previous global, and is not penalised; both rounds'
closes land in one block, in order (their producers known in advance), and the audit re-derives it all from L1."""
from __future__ import annotations

from dataclasses import replace

import pytest
from dapp_fixtures import update_of, validator_model
from onchain_fixtures import Entry, of, rollup, signed_report, task  # noqa: F401 (the fixture)

from dapp.schema import (ROLE_TRAINER, ROLE_VALIDATOR, GlobalModel, ProducerElected, Register, RoundClose,
                         TaskFinished, ValidatorPenalized)
from dapp.task import KEEP_DIGEST
from rollups_client.l1 import L1

pytestmark = pytest.mark.slow


def test_round_2_reports_during_round_1s_contest_window_and_digest_0_is_kept_only_without_a_positive(rollup):
    publisher, v0, v1 = rollup.key(), rollup.key(), rollup.key()
    trainers = [rollup.key(), rollup.key()]  # one per group
    (created,) = rollup.accepted(publisher, task((L1.address(v0), L1.address(v1)), open_rounds=2))
    t = created.task_id
    assert created.open_rounds == 2
    rollup.post_test_set(publisher, t)
    rollup.deposit(publisher, t, created.required_escrow)
    for g, v in enumerate((v0, v1)):
        rollup.accepted(v, Register(t, ROLE_VALIDATOR, g))
        rollup.accepted(trainers[g], Register(t, ROLE_TRAINER, g))

    def report(round_: int, g: int, bps: int, model: bytes):
        entry = Entry(trainers[g], bps, update_of(L1.address(trainers[g]), round_))
        return signed_report(rollup.domain, t, round_, g, 9000, model, [entry])

    for g, v in enumerate((v0, v1)):
        rollup.accepted(v, report(1, g, 8800, validator_model(g, 1)))
    for g, v in enumerate((v0, v1)):
        rollup.post_blob(v, t, 1, validator_model(g, 1))
    contest_1 = rollup.contest_deadline(t)
    rollup.accepted(v0, report(2, 0, 8800, validator_model(0, 2)))  # round 1 is still open for contests
    assert rollup.l1.w3.eth.block_number <= contest_1
    lie = replace(report(2, 1, 8800, validator_model(1, 2)), model_digest=KEEP_DIGEST)
    assert "commits digest 0" in rollup.rejected(v1, lie)  # a Positive, yet nothing to reveal
    rollup.accepted(v1, replace(report(2, 1, 1000, validator_model(1, 2)), model_digest=KEEP_DIGEST))
    rollup.post_blob(v0, t, 2, validator_model(0, 2))

    # Both closes in one block: round 2's producer is known before round 1 closes (rounds 1..K: the fixed order)
    later = rollup.inspect(f"producer/{t}?round=2&block={rollup.l1.w3.eth.block_number}")
    assert [o["producer"].lower() for o in later["open"]] == [L1.address(publisher).lower()] * 2
    rollup.mine_to(max(contest_1, later["contest_deadline"]))
    rollup.l1.w3.provider.make_request("evm_setAutomine", [False])
    try:
        sent = [rollup.l1.send_input(publisher, RoundClose(t, r).encode()) for r in (1, 2)]
        rollup.l1.mine(1)
    finally:
        rollup.l1.w3.provider.make_request("evm_setAutomine", [True])
    assert len({rollup.l1.receipt(tx)["blockNumber"] for tx in sent}) == 1
    first, second = (rollup._processed(rollup.l1.input_index(tx)) for tx in sent)
    assert rollup.node.input_status(first) == rollup.node.input_status(second) == "ACCEPTED"
    assert not of([o.message for o in rollup.node.notices(input_index=first)], ProducerElected)  # no round 3
    notices = [o.message for o in rollup.node.notices(input_index=second)]
    (glob,) = of(notices, GlobalModel)
    assert glob.groups == (0, 1) and not of(notices, ValidatorPenalized) and of(notices, TaskFinished)
    rollup.assert_serving_and_audited()
