"""`fedrollup dapp encode|decode`: payloads a user can send, notices a user can read, one-line errors."""
from __future__ import annotations

import json

from dapp_fixtures import TEST_SET, TEST_SET_SIZE, task_message, trainer, validator
from eth_utils import keccak

from dapp.schema import CancelTask, RoundClose, ValidatorReport, Withdrawal, decode_input, unpack_contribution
from fedrollup.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["dapp", *argv])
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_encode_validator_report_with_packed_contributions(capsys):
    code, out, _ = run_cli(capsys, "encode", "ValidatorReport", "task_id=1", "round=2",
                           "validator_accuracy_bps=9100", "model_digest=0x" + "ab" * 32,
                           f"contributions={trainer(0, 0)}:8000:600,{trainer(0, 1)}:7000:500",
                           "update_digests=0x" + "01" * 32 + ",0x" + "02" * 32, "sig_r=0x" + "03" * 32 + ",0x" + "04" * 32,
                           "sig_vs=0x" + "05" * 32 + ",0x" + "06" * 32)
    assert code == 0
    message = decode_input(bytes.fromhex(out[2:]))
    assert isinstance(message, ValidatorReport) and message.round == 2
    assert [unpack_contribution(w).accuracy_bps for w in message.contributions] == [8000, 7000]
    assert message.sig_vs == (b"\x05" * 32, b"\x06" * 32)


def test_encode_a_trust_report_word_and_refuse_a_short_one(capsys):
    _, out, _ = run_cli(capsys, "encode", "ValidatorReport", "task_id=1", "round=1", "validator_accuracy_bps=0",
                        "model_digest=0x" + "ab" * 32, f"contributions={trainer(0, 0)}:8000:600:-6170:250",
                        "update_digests=0x" + "01" * 32, "sig_r=0x" + "03" * 32, "sig_vs=0x" + "05" * 32)
    (word,) = decode_input(bytes.fromhex(out[2:])).contributions
    assert (unpack_contribution(word).cosine_bps, unpack_contribution(word).norm_centi) == (-6170, 250)
    code, _, err = run_cli(capsys, "encode", "ValidatorReport", "task_id=1", "round=1", "validator_accuracy_bps=0",
                           "model_digest=0x" + "ab" * 32, f"contributions={trainer(0, 0)}:8000",
                           "update_digests=0x" + "01" * 32, "sig_r=0x" + "03" * 32, "sig_vs=0x" + "05" * 32)
    assert code == 2 and "contributions are trainer:accuracyBps:samples[:cosineBps:normCenti[:shareBps]]" in err


def test_encode_round_close_and_a_model_chunk_and_decode_a_notice(capsys):
    _, out, _ = run_cli(capsys, "encode", "RoundClose", "task_id=1", "round=1")
    assert decode_input(bytes.fromhex(out[2:])) == RoundClose(1, 1)
    _, out, _ = run_cli(capsys, "encode", "ModelChunk", "task_id=1", "round=1", "digest=0x" + "ab" * 32, "index=0",
                        "count=1", "data=0x46525131")
    assert decode_input(bytes.fromhex(out[2:])).data == b"FRQ1"
    code, _, err = run_cli(capsys, "encode", "ModelChunk", "task_id=1", "round=1", "digest=0x" + "ab" * 32,
                           "index=0", "count=1", "data=0xzz")
    assert code == 2 and err == "fedrollup dapp: error: data is hex bytes, got '0xzz'"
    notice = "0x" + Withdrawal("0x" + "00" * 18 + "01" + "00", 5).encode().hex()
    code, out, _ = run_cli(capsys, "decode", notice)
    assert code == 0 and json.loads(out) == {"kind": "notice", "name": "Withdrawal",
                                             "account": "0x0000000000000000000000000000000000000100",
                                             "amount": 5}
    assert RoundClose.tag() == keccak(text="RoundClose(uint64,uint16)")[:4]


def test_encode_create_task_naming_its_validators_and_cancel_task(capsys):
    terms = ["mad_bps=2500", "rounds=3", "groups=2", "round_trainer_budget=10000000000000000",
             "reward_per_positive=2000000000000000", "validator_reward=1000000000000000",
             f"validators={validator(0)},{validator(1).upper().replace('0X', '0x')}",
             "test_set_digest=0x" + keccak(TEST_SET).hex(), f"test_set_size={TEST_SET_SIZE}", "model_arch=3",
             "trainers_per_group=100", "registration_blocks=300", "report_blocks=150", "close_blocks=50",
             "contest_blocks=5"]
    code, out, err = run_cli(capsys, "encode", "CreateTask", *terms)
    assert code == 0, err
    assert decode_input(bytes.fromhex(out[2:])) == task_message()  # addresses in any case, as the rollup reads
    code, out, _ = run_cli(capsys, "encode", "CancelTask", "task_id=7")
    assert code == 0 and decode_input(bytes.fromhex(out[2:])) == CancelTask(7)
    code, _, err = run_cli(capsys, "encode", "CreateTask", *terms[:6], "validators=0x12,7", *terms[7:])
    assert code == 2 and err == "fedrollup dapp: error: validators: not an address: '0x12'"
    code, out, _ = run_cli(capsys, "encode", "CreateTask", *terms, "trainer_approval=true")
    assert code == 0 and decode_input(bytes.fromhex(out[2:])) == task_message(trainer_approval=True)
    code, _, err = run_cli(capsys, "encode", "CreateTask", *terms, "trainer_approval=maybe")
    assert code == 2 and err == "fedrollup dapp: error: trainer_approval is true or false, got 'maybe'"


def test_bad_input_is_one_line_exit_2(capsys):
    code, _, err = run_cli(capsys, "encode", "Register", "task_id=1")
    assert code == 2 and err == "fedrollup dapp: error: Register needs task_id= role= group="
    code, _, err = run_cli(capsys, "encode", "Register", "task_id=1", "role=300", "group=0")
    assert code == 2 and err.startswith("fedrollup dapp: error: cannot encode Register")
    code, _, err = run_cli(capsys, "decode", "0xdeadbeef")
    assert code == 2 and "unknown input tag 0xdeadbeef" in err
