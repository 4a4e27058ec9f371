"""The inspect stage (`POST /inspect/<app name or address>`): the raw body to the backend, its reports back.

Answers as the real node's `internal/inspect`: 200 with `{"status": "Accepted"|"Rejected"|"Exception",
"exception"?, "reports": [{"payload"}] | null, "processed_input_count"}`, 404 for an unknown application,
503 while the machine is not ready.
"""
from __future__ import annotations

import json

from rollups_node.machine import HostMachine, MachineError
from rollups_node.repository import Repository

INSPECT_STATUS = {"accept": "Accepted", "reject": "Rejected", "exception": "Exception", "halted": "Exception",
                  "reports_limit": "Exception"}


class Inspector:
    def __init__(self, repository: Repository, machine: HostMachine) -> None:
        self.repository, self.machine = repository, machine

    def inspect(self, name: str, payload: bytes) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) for an inspect of application `name` with `payload`."""
        app = self.repository.application()
        if app is None or name.lower() not in (app.name, app.address.lower()):
            return 404, "text/plain", b"Application not found"
        if not self.machine.ready:
            return 503, "text/plain", b"Machine not ready"
        try:
            result = self.machine.inspect(payload)
        except MachineError:
            return 503, "text/plain", b"Machine not ready"
        answer: dict = {"status": INSPECT_STATUS[result.status]}
        if result.exception is not None:
            answer["exception"] = "Error on the machine while inspecting: " + result.exception.decode(errors="replace")
        answer["reports"] = [{"payload": "0x" + r.hex()} for r in result.reports] or None
        answer["processed_input_count"] = self.repository.processed_input_count()
        return 200, "application/json", json.dumps(answer).encode()
