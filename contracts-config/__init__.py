"""contracts_config: L1 deployment of the official Cartesi contracts (imported as contracts_config)."""
