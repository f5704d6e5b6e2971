"""The rows the benchmark compares, each design's own (`bench_rows` of `pytest_medpubsub.designs`).

`capacity` is the manifest the clusters get (`keda/medicine-scaledjob.yaml`): warm makers that
hold several orders at once. `one-at-a-time` is the previous behaviour, derived from the same
file so that nothing else differs (`designs/scaledjob.py`). `dispatcher` is the other deployment
design (issue 11): no ScaledJob, one permanent consumer that starts a maker process per order;
its manifest is not used.
"""

from __future__ import annotations

from pytest_medpubsub import designs
from pytest_medpubsub.bench.rows import BenchRow

DESIGNS: dict[str, BenchRow] = {
    row.name: row for design in designs.DESIGNS.values() for row in design.bench_rows
}
