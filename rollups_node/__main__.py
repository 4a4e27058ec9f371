"""`python -m rollups_node …`: the same as `fedrollup node …` (the node alone, in the foreground)."""
import argparse
import sys

from common.errors import FedrollupError
from rollups_node.cli import add_node_arguments, run_node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rollups_node", description=__doc__)
    add_node_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_node(args)
    except FedrollupError as err:
        print(f"rollups_node: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
