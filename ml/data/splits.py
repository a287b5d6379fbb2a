"""Train/validation/test splits: the original image-level rule and a patient-level one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "val", "test")


def _interleave(count: int) -> str:
    # The original rule: of every 10 cases of a class, 2 go to test, 1 to validation, 7 to train.
    remainder = count % 10
    if remainder in (0, 1):
        return "test"
    if remainder == 2:
        return "val"
    return "train"


def original_split(labels: Sequence[int], seed: int = 0) -> list[str]:
    """The released code's split: a seeded shuffle, then per class the 2/1/7 interleave.

    Image-level, so one patient's images can land in different splits (see
    :func:`patient_split`).

    Args:
        labels: one class per image.
        seed: shuffle seed (the original seeded nothing; we record ours).

    Returns:
        ``"train"``, ``"val"`` or ``"test"`` per image, in input order.
    """
    labels = list(labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    counts: Counter = Counter()
    out = [""] * len(labels)
    for index in order:
        label = labels[index]
        out[index] = _interleave(counts[label])
        counts[label] += 1
    return out


def patient_split(labels: Sequence[int], patient_ids: Sequence[str], seed: int = 0) -> list[str]:
    """The same 2/1/7 rule applied to patients, so that no patient spans two splits.

    Patients are stratified by their most common label (ties: the smallest label), shuffled
    with ``seed``, interleaved per class, and each image takes its patient's split.

    Args:
        labels: one class per image.
        patient_ids: one patient per image.
        seed: shuffle seed.

    Returns:
        ``"train"``, ``"val"`` or ``"test"`` per image, in input order.
    """
    if len(labels) != len(patient_ids):
        raise ValueError("labels and patient_ids differ in length")
    by_patient: dict[str, Counter] = {}
    for label, patient in zip(labels, patient_ids, strict=True):
        by_patient.setdefault(patient, Counter())[label] += 1
    patients = sorted(by_patient)
    patient_labels = [
        min(c for c, n in by_patient[p].items() if n == max(by_patient[p].values()))
        for p in patients
    ]
    assignment = dict(zip(patients, original_split(patient_labels, seed), strict=True))
    return [assignment[patient] for patient in patient_ids]
