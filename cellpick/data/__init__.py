"""The user's file, read and shaped for training: reading (the CSV), dates, detection (layout
and task; `detection.load`), layouts and dataset (the Dataset), season, prepared (splits and
windows: Prepared), folds (the verdict's folds x seeds). The why: docs/data.md."""
