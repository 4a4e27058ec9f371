"""`fedrollup console serve`'s mistakes are one-line errors before anything connects or listens."""
from __future__ import annotations

import pytest

from common.errors import ConfigError
from fedrollup.cli import build_parser
from fedrollup.cli.entry import dispatch
from frontend_console.explorer_server import Explorer, make_server


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_outside_tcps_range_is_one_line(port, capsys):
    args = build_parser().parse_args(["console", "serve", "--port", port, "--node", "http://127.0.0.1:9"])
    assert dispatch(args, "fedrollup") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--port {port} is not a TCP port" in err[0], err


def test_the_server_refuses_an_impossible_port_in_one_line():
    with pytest.raises(ConfigError, match="cannot serve the explorer on 127.0.0.1:99999"):
        make_server(Explorer(node=None, l1=None), "127.0.0.1", 99999)
