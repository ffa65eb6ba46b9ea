"""Features baselines in faust: ``streams/faust_features.py`` (naive or batched) with the harness's progress file.

Run by the harness as ``python -m tests.bench.faust_features_bench worker -l info`` with
``BENCH_VARIANT`` (``naive`` or ``batched``), the BENCH_* progress settings (see
``progress_file``) and the JOURNEY_* settings every worker reads (bootstrap, group prefix,
data dir).
"""

from __future__ import annotations

import os
import sys

from streams.faust_features import create_app, without_web
from tests.bench.progress_file import Progress

progress = Progress()
app = create_app(variant=os.environ["BENCH_VARIANT"], on_handled=lambda n: progress.add(n, 0))

if __name__ == "__main__":
    sys.argv = [sys.argv[0], *without_web(sys.argv[1:])]
    app.main()
