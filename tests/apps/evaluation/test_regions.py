"""Attention per region on an evaluation's images: the model's saliency share (stored map, the
item's letterbox) and each reader's dwell share, checked by hand against the snapshot's own
transform and the fixation rows; the aggregate, the CSV, the API's refusals; and the pieces
(the rebuilt transform, the windowed dwell count) against the references they stand in for."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from apps.core import storage
from apps.datasets.services.files import snapshot_manifest
from apps.evaluation import services
from apps.evaluation.services.regions import dwell_shares_in_image, item_transform
from apps.evaluation.services.run import as_density, load_map
from apps.gaze.models import Fixation
from apps.imaging import services as imaging
from apps.imaging.models import ImageRegion
from apps.imaging.services.regions import mask_bytes
from ml.data.snapshot import model_frame
from ml.regions import dwell_shares, region_masks
from tests.apps.evaluation.objects import evaluated, version_on
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _by_reader(item) -> dict[str, np.ndarray]:
    """Reader code -> (N, 3) x, y, duration of the item's readings' fixations."""
    rows = Fixation.objects.filter(reading_id__in=item.reading_ids).values_list(
        "reading__session__reader__code", "x", "y", "duration_ms"
    )
    out: dict[str, list] = {}
    for code, x, y, d in rows:
        out.setdefault(code, []).append((x, y, d))
    return {code: np.array(points) for code, points in out.items()}


def _share(points: np.ndarray, inside) -> float:
    x, y, d = points.T
    on = (x >= 0) & (x < 50) & (y >= 0) & (y < 60)
    return float(d[on & inside(x, y)].sum() / d[on].sum())


def _untouched_pixel(points: np.ndarray) -> tuple[int, int]:
    hit = {(int(np.floor(x)), int(np.floor(y))) for x, y, _ in points}
    return next((c, r) for r in range(60) for c in range(50) if (c, r) not in hit)


def _mask_region(image, name: str, mask: np.ndarray) -> ImageRegion:
    stored = storage.put(app="imaging", lab_id=image.lab_id, kind="regions",
                         fh=io.BytesIO(mask_bytes(mask)), ext="npz")  # fmt: skip
    ys, xs = np.nonzero(mask)
    return ImageRegion.objects.create(
        lab_id=image.lab_id, image=image, name=name, kind="mask", source="phantom",
        x1=xs.min(), y1=ys.min(), x2=xs.max() + 1, y2=ys.max() + 1, mask_name=stored.name,
    )  # fmt: skip


@pytest.fixture
def evaluation(snapshot, personas):
    return evaluated(snapshot, personas.researcher_a)


def test_shares_are_those_counted_by_hand(evaluation, personas):
    rows = list(evaluation.images.select_related("item__image").order_by("key"))
    assert len(rows) >= 3
    first, second = rows[0], rows[1]
    image = first.item.image
    assert (image.width, image.height) == (50, 60)
    fixations = _by_reader(first.item)
    assert sorted(fixations) == ["R1", "R2"]
    pooled = np.concatenate(list(fixations.values()))
    px, py = _untouched_pixel(pooled)
    text = (
        "image,name,x1,y1,x2,y2\n"
        f"{image.key},whole,0,0,50,60\n"
        f"{image.key},left,0,0,25.3,60\n"
        f"{image.key},nowhere,{px},{py},{px + 1},{py + 1}\n"
        f"{second.item.image.key},whole,0,0,50,60\n"
    )
    imaging.regions_import(lab=personas.lab_a, actor=personas.researcher_a, fmt="boxes",
                           text=text)  # fmt: skip
    left_mask = np.zeros((60, 50), dtype=bool)
    left_mask[:, :20] = True
    _mask_region(image, "left20", left_mask)

    result = services.evaluation_regions(evaluation=evaluation)
    assert result["n_images"] == 2 and result["readers"] == ["R1", "R2"]
    assert result["resolution"] == [64, 64] and result["mode"] == "letterbox"
    [one, two] = result["images"]
    assert (one["key"], two["key"]) == (first.key, second.key)
    assert one["evaluation_image"] == first.pk and one["image"] == image.pk
    shares = {(r["source"], r["name"]): r for r in one["regions"]}
    assert list(shares) == [("boxes", "whole"), ("boxes", "left"), ("boxes", "nowhere"),
                            ("phantom", "left20")]  # fmt: skip

    # The model: its stored density over the image's part of the 64 x 64 frame, the regions
    # sampled at each model pixel's centre through the transform the build recorded.
    [entry] = [e for e in snapshot_manifest(snapshot=evaluation.snapshot)["items"]
               if e["key"] == first.key]  # fmt: skip
    t = entry["transform"]
    assert (t["scale"], t["offset_x"], t["offset_y"]) == (1.06, 5.0, 0.0)
    sx = (np.arange(64) + 0.5 - t["offset_x"]) / t["scale"]
    sy = (np.arange(64) + 0.5 - t["offset_y"]) / t["scale"]
    density = as_density(load_map(first.map_name))
    on_rows, on_cols = (sy >= 0) & (sy < 60), (sx >= 0) & (sx < 50)
    total = density[np.ix_(on_rows, on_cols)].sum()
    assert one["model_on_image"] == pytest.approx(total)
    assert total < 1  # the padding columns hold some of the untrained model's mass

    def model(cols) -> float:
        return float(density[np.ix_(on_rows, on_cols & cols)].sum() / total)

    assert shares["boxes", "whole"]["model_share"] == pytest.approx(1.0)
    assert shares["boxes", "left"]["model_share"] == pytest.approx(model(sx < 25.3))
    assert shares["phantom", "left20"]["model_share"] == pytest.approx(model(np.floor(sx) < 20))
    assert 0 < shares["boxes", "nowhere"]["model_share"] < 0.01
    assert shares["boxes", "whole"]["area_share"] == 1.0
    assert shares["boxes", "left"]["area_share"] == pytest.approx(27 / 53)  # columns 5..31

    # The readers: fixation time in image pixels.
    whole, left = shares["boxes", "whole"], shares["boxes", "left"]
    assert whole["dwell_share"] == 1.0 and whole["reader_dwell_shares"] == {"R1": 1.0, "R2": 1.0}
    assert shares["boxes", "nowhere"]["dwell_share"] == 0.0
    assert shares["boxes", "nowhere"]["reader_dwell_shares"] == {"R1": 0.0, "R2": 0.0}
    assert left["dwell_share"] == pytest.approx(_share(pooled, lambda x, y: x < 25))
    for code, points in fixations.items():
        assert left["reader_dwell_shares"][code] == pytest.approx(
            _share(points, lambda x, y: x < 25)
        )
        assert shares["phantom", "left20"]["reader_dwell_shares"][code] == pytest.approx(
            _share(points, lambda x, y: x < 20)
        )

    aggregate = {(r["source"], r["name"]): r for r in result["regions"]}
    assert aggregate["boxes", "whole"]["n_images"] == 2
    assert aggregate["boxes", "whole"]["model_share"] == pytest.approx(1.0)
    assert aggregate["boxes", "whole"]["dwell_share"] == 1.0
    assert aggregate["boxes", "whole"]["reader_dwell_shares"] == {"R1": 1.0, "R2": 1.0}
    assert aggregate["boxes", "whole"]["reader_n"] == {"R1": 2, "R2": 2}
    assert aggregate["boxes", "left"]["n_images"] == 1
    assert aggregate["boxes", "left"]["dwell_share"] == left["dwell_share"]


def test_the_endpoint_answers_json_and_csv_in_a_few_queries(
    evaluation, personas, django_assert_max_num_queries
):
    row = evaluation.images.select_related("item__image").order_by("key").first()
    key = row.item.image.key
    imaging.regions_import(lab=personas.lab_a, actor=personas.researcher_a, fmt="egd",
                           text="dicom_id,bbox_name,x1,x2,y1,y2\n"
                                f"{key},a,0,10,0,10\n{key},b,10,50,10,60\n")  # fmt: skip
    fresh = type(evaluation).objects.get(pk=evaluation.pk)
    with django_assert_max_num_queries(6):
        expected = services.evaluation_regions(evaluation=fresh)
    client = client_for(personas.viewer_a)
    url = f"/api/v1/evaluations/{evaluation.pk}/regions/"
    answer = client.get(url)
    assert answer.status_code == 200
    assert answer.json() == expected
    table = client.get(url, {"format": "csv"})
    assert table.status_code == 200 and table["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(table.content.decode())))
    assert lines[0] == ["key", "image", "source", "name", "area_share", "model_share",
                        "dwell_share", "dwell_R1", "dwell_R2"]  # fmt: skip
    image_id = str(row.item.image_id)
    assert [line[:4] for line in lines[1:]] == [[key, image_id, "egd", "a"],
                                                [key, image_id, "egd", "b"]]  # fmt: skip
    region = expected["images"][0]["regions"][1]
    assert float(lines[2][5]) == region["model_share"]


def test_an_evaluation_without_regions_has_none_and_an_unfinished_one_is_a_409(
    evaluation, snapshot, personas
):
    client = client_for(personas.researcher_a)
    empty = client.get(f"/api/v1/evaluations/{evaluation.pk}/regions/").json()
    assert empty["n_images"] == 0 and empty["images"] == [] and empty["regions"] == []
    version = version_on(snapshot, personas.researcher_a, seed=1)
    queued = services.evaluation_create(version=version, snapshot=snapshot, split="test",
                                        actor=personas.researcher_a, enqueue=False)  # fmt: skip
    answer = client.get(f"/api/v1/evaluations/{queued.pk}/regions/", {"format": "csv"})
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "not_ready"
    assert client_for(personas.admin_b).get(
        f"/api/v1/evaluations/{evaluation.pk}/regions/"
    ).status_code == 404  # fmt: skip


@pytest.mark.parametrize("seed_mode", [False, True])
@pytest.mark.parametrize("size", [(60, 50), (50, 60), (37, 91), (300, 250), (8, 6)])
def test_the_rebuilt_transform_is_the_builds(size, seed_mode):
    resolution = (64, 64) if not seed_mode else (80, 64)
    _, built = model_frame(np.zeros(size, dtype=np.float32), resolution, seed_mode=seed_mode)
    choices = {"resolution": list(resolution), "seed_mode": seed_mode}
    rebuilt = item_transform(width=size[1], height=size[0], choices=choices)
    assert rebuilt == built


def test_dwell_in_image_windows_equals_full_size_masks():
    rng = np.random.default_rng(7)
    shape = (60, 50)
    mask = rng.random(shape) < 0.3
    regions = [
        {"name": "box", "kind": "box", "x1": 3.2, "y1": 4.7, "x2": 30.1, "y2": 22.5},
        {"name": "tiny", "kind": "box", "x1": 10.2, "y1": 10.2, "x2": 10.4, "y2": 10.4},
        {"name": "line", "kind": "box", "x1": 12.0, "y1": 0.0, "x2": 12.0, "y2": 60.0},
        {"name": "edge", "kind": "ellipse", "x1": -10.0, "y1": 40.0, "x2": 20.0, "y2": 75.0},
        {"name": "oval", "kind": "ellipse", "x1": 20.5, "y1": 5.0, "x2": 44.0, "y2": 33.3},
        {"name": "box", "kind": "box", "x1": 40, "y1": 40, "x2": 50, "y2": 60},  # a union
        {"name": "mask", "kind": "mask", "mask": mask},
    ]
    xy = np.column_stack([rng.uniform(-5, 55, 400), rng.uniform(-5, 65, 400)])
    xy[:40] = np.floor(xy[:40])  # on pixel edges too
    xy[40] = (10.3, 10.3)  # in the tiny box's pixel
    xy[41] = (11.5, 29.5)  # the pixel that stands for the zero-width line (a tie: the first)
    xy[42] = (12.5, 30.5)  # the other pixel at the same distance from its centre
    durations = rng.uniform(50, 500, 400)
    groups: dict[str, list[dict]] = {}
    for region in regions:
        groups.setdefault(region["name"], []).append(region)
    ours = dwell_shares_in_image(groups, xy, durations, shape)
    reference = dwell_shares(xy, durations, region_masks(regions, shape, None))
    assert ours.keys() == reference.keys()
    for name in ours:
        assert ours[name] == pytest.approx(reference[name], abs=1e-12), name
    assert ours["tiny"] > 0 and ours["line"] > 0
    none = dwell_shares_in_image(groups, np.array([[-1.0, 3.0]]), np.array([100.0]), shape)
    assert all(np.isnan(v) for v in none.values())


def test_dwell_in_image_windows_match_on_small_regions_and_ties():
    """Every pixel fixated once: each small region's share is its pixel count, as the full-size
    mask counts it (ties at pixel edges, regions passing the edges, zero sizes)."""
    rng = np.random.default_rng(11)
    shape = (9, 7)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    xy = np.column_stack([cols.ravel() + 0.5, rows.ravel() + 0.5])
    durations = np.ones(len(xy))
    for index in range(300):
        x1, y1 = rng.integers(-8, 36, 2) / 4
        x2, y2 = x1 + rng.integers(0, 12) / 4, y1 + rng.integers(0, 12) / 4
        kind = "box" if index % 2 else "ellipse"
        region = {"name": "r", "kind": kind, "x1": x1, "y1": y1, "x2": x2, "y2": y2}
        ours = dwell_shares_in_image({"r": [region]}, xy, durations, shape)["r"]
        reference = dwell_shares(xy, durations, region_masks([region], shape, None))["r"]
        assert ours == reference, region
