"""The cost of calling medsim from Python: the same analysis through the
CLI and through ms.mediate, alternated, wall-clock medians.

    python python/benches/overhead.py [--reps 1000000] [--rounds 5]

(from the repository root, with the package installed and
`cargo build --release` done). The problem is the one-model default: the
synthetic panel from `medsim generate`, six controls, pairs, percentile
intervals, the CPU engine. The CLI's figure is its process's wall time
(start-up, reading the CSV, the run, writing its folder); Python's is the
mediate call's, reading the CSV with pandas included.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

import medsim as ms

ROOT = Path(__file__).resolve().parents[2]
CONTROLS = ["ln_gdp", "industry", "fdi", "urban", "gov", "ln_pop_density"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bin", default=str(ROOT / "target" / "release" / "medsim"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    csv = work / "panel.csv"
    subprocess.run([args.bin, "generate", "--out", str(csv)], check=True, capture_output=True)
    cli_times, py_times = [], []
    for r in range(args.rounds):
        out = work / f"cli{r}"
        started = time.perf_counter()
        subprocess.run(
            [args.bin, "run", "--data", str(csv), "--controls", ",".join(CONTROLS), "-B", str(args.reps),
             "--ci", "percentile", "--backend", "cpu", "-q", "--no-plots", "--out", str(out)],
            check=True, capture_output=True,
        )
        cli_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        df = pd.read_csv(csv)
        ms.mediate(df, outcome="log_ci", treatment="dei", mediator="agglom", controls=CONTROLS, unit="city",
                   time="year", reps=args.reps, ci="percentile", backend="cpu")
        py_times.append(time.perf_counter() - started)
    cli, py = statistics.median(cli_times), statistics.median(py_times)
    print(f"B = {args.reps}, {args.rounds} rounds: CLI {cli:.3f} s, Python {py:.3f} s "
          f"(median wall), Python / CLI = {py / cli:.3f}")
    print("CLI rounds:    " + " ".join(f"{t:.3f}" for t in cli_times))
    print("Python rounds: " + " ".join(f"{t:.3f}" for t in py_times))


if __name__ == "__main__":
    main()
