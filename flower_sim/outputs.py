"""What a run leaves in its output folder: `metrics.json` (schema in the README) and `accuracy.png`."""
from __future__ import annotations

import json
from pathlib import Path

from flower_sim.config import SimulationConfig
from flower_sim.privacy import Budget
from flower_sim.records import RoundRecord, ValidatorReport

SCHEMA_VERSION = 1


class RunMetrics:
    """metrics.json as a run gathers it, written once: a RoundObserver keeping each closed round's record, to
    which a transport adds its own figures per round (`add_to_round`: upload seconds, bytes per station) and
    per run (`add`: rollup, topology, audit). Its `document` can cross a process boundary."""

    def __init__(self, document: dict) -> None:
        self.document = document

    @classmethod
    def start(cls, cfg: SimulationConfig, data_source: str) -> "RunMetrics":
        """The document before round 1, with the run's accounted privacy budget ("privacy", each round's
        "privacy_epsilon" once it closes) when the trainers add DP noise."""
        document = {"schema": SCHEMA_VERSION, "config": cfg.as_dict(), "data_source": data_source,
                    "malicious_trainers": sorted(cfg.malicious_trainers), "elapsed_s": 0.0, "rounds": []}
        if cfg.dp != "none":
            document["privacy"] = Budget.account(cfg.dp_params(), cfg.rounds, cfg.dp_delta).as_dict()
        return cls(document)

    @property
    def rounds(self) -> list[dict]:
        return self.document["rounds"]

    def on_validator_report(self, report: ValidatorReport) -> None:
        pass

    def on_round_closed(self, record: RoundRecord) -> None:
        self.rounds.append(record.as_dict())
        if "privacy" in self.document:  # ε each trainer has spent after this round
            self.rounds[-1]["privacy_epsilon"] = self.document["privacy"]["epsilon_after_round"][record.round - 1]

    def add_to_round(self, server_round: int, **figures: object) -> None:
        """Set figures of a closed round (a key it has, such as "timings", keeps its place)."""
        next(r for r in self.rounds if r["round"] == server_round).update(figures)

    def add(self, **sections: object) -> None:
        """Set run-wide keys (a key the document has, such as "elapsed_s", keeps its place)."""
        self.document.update(sections)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.document, indent=2) + "\n")
        return path


def write_outputs(out_dir: Path, metrics: RunMetrics, records: list[RoundRecord], *, elapsed_s: float,
                  title: str) -> tuple[Path, Path]:
    """Write the run's metrics.json (what `metrics` gathered as an observer) and accuracy.png into `out_dir`;
    returns their paths."""
    metrics.add(elapsed_s=elapsed_s)
    plot_path = out_dir / "accuracy.png"
    plot_accuracy(plot_path, records, title)
    return metrics.write(out_dir / "metrics.json"), plot_path


def plot_accuracy(path: Path, records: list[RoundRecord], title: str) -> None:
    """Global accuracy and each validator's aggregated-model accuracy per round, on the test set."""
    import matplotlib  # heavy: matplotlib, only when a run ends

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after matplotlib.use("Agg"): no display backend

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
