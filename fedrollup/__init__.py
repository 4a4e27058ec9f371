"""fedrollup: auditable federated learning on Cartesi optimistic rollups."""
