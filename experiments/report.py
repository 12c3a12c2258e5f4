"""Print the markdown tables of docs/results.md from experiments/results/*.json (no training).

.venv/bin/python experiments/report.py
"""

from __future__ import annotations

import json

from harness import RESULTS_DIR, markdown_table

ORDER = ["drpo_length", "lens_groups", "cov_entropy", "erc_offpolicy", "w_reinforce_passk", "trl_curve"]


def main() -> None:
    found = {p.stem: p for p in RESULTS_DIR.glob("*.json")}
    for name in [*[n for n in ORDER if n in found], *sorted(set(found) - set(ORDER))]:
        result = json.loads(found[name].read_text())
        print(f"### {result['title']}\n")
        print(markdown_table(result))
        print()


if __name__ == "__main__":
    main()
