"""The lab and the requests of ``apps.core.loadbench``: a lab loaded through the services, and a
seeded, bounded plan of requests over every endpoint the benchmark calls."""

from __future__ import annotations

import io
import random
import uuid
from dataclasses import dataclass
from typing import Any

MAP_SIZE = (640, 512)


# --- The lab --------------------------------------------------------------------------------
@dataclass
class Lab:
    lab: int
    token: str
    images: list[int]
    keys: list[str]
    readers: list[int]
    sessions: list[int]
    recordings: list[int]
    readings: list[int]
    reading_maps: list[int]
    snapshots: list[int]
    jobs: list[int]
    versions: list[int]
    evaluations: list[int]
    counts: dict[str, int]


def load_lab(args) -> Lab:
    """The lab, loaded through the services (the caller has set Django up)."""
    from django.core.management import call_command

    from apps.datasets.bench import bench_lab, build_snapshot
    from apps.gaze import services as gaze
    from apps.gaze.models import (
        Fixation,
        Reader,
        Reading,
        ReadingSession,
        Recording,
        SaliencyMap,
    )
    from apps.imaging.models import Image
    from apps.labs.models import User
    from apps.labs.services import api_token_create, membership_create_trusted

    lab, admin = bench_lab("Load bench lab")
    call_command("make_demo_lab", images=args.images, readers=args.readers, lab=str(lab.pk),
                 user=admin.username, size="small", seed=args.seed, verbosity=0,
                 stdout=io.StringIO())  # fmt: skip
    readings = list(Reading.objects.filter(lab=lab).order_by("id"))
    images = list(Image.objects.filter(lab=lab).order_by("id"))
    maps = [
        gaze.saliency_map_get_or_create(target_size=MAP_SIZE, reading=r, actor=admin).pk
        for r in readings[: args.maps]
    ]
    for image in images[: args.maps // 2]:
        gaze.saliency_map_get_or_create(target_size=MAP_SIZE, image=image, actor=admin)
    snapshot = build_snapshot(lab, admin, "load-bench", resolution=[64, 64])
    jobs, versions, evaluations = make_models(snapshot, admin, args)
    member = User.objects.create_user(f"loadbench-{uuid.uuid4().hex[:8]}", password=None)
    membership_create_trusted(lab=lab, user=member, role="researcher")
    _token, key = api_token_create(user=member, name="loadbench", expires_in_days=1)

    def ids(model) -> list[int]:
        return list(model.objects.filter(lab=lab).order_by("id").values_list("id", flat=True))

    return Lab(
        lab=lab.pk, token=key, images=[i.pk for i in images], keys=[i.key for i in images],
        readers=ids(Reader), sessions=ids(ReadingSession), recordings=ids(Recording),
        readings=[r.pk for r in readings], reading_maps=maps, snapshots=[snapshot.pk],
        jobs=jobs, versions=versions, evaluations=evaluations,
        counts={"images": len(images), "readers": Reader.objects.filter(lab=lab).count(),
                "readings": len(readings),
                "fixations": Fixation.objects.filter(lab=lab).count(),
                "saliency_maps": SaliencyMap.objects.filter(lab=lab).count(),
                "training_jobs": len(jobs), "model_versions": len(versions),
                "evaluations": len(evaluations)},
    )  # fmt: skip


def make_models(snapshot, user, args) -> tuple[list[int], list[int], list[int]]:
    """``--versions`` registered versions (tiny untrained MT-UNets), an evaluation of each
    with ``--eval-rows`` rows, and ``--jobs`` queued jobs: ``(jobs, versions, evaluations)``."""
    from apps.evaluation.bench import _evaluation_of, _version
    from apps.training import services as training

    versions, evaluations = [], []
    for i in range(args.versions):
        version = _version(snapshot, user, base=4, seed=args.seed + i)
        versions.append(version.pk)
        evaluations.append(_evaluation_of(snapshot, version, user, args.eval_rows, i).pk)
    for i in range(args.jobs):
        training.job_create(snapshot=snapshot, actor=user, name=f"queued {i}", enqueue=False)
    from apps.training.models import TrainingJob

    jobs = list(
        TrainingJob.objects.filter(lab=snapshot.lab).order_by("id").values_list("id", flat=True)
    )
    return jobs, versions, evaluations


# --- The requests ---------------------------------------------------------------------------
@dataclass
class Req:
    endpoint: str
    kind: str
    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = None


def endpoints(lab: Lab) -> list[tuple[str, str, Any]]:
    """``(name, kind, path(rng))`` of every endpoint the benchmark calls."""
    v1, n = "/api/v1", lab.lab
    return [
        ("images", "list", lambda r: r.choice([
            f"{v1}/images/?lab={n}", f"{v1}/images/?label=CHF",
            f"{v1}/images/?search={r.choice(lab.keys)[:6]}", f"{v1}/images/?ordering=key"])),
        ("readers", "list", lambda r: f"{v1}/readers/?lab={n}"),
        ("sessions", "list", lambda r: r.choice([
            f"{v1}/sessions/?lab={n}", f"{v1}/sessions/?reader={r.choice(lab.readers)}"])),
        ("recordings", "list", lambda r: r.choice([
            f"{v1}/recordings/?lab={n}", f"{v1}/recordings/?session={r.choice(lab.sessions)}"])),
        ("readings", "list", lambda r: r.choice([
            f"{v1}/readings/?lab={n}", f"{v1}/readings/?reader={r.choice(lab.readers)}",
            f"{v1}/readings/?image={r.choice(lab.images)}", f"{v1}/readings/?grade=good"])),
        ("fixations", "list", lambda r: f"{v1}/fixations/?reading={r.choice(lab.readings)}"),
        ("saliency-maps", "list", lambda r: r.choice([
            f"{v1}/saliency-maps/?lab={n}", f"{v1}/saliency-maps/?kind=reading"])),
        ("snapshots", "list", lambda r: f"{v1}/snapshots/?lab={n}"),
        ("training-jobs", "list", lambda r: r.choice([
            f"{v1}/training-jobs/?lab={n}", f"{v1}/training-jobs/?status=queued"])),
        ("model-versions", "list", lambda r: f"{v1}/model-versions/?lab={n}"),
        ("evaluations", "list", lambda r: f"{v1}/evaluations/?lab={n}"),
        ("evaluation-images", "list",
         lambda r: f"{v1}/evaluation-images/?evaluation={r.choice(lab.evaluations)}"),
        ("image-uploads", "list", lambda r: f"{v1}/image-uploads/?lab={n}"),
        ("image", "detail", lambda r: f"{v1}/images/{r.choice(lab.images)}/"),
        ("reader", "detail", lambda r: f"{v1}/readers/{r.choice(lab.readers)}/"),
        ("session", "detail", lambda r: f"{v1}/sessions/{r.choice(lab.sessions)}/"),
        ("recording", "detail", lambda r: f"{v1}/recordings/{r.choice(lab.recordings)}/"),
        ("reading", "detail", lambda r: f"{v1}/readings/{r.choice(lab.readings)}/"),
        ("saliency-map", "detail", lambda r: f"{v1}/saliency-maps/{r.choice(lab.reading_maps)}/"),
        ("snapshot", "detail", lambda r: f"{v1}/snapshots/{r.choice(lab.snapshots)}/"),
        ("training-job", "detail", lambda r: f"{v1}/training-jobs/{r.choice(lab.jobs)}/"),
        ("model-version", "detail", lambda r: f"{v1}/model-versions/{r.choice(lab.versions)}/"),
        ("evaluation", "detail", lambda r: f"{v1}/evaluations/{r.choice(lab.evaluations)}/"),
        ("fixations.csv", "file",
         lambda r: f"{v1}/readings/{r.choice(lab.readings)}/fixations/?format=csv"),
        ("saliency.png", "file",
         lambda r: f"{v1}/saliency-maps/{r.choice(lab.reading_maps)}/png/"),
        ("image-upload", "upload", None),
    ]  # fmt: skip


def _png(rng: random.Random, side: int = 64) -> bytes:
    from PIL import Image as PILImage

    pixels = PILImage.frombytes("L", (side, side), rng.randbytes(side * side))
    out = io.BytesIO()
    pixels.save(out, format="PNG")
    return out.getvalue()


def _upload(lab: Lab, rng: random.Random, key: str) -> Req:
    boundary = f"loadbench{uuid.UUID(int=rng.getrandbits(128)).hex}"
    parts = []
    for name, value in (("lab", str(lab.lab)), ("key", key), ("label", "Normal")):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())  # fmt: skip
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                 f'filename="{key}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
                 + _png(rng) + b"\r\n")  # fmt: skip
    parts.append(f"--{boundary}--\r\n".encode())
    return Req("image-upload", "upload", "POST", "/api/v1/images/", b"".join(parts),
               f"multipart/form-data; boundary={boundary}")  # fmt: skip


def plan(lab: Lab, per_endpoint: int, rng: random.Random, tag: str, shuffle: bool) -> list[Req]:
    """``per_endpoint`` requests of every endpoint (uploads with keys unique to ``tag``)."""
    reqs = []
    for name, kind, path in endpoints(lab):
        for i in range(per_endpoint):
            if kind == "upload":
                reqs.append(_upload(lab, rng, f"load-{tag}-{i:05d}"))
            else:
                reqs.append(Req(name, kind, "GET", path(rng)))
    if shuffle:
        rng.shuffle(reqs)
    return reqs
