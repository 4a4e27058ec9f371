"""The federated core: Flower trainers (ClientApp), MAD and baseline validators, the global model manager, `fedrollup simulate`."""
