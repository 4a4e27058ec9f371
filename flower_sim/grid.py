"""The in-process Flower engine: a `Grid` that hands each message to the ClientApp in this process.

Why not Flower's simulation runtime: it needs Ray, runs clients in worker processes (TensorFlow imported
per actor) and is no faster on 2 cores (flower.md §3). This Grid delivers messages synchronously, in
node-id order, so a run is deterministic and TensorFlow is imported once.

Flower internals this module relies on (and the only place that does):
  * `flwr.supercore.task_identity.TaskIdentity` must carry a run id, node id and task id before any
    instruction `Message(...)` can be built (the strategies build them in `configure_train`);
  * `Metadata._message_id` is assigned here, as the SuperLink would (Flower's own InMemoryGrid does the
    same).
Everything else is the public Message API: `ClientApp.__call__(message, context)`, one `Context` per node
whose `state` persists across messages of the run, `node_config` with "partition-id"/"num-partitions".

`GroupGrid` is the view a validator gets: only its own group's nodes. In a deployment, each validator's
ServerApp talks to its own SuperLink, whose Grid likewise lists only that group's SuperNodes.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

NODE_ID_OFFSET = 10_000  # node id = NODE_ID_OFFSET + partition id: stable and never equal to a trainer id


class InProcessGrid(Grid):
    """Every node is a Context in this process; sending a message runs the ClientApp on it."""

    def __init__(self, client_app: ClientApp, num_nodes: int, run_config: dict, run_id: int = 1) -> None:
        self.client_app = client_app
        self._run = Run.create_empty(run_id)
        self._ids = itertools.count(1)
        self._replies: dict[str, Message] = {}
        self.contexts = {
            NODE_ID_OFFSET + pid: Context(
                run_id=run_id, node_id=NODE_ID_OFFSET + pid,
                node_config={"partition-id": pid, "num-partitions": num_nodes},
                state=RecordDict(), run_config=dict(run_config))
            for pid in range(num_nodes)
        }
        TaskIdentity.run_id = run_id
        TaskIdentity.node_id = SUPERLINK_NODE_ID
        TaskIdentity.task_id = run_id

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return sorted(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Deliver each message now, in node-id order, and keep the reply until it is pulled."""
        ids = []
        for msg in sorted(messages, key=lambda m: m.metadata.dst_node_id):
            msg_id = str(next(self._ids))
            msg.metadata.__dict__["_message_id"] = msg_id
            try:
                reply = self.client_app(message=msg, context=self.contexts[msg.metadata.dst_node_id])
            except Exception as err:  # as Flower's runtimes do: the ClientApp's failure is its reply, not the run's
                reply = Message(Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, f"{type(err).__name__}: {err}"),
                                reply_to=msg)
            reply.metadata.__dict__["_message_id"] = str(next(self._ids))
            self._replies[msg_id] = reply
            ids.append(msg_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))


class GroupGrid(Grid):
    """A validator's view of the grid: the same delivery, restricted to its group's node ids."""

    def __init__(self, grid: Grid, node_ids: Iterable[int]) -> None:
        """`node_ids` in trainer order, kept: Flower samples a round's trainers from this list by position, so the
        same seed samples the same trainers on every engine (a runtime's node ids are random numbers)."""
        self.grid = grid
        self.node_ids = list(node_ids)

    def set_run(self, run: Run) -> None:
        self.grid.set_run(run)

    @property
    def run(self) -> Run:
        return self.grid.run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return self.grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.node_ids)

    def _ours(self, messages: Iterable[Message]) -> list[Message]:
        messages = list(messages)
        outside = [m.metadata.dst_node_id for m in messages if m.metadata.dst_node_id not in self.node_ids]
        if outside:
            raise ValueError(f"nodes {outside} are not in this validator's group")
        return messages

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.grid.push_messages(self._ours(messages))

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.grid.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """The underlying grid's own wait: a runtime's Grid (Flower's simulation or deployment engine) answers
        asynchronously, so a pull right after the push would find nothing yet."""
        return self.grid.send_and_receive(self._ours(messages), timeout=timeout)
