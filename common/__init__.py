"""The ground every other package stands on: errors, accounts, hex and wei at the edges.

It imports nothing else of fedrollup (an import-linter contract in pyproject.toml keeps it so).
"""
