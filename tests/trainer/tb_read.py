#!/usr/bin/env python3
"""Reads a run's TensorBoard directory with TensorBoard's own event reader (the
EventAccumulator that `tensorboard --logdir` uses, purging orphaned data as it does) and
prints {tag: [[step, value], ...]} as one JSON line.

  tb_read.py RUN_DIR/tb
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0}, purge_orphaned_data=True)
    acc.Reload()
    out = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
