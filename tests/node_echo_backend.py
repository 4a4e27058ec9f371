"""A tiny echo backend for the node tests only (a fake backend; the product runs `python -m dapp`).

Per advance: `reject:…` emits a notice and a report, then rejects; `exception:…` emits a notice then
calls /exception; `voucher:<40 hex>` emits a 1-wei voucher to that address; `notices:<n>` emits n notices;
`hold:<seconds>` waits that long inside the input (a window for the attack tests), then echoes it like
anything else: the payload as one notice and one report. `exit` kills the process mid-input.
An inspect answers one report with the payload and the number of inputs this process accepted.
`--prefix P` prepends P to every echoed notice (a backend that diverges from an earlier run).
"""
import os
import sys
import time

import requests

URL = os.environ["ROLLUP_HTTP_SERVER_URL"]
PREFIX = sys.argv[sys.argv.index("--prefix") + 1].encode() if "--prefix" in sys.argv else b""


def post(route: str, body: dict) -> dict:
    reply = requests.post(URL + route, json=body, timeout=30)
    assert reply.status_code in (200, 201, 202), (route, reply.status_code, reply.text)
    return reply.json() if reply.headers.get("Content-Type", "").startswith("application/json") else {}


def hexed(data: bytes) -> str:
    return "0x" + data.hex()


def main() -> None:
    accepted = 0
    finish = {"status": "accept"}
    while True:
        reply = requests.post(URL + "/finish", json=finish, timeout=60)
        if reply.status_code == 202:
            continue
        request = reply.json()
        payload = bytes.fromhex(request["data"]["payload"][2:])
        if request["request_type"] == "inspect_state":
            post("/report", {"payload": hexed(payload + b"|accepted=%d" % accepted)})
            finish = {"status": "accept"}
            continue
        finish = {"status": "accept"}
        if payload.startswith(b"reject:"):
            post("/notice", {"payload": hexed(payload)})
            post("/report", {"payload": hexed(b"rejected " + payload)})
            finish = {"status": "reject"}
        elif payload.startswith(b"exception:"):
            post("/notice", {"payload": hexed(payload)})
            post("/exception", {"payload": hexed(payload)})
            continue
        elif payload == b"exit":
            sys.exit(3)
        elif payload.startswith(b"voucher:"):
            post("/voucher", {"destination": "0x" + payload[8:].decode(), "value": "0x" + "%064x" % 1, "payload": "0x"})
        elif payload.startswith(b"notices:"):
            for i in range(int(payload[8:])):
                post("/notice", {"payload": hexed(b"notice %d of input %d" % (i, request["data"]["metadata"]["input_index"]))})
        else:
            if payload.startswith(b"hold:"):
                time.sleep(float(payload[5:]))
            post("/notice", {"payload": hexed(PREFIX + payload)})
            post("/report", {"payload": hexed(b"echo " + payload)})
        accepted += finish["status"] == "accept"


if __name__ == "__main__":
    main()
