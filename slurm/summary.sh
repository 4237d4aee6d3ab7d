#!/usr/bin/env bash
# Tabulates a sweep (or any directory of run directories): one row per run with its
# overrides against the first run's configuration, its last step, final training loss
# and last held-out loss, from each run's config.ini and metrics.jsonl. Markdown.
#   slurm/summary.sh BASE_DIR
set -euo pipefail
[ $# -eq 1 ] && [ -d "$1" ] || { echo "usage: slurm/summary.sh BASE_DIR" >&2; exit 2; }
python3 - "$1" <<'PY'
import configparser, json, math, pathlib, sys
base = pathlib.Path(sys.argv[1])
runs = sorted((p for p in base.iterdir() if (p / "config.ini").is_file()),
              key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))
if not runs:
    sys.exit(f"{base}: no run directories (no */config.ini)")
def settings(run):
    c = configparser.ConfigParser()
    c.read(run / "config.ini")
    return {f"{s}.{k}": v for s in c.sections() for k, v in c[s].items() if k not in ("dir",)}
first = settings(runs[0])
print("| run | settings that differ | steps | final loss | held-out loss |")
print("|---|---|---|---|---|")
for run in runs:
    s = settings(run)
    diff = ", ".join(f"{k}={v}" for k, v in s.items() if any(first.get(k) != settings(r).get(k) for r in runs)) or "-"
    rows = []
    metrics = run / "metrics.jsonl"
    if metrics.is_file():
        rows = [json.loads(l) for l in metrics.read_text().splitlines() if l.strip()]
    evals = [r["eval_loss"] for r in rows if r.get("eval_loss") is not None]
    fmt = lambda x: "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"
    print(f"| {run.name} | {diff} | {rows[-1]['step'] if rows else 0} | {fmt(rows[-1]['loss'] if rows else None)} | "
          f"{fmt(evals[-1] if evals else None)} |")
PY
