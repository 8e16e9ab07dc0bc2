"""`snakemake --lint`, less the lints this project accepts (each with its reason below).

Prints every other lint as Snakemake words it and exits 1 if there is one; `make lint` runs it.
"""

from __future__ import annotations

import re
import subprocess
import sys

# Lint title (as Snakemake prints it) -> why the project accepts it.
ACCEPTED = {
    "Specify a conda environment or container for each rule.":
        "one environment for the whole workflow (requirements.lock, installed by `make venv`; "
        "environment.yml mirrors it), which every job runs in, locally and on SLURM; per-rule "
        "conda envs would duplicate it, and the scripts need the stormcohort package installed in it",
}


def main() -> int:
    done = subprocess.run([sys.executable, "-m", "snakemake", "--lint", *sys.argv[1:]], capture_output=True, text=True)
    text = done.stdout + done.stderr
    blocks = re.split(r"\n(?=Lints for )", text.strip()) if "Lints for " in text else []
    if done.returncode != 0 and not blocks:
        print(text, file=sys.stderr)  # not lints: the workflow did not even parse
        return done.returncode
    remaining, accepted = [], 0
    for block in blocks:
        head, *items = re.split(r"\n(?=    \* )", block)
        kept = []
        for item in items:
            title = item.strip().removeprefix("* ").split(":\n", 1)[0]
            if title in ACCEPTED:
                accepted += 1
            else:
                kept.append(item)
        if kept:
            remaining.append("\n".join([head, *kept]))
    print("\n\n".join(remaining))
    print(f"snakemake --lint: {sum(b.count(chr(10) + '    * ') for b in remaining)} lint(s) to fix, "
          f"{accepted} accepted (see {__file__.rsplit('/', 2)[-2]}/{__file__.rsplit('/', 1)[-1]})")
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main())
