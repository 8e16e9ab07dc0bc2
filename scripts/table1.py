"""Rule table1: analysis dataset -> tables/table1.csv and .html."""
from pathlib import Path

import pandas as pd

from stormcohort.io import rule_logger, write_csv
from stormcohort.table1 import table1, table1_html

sm = snakemake  # noqa: F821 - provided by Snakemake
rule_logger(sm).info("building Table 1")
table = table1(pd.read_csv(sm.input[0]))
write_csv(table, sm.output.csv)
Path(sm.output.html).write_text(table1_html(table, sm.params.synthetic), encoding="utf-8")
