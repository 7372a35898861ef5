"""Draw the dashboard's main panels from a real Prometheus, for the README (Grafana is not installable here).

It runs the dashboard's own queries (deploy/grafana/build_dashboard.py, the panels marked `main`) through
Prometheus's HTTP API (/api/v1/query_range) and draws them with matplotlib; it prints a table of each
series' peak. Against the Compose stack:

    uv run python bench/plot_metrics.py --prometheus http://127.0.0.1:9090 --minutes 30 --out dashboard.png

tests/test_deploy_live_prometheus.py calls `plot()` after its campaign when ISSEIMAIL_PLOT_OUT names a file.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): no display here

ROOT = Path(__file__).resolve().parents[1]


def dashboard_panels() -> list[Any]:
    path = ROOT / "deploy" / "grafana" / "build_dashboard.py"
    spec = importlib.util.spec_from_file_location("build_dashboard", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_dashboard"] = module
    spec.loader.exec_module(module)
    return [p for p in module.PANELS if p.main]


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip() or "value"


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{prometheus}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": step},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    if body["status"] != "success":
        raise RuntimeError(f"{expr}: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def plot(
    prometheus: str, start: float, end: float, out: Path, step: float | None = None
) -> list[tuple[str, str, float]]:
    """Draw the main panels between start and end (unix seconds) into `out`; returns (panel, series, peak)."""
    panels = dashboard_panels()
    step = step or max(1.0, (end - start) / 300)
    columns = 3
    rows = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(15, 3.6 * rows), squeeze=False)
    peaks: list[tuple[str, str, float]] = []
    for index, panel in enumerate(panels):
        ax = axes[index // columns][index % columns]
        for query in panel.queries:
            for series in query_range(prometheus, query.expr, start, end, step):
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                name = legend(query.legend, series["metric"])
                ax.plot(xs, ys, label=name, linewidth=1.5)
                peaks.append((panel.title, name, max(ys) if ys else 0.0))
        ax.set_title(f"{panel.title} [{panel.unit}]", fontsize=10)
        ax.set_xlabel("seconds", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7, loc="upper right")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    for index in range(len(panels), rows * columns):
        axes[index // columns][index % columns].axis("off")
    figure.suptitle("isseimail — dashboard main panels (real Prometheus data)", fontsize=12)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return peaks


def print_table(peaks: list[tuple[str, str, float]]) -> None:
    print(f"| {'panel':<28} | {'series':<36} | {'peak':>12} |")
    print(f"|{'-' * 30}|{'-' * 38}|{'-' * 14}|")
    for panel, series, peak in peaks:
        print(f"| {panel:<28} | {series[:36]:<36} | {peak:>12.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=float, default=30.0, help="how far back to draw")
    parser.add_argument("--out", type=Path, default=Path("dashboard.png"))
    args = parser.parse_args()
    end = time.time()
    peaks = plot(args.prometheus, end - args.minutes * 60, end, args.out)
    print_table(peaks)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
