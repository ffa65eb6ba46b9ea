"""Online-learned purchase-propensity and churn scores with delayed labels (plain Python, no Kafka).

One concept per module: ``config`` (parameters, ``scoring.toml``), ``vector`` (model inputs from a
profile), ``moments`` (when a profile change is worth a score), ``labels`` (predictions held until
their label is known), ``model`` and ``calibration`` (the River pipeline and its Platt calibration),
``metrics`` (prequential ROC AUC, log loss, Brier), ``drift`` (ADWIN on each model's error),
``bands``, ``trainer`` (learning, snapshots, metrics and drift records), ``processor`` (the
per-customer side hosted by a stream worker), ``replay`` and ``evaluate`` (in-process replays and
the comparison with a recency heuristic and an offline batch model).
"""
