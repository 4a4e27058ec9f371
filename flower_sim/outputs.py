"""What a run leaves in its output folder: `metrics.json` (schema in the README) and `accuracy.png`."""
from __future__ import annotations

import json
from pathlib import Path

from flower_sim.attacks import malicious_trainers
from flower_sim.config import SimulationConfig
from flower_sim.records import RoundRecord

SCHEMA_VERSION = 1


def metrics_document(cfg: SimulationConfig, records: list[RoundRecord], *, data_source: str,
                     elapsed_s: float) -> dict:
    malicious = sorted(malicious_trainers(cfg.trainers, cfg.malicious, cfg.seed)) if cfg.attack != "none" else []
    return {
        "schema": SCHEMA_VERSION,
        "config": cfg.as_dict(),
        "data_source": data_source,
        "malicious_trainers": malicious,
        "elapsed_s": elapsed_s,
        "rounds": [r.as_dict() for r in records],
    }


def write_outputs(out_dir: Path, cfg: SimulationConfig, records: list[RoundRecord], *, data_source: str,
                  elapsed_s: float, title: str) -> tuple[Path, Path]:
    """Write metrics.json and accuracy.png into `out_dir`; returns their paths."""
    metrics_path, plot_path = out_dir / "metrics.json", out_dir / "accuracy.png"
    document = metrics_document(cfg, records, data_source=data_source, elapsed_s=elapsed_s)
    metrics_path.write_text(json.dumps(document, indent=2) + "\n")
    plot_accuracy(plot_path, records, title)
    return metrics_path, plot_path


def plot_accuracy(path: Path, records: list[RoundRecord], title: str) -> None:
    """Global accuracy and each validator's aggregated-model accuracy per round, on the test set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r.round for r in records]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rounds, [r.global_accuracy for r in records], marker="o", linewidth=2, label="global model")
    for v in range(len(records[0].validators) if records else 0):
        ax.plot(rounds, [r.validators[v].aggregated_accuracy for r in records], linestyle="--",
                marker=".", label=f"validator {v} model")
    ax.set(xlabel="round", ylabel="accuracy on the manager's test set", title=title, ylim=(0, 1))
    ax.set_xticks(rounds)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
