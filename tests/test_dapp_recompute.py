"""Issue 13: the numbers that move money are the rollup's own. Validators commit to their models in their
reports and reveal them after every group has committed; the rollup scores each on the task's public test set,
averages them into the global model and scores that; RoundClose carries no numbers. Reports carry each trainer's
signature, so a validator cannot attribute an update or a sample count to a trainer who did not sign it."""
from __future__ import annotations

import numpy as np
import pytest
from dapp_fixtures import (MILLI, PUBLISHER, STRANGER, TEST_SET, Chain, band_model, band_test_set, chunks, close,
                           close_when_due, create_task, key_of, post_blob, post_test_set, report, signed, task_message,
                           trainer, validator, validator_model)
from eth_utils import keccak

from dapp import qmodel, qnn
from dapp.eip712 import Domain, Update
from dapp.qmodel import Q_MAX, QLayer, QModel
from dapp.schema import (PENALTY_UNREVEALED, ROLE_TRAINER, ROLE_VALIDATOR, BlobRejected, GlobalModel, ModelChunk,
                         ModelScored, ProducerElected, Register, RewardPaid, RoundRecorded, TaskCreated, TestSetChunk,
                         TestSetPosted, ValidatorPenalized, ValidatorReport, ValidatorRewarded, encode_deposit_data,
                         pack_contribution)
from flower_sim.signatures import sign


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    create_task(c, rounds=5)
    return c


def commit_all(chain: Chain, round_: int, models: dict[int, bytes], claimed_bps: int = 9000) -> None:
    for g, model in models.items():
        chain.send(validator(g), report(1, round_, claimed_bps, {trainer(g, 0): 8800}, model=model))


def public(model: bytes) -> int:
    return qnn.accuracy(qmodel.decode(model), qnn.parse_test_set(TEST_SET, qmodel.ARCHS[1]))


def test_producer_capture_records_the_true_numbers_and_does_not_reward_the_liar(chain):
    """The issue's scenario: validator A (group 0) wins round 1 honestly and is elected; from round 2 on its models
    are worse (7,000 bps) while it claims 100% on its own data and closes every round. Under issue 12's rules A
    wrote the global and group accuracies into its RoundClose and rewarded itself every round."""
    liar, honest = validator(0), validator(1)
    commit_all(chain, 1, {0: band_model(), 1: band_model(dead=(1,))})
    for g, m in ((0, band_model()), (1, band_model(dead=(1,)))):
        post_blob(chain, validator(g), 1, 1, m)
    close_when_due(chain, 1, 1, PUBLISHER)
    assert chain.of_type(ProducerElected)[-1].producer == liar
    producer = liar
    for r in range(2, 6):
        models = {0: band_model(dead=(1, 2, 3), salt=r), 1: band_model(salt=r)}
        commit_all(chain, r, models, claimed_bps=10_000)
        for g, m in models.items():
            post_blob(chain, validator(g), 1, r, m)
        close_when_due(chain, 1, r, producer)
        producer = chain.of_type(ProducerElected)[-1].producer if r < 5 else producer
        expected = qmodel.encode(qmodel.average([qmodel.decode(models[0]), qmodel.decode(models[1])]))
        (glob,) = [n for n in chain.of_type(GlobalModel) if n.round == r]
        assert glob.model == expected and glob.digest == keccak(expected) and glob.groups == (0, 1)
        assert chain.of_type(RoundRecorded)[-1].global_accuracy_bps == public(expected) == 10_000
        scored = {n.group: n.accuracy_bps for n in chain.of_type(ModelScored) if n.round == r}
        assert scored == {0: 7000, 1: 10_000}, "the liar's model is scored on the public set, not by its claim"
        assert chain.of_type(ValidatorRewarded)[-1].validator == honest
    stakes = chain.task().stakes
    assert (stakes[liar], stakes[honest]) == (1 * MILLI, 4 * MILLI)
    assert [n.producer for n in chain.of_type(ProducerElected)] == [liar, honest, honest, honest]


def test_a_model_is_revealed_only_once_every_group_has_committed(chain):
    # Group 1 may not see group 0's model on L1 before committing its own (it would copy it and win the reward).
    model = validator_model(0, 1)
    chain.send(validator(0), report(1, 1, 9000, {}, model=model))
    why = chain.reject(validator(0), ModelChunk(1, 1, qmodel.digest(model), 0, 1, model))
    assert "revealed once every group reported or after the report deadline" in why
    chain.send(validator(1), report(1, 1, 9000, {}, model=validator_model(1, 1)))
    post_blob(chain, validator(0), 1, 1, model)
    assert chain.of_type(ModelScored)[-1].accuracy_bps == 10_000


def test_a_blob_nobody_committed_to_is_refused(chain):
    commit_all(chain, 1, {0: validator_model(0, 1), 1: validator_model(1, 1)})
    other = band_model(salt=12345)
    why = chain.reject(STRANGER, ModelChunk(1, 1, qmodel.digest(other), 0, 1, other))
    assert f"no model or update 0x{qmodel.digest(other).hex()[:12]}… is expected in round 1" in why


def test_the_reveal_window_closes_at_the_contest_deadline(chain):
    commit_all(chain, 1, {0: validator_model(0, 1), 1: validator_model(1, 1)})
    deadline = chain.task().contest_deadline()
    chain.mine_to(deadline + 1)
    model = validator_model(0, 1)
    why = chain.reject(validator(0), ModelChunk(1, 1, qmodel.digest(model), 0, 1, model))
    assert f"had to be revealed by block {deadline}" in why


def test_unrevealed_model_is_penalised_excluded_from_the_global_and_put_last(chain):
    commit_all(chain, 1, {0: band_model(dead=(4,)), 1: validator_model(1, 1)})
    post_blob(chain, validator(0), 1, 1, band_model(dead=(4,)))
    post_blob(chain, validator(1), 1, 1, validator_model(1, 1))
    close_when_due(chain, 1, 1, PUBLISHER)  # group 1's model is the closest to the global: reward and stake
    commit_all(chain, 2, {0: validator_model(0, 2), 1: validator_model(1, 2)})
    post_blob(chain, validator(0), 1, 2, validator_model(0, 2))  # validator 1 never reveals
    close_when_due(chain, 1, 2, validator(1))
    (penalty,) = chain.of_type(ValidatorPenalized)
    assert (penalty.validator, penalty.group, penalty.reason) == (validator(1), 1, PENALTY_UNREVEALED)
    assert (penalty.stake_cut, penalty.stake) == (1 * MILLI, 0)
    glob = chain.of_type(GlobalModel)[-1]
    assert glob.groups == (0,) and chain.of_type(ValidatorRewarded)[-1].validator == validator(0)
    assert chain.of_type(ProducerElected)[-1].producer == validator(0)
    assert [n.trainer for n in chain.of_type(RewardPaid) if n.round == 2] == [trainer(0, 0), trainer(1, 0)], \
        "the validator's fault does not cost its trainers their pay"


def test_a_round_with_nothing_revealed_keeps_the_previous_global(chain):
    play = {0: validator_model(0, 1), 1: validator_model(1, 1)}
    commit_all(chain, 1, play)
    for g, m in play.items():
        post_blob(chain, validator(g), 1, 1, m)
    close_when_due(chain, 1, 1, PUBLISHER)
    first = chain.of_type(RoundRecorded)[-1]
    commit_all(chain, 2, {0: validator_model(0, 2), 1: validator_model(1, 2)})
    close_when_due(chain, 1, 2, chain.of_type(ProducerElected)[-1].producer)
    second = chain.of_type(RoundRecorded)[-1]
    assert (second.global_digest, second.global_accuracy_bps) == (first.global_digest, first.global_accuracy_bps)
    assert len(chain.of_type(GlobalModel)) == 1 and len(chain.of_type(ValidatorPenalized)) == 2
    assert chain.of_type(ValidatorRewarded)[-1].round == 1, "no validator reward without a revealed model"


def test_chunks_that_do_not_hash_to_their_digest_are_dropped_and_can_be_sent_again(chain):
    model = validator_model(0, 1)
    commit_all(chain, 1, {0: model, 1: validator_model(1, 1)})
    forged = band_model(dead=(5,))  # same length, other bytes
    chain.send(STRANGER, ModelChunk(1, 1, qmodel.digest(model), 0, 1, forged))
    assert chain.of_type(BlobRejected)[-1].sender == STRANGER
    assert qmodel.digest(model) not in chain.task().scores
    post_blob(chain, validator(0), 1, 1, model)
    assert chain.of_type(ModelScored)[-1].accuracy_bps == 10_000


def test_bytes_that_hash_right_but_are_no_model_count_as_unrevealed(chain):
    junk = b"FRQ1" + bytes(qmodel.arch_named("logreg").encoded_size - 4)
    commit_all(chain, 1, {0: junk, 1: validator_model(1, 1)})
    post_blob(chain, validator(0), 1, 1, junk)
    post_blob(chain, validator(1), 1, 1, validator_model(1, 1))
    assert [n.accuracy_bps for n in chain.of_type(ModelScored)] == [0, 10_000]
    close_when_due(chain, 1, 1, PUBLISHER)
    assert chain.of_type(ValidatorPenalized)[0].reason == PENALTY_UNREVEALED
    assert chain.of_type(GlobalModel)[-1].groups == (1,)


def band_mlp(salt: int = 0) -> bytes:
    """A 2-chunk FRQ1 mlp (102,708 bytes) that is perfect on the band test set."""
    hidden = np.zeros((28, 28, 128), dtype=np.int64)
    for k in range(10):
        hidden[4 + 2 * k:6 + 2 * k, :, k] = Q_MAX
    identity = np.zeros((128, 10), dtype=np.int64)
    identity[np.arange(10), np.arange(10)] = Q_MAX
    scales = tuple(1 << 24 if c < 10 else 0 for c in range(128))
    return qmodel.encode(QModel(qmodel.arch_named("mlp").id, (
        QLayer("dense", hidden.reshape(784, 128), scales, (0,) * 128, True),
        QLayer("dense", identity, (1 << 24,), (salt,) * 10, False))))


def test_a_multi_chunk_model_is_assembled_per_sender_so_a_griefer_cannot_spoil_it():
    """The griefer's garbage first chunk and the validator's chunks are kept apart: the validator's model is
    scored; once scored, nothing more is taken for it."""
    c = Chain()
    create_task(c, model_arch=qmodel.arch_named("mlp").id)
    models = {g: band_mlp(salt=g) for g in (0, 1)}
    commit_all(c, 1, models)
    digest = qmodel.digest(models[0])
    parts = chunks(models[0])
    assert len(parts) == 2
    c.send(STRANGER, ModelChunk(1, 1, digest, 0, 2, bytes(len(parts[0]))))  # garbage first chunk
    c.send(validator(0), ModelChunk(1, 1, digest, 0, 2, parts[0]))
    c.send(validator(0), ModelChunk(1, 1, digest, 1, 2, parts[1]))
    assert [(n.group, n.accuracy_bps) for n in c.of_type(ModelScored)] == [(0, 10_000)]
    why = c.reject(STRANGER, ModelChunk(1, 1, digest, 1, 2, parts[1]))
    assert "already posted and scored" in why


@pytest.mark.parametrize("index, count, size, why", [
    (0, 2, None, "travels in 1 chunk(s)"),
    (1, 1, None, "chunk index 1 is not below its count 1"),
    (0, 1, 100, f"chunk 0 of 1 must carry {qmodel.arch_named('logreg').encoded_size} bytes, got 100"),
])
def test_malformed_chunks_are_refused(chain, index, count, size, why):
    model = validator_model(0, 1)
    commit_all(chain, 1, {0: model, 1: validator_model(1, 1)})
    data = model if size is None else model[:size]
    assert why in chain.reject(validator(0), ModelChunk(1, 1, qmodel.digest(model), index, count, data))


def test_round_one_waits_for_the_public_test_set_and_only_the_committed_one_counts():
    c = Chain()
    c.send(PUBLISHER, task_message(rounds=1, groups=1))
    c.deposit(PUBLISHER, 11 * MILLI, encode_deposit_data(1))
    c.send(validator(0), Register(1, ROLE_VALIDATOR, 0))
    c.send(trainer(0, 0), Register(1, ROLE_TRAINER, 0))
    assert c.task().start_block is None
    assert "has not started" in c.reject(validator(0), report(1, 1, 9000, {}))
    assert "only the publisher" in c.reject(STRANGER, TestSetChunk(1, 0, 1, TEST_SET))
    other = band_test_set(per_class=3)[::-1][:len(TEST_SET)]
    c.send(PUBLISHER, TestSetChunk(1, 0, 1, other))
    assert c.of_type(BlobRejected)[-1].digest == keccak(TEST_SET) and c.task().test_set is None
    post_test_set(c, 1)
    assert c.of_type(TestSetPosted)[-1].size == 30 and c.task().start_block == c.block - 1
    assert "already posted" in c.reject(PUBLISHER, TestSetChunk(1, 0, 1, TEST_SET))


@pytest.mark.parametrize("terms, why", [
    ({"test_set_size": 0}, "a public test set of 0 samples is not in 1..2000"),
    ({"test_set_size": 2001}, "a public test set of 2001 samples is not in 1..2000"),
    ({"model_arch": 9}, "model architecture 9 is unknown"),
    ({"contest_blocks": 0}, "contest_blocks must be at least 1 block"),
])
def test_create_task_rejects_bad_test_set_model_or_contest_terms(terms, why):
    assert why in Chain().reject(PUBLISHER, task_message(**terms))


def test_task_created_states_what_it_committed_to():
    c = Chain()
    c.send(PUBLISHER, task_message(challenges_per_round=3))
    n = c.of_type(TaskCreated)[0]
    assert (n.test_set_digest, n.test_set_size, n.model_arch, n.contest_blocks, n.challenges_per_round) == (
        keccak(TEST_SET), 30, qmodel.arch_named("logreg").id, 5, 3)


# ------------------------------------------------------------------ signatures in reports


def test_a_validator_cannot_attribute_an_update_to_a_trainer_who_did_not_sign_it(chain):
    honest = report(1, 1, 9000, {trainer(0, 0): 8800, trainer(0, 1): 8700})
    forged_r, forged_vs = list(honest.sig_r), list(honest.sig_vs)
    mine = sign(key_of(validator(0)), Domain(0, "0x" + "00" * 20),
                Update(1, 1, 0, honest.update_digests[1], 600))  # the validator signs in the trainer's name
    forged_r[1], forged_vs[1] = mine[:32], mine[32:]
    forged = ValidatorReport(1, 1, 9000, honest.model_digest, honest.contributions, honest.update_digests,
                             tuple(forged_r), tuple(forged_vs))
    why = chain.reject(validator(0), forged)
    assert f"trainer {trainer(0, 1)}'s Update signature was made by {validator(0)}, not by {trainer(0, 1)}" in why


def test_a_validator_cannot_change_the_samples_a_trainer_signed(chain):
    honest = report(1, 1, 9000, {trainer(0, 0): 8800})
    inflated = ValidatorReport(1, 1, 9000, honest.model_digest, (pack_contribution(trainer(0, 0), 8800, 6000),),
                               honest.update_digests, honest.sig_r, honest.sig_vs)
    assert f"not by {trainer(0, 0)}" in chain.reject(validator(0), inflated)


def test_a_signature_for_another_chain_or_application_is_worth_nothing(chain):
    digest = qmodel.digest(band_model(salt=99))
    for domain in (Domain(1, "0x" + "00" * 20), Domain(0, "0x" + "11" * 20)):
        sig = signed(trainer(0, 0), 1, 1, digest, 600, domain=domain)
        word = report(1, 1, 9000, {trainer(0, 0): 8800}).contributions
        forged = ValidatorReport(1, 1, 9000, bytes(32), word, (digest,), (sig[:32],), (sig[32:],))
        assert f"not by {trainer(0, 0)}" in chain.reject(validator(0), forged)


def test_report_arrays_must_line_up(chain):
    honest = report(1, 1, 9000, {trainer(0, 0): 8800})
    short = ValidatorReport(1, 1, 9000, honest.model_digest, honest.contributions, (), honest.sig_r, honest.sig_vs)
    assert "the report's arrays differ in length" in chain.reject(validator(0), short)


def test_a_close_carries_no_numbers():
    assert close(1, 1).encode()[4:] == (1).to_bytes(32, "big") + (1).to_bytes(32, "big")
