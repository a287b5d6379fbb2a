"""Regions: rasterising through the resize transform, attention shares, and the file parsers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from ml.data.resize import letterbox, pad_and_stride
from ml.regions import (
    PHANTOM_REGIONS,
    RegionFormatError,
    dwell_shares,
    mass_shares,
    parse_boxes_csv,
    parse_egd_bounding_boxes,
    parse_reflacx_ellipses,
    phantom_regions,
    region_masks,
)
from ml.synthetic import make_phantom


def _box(name, x1, y1, x2, y2, kind="box"):
    return {"name": name, "kind": kind, "x1": x1, "y1": y1, "x2": x2, "y2": y2}


# --- region_masks without a transform ---------------------------------------------------------


def test_box_covers_its_pixels_with_exclusive_ends():
    masks = region_masks([_box("b", 1, 2, 4, 3)], (5, 6))
    expected = np.zeros((5, 6), dtype=bool)
    expected[2:3, 1:4] = True
    np.testing.assert_array_equal(masks["b"], expected)
    assert masks["b"].dtype == bool


def test_fractional_box_takes_the_pixels_whose_centres_it_contains():
    mask = region_masks([_box("b", 0.6, 0.4, 2.5, 1.6)], (4, 4))["b"]
    expected = np.zeros((4, 4), dtype=bool)
    expected[0:2, 1:2] = True  # centres 0.5 and 1.5 in y; only 1.5 in x (2.5 is excluded)
    np.testing.assert_array_equal(mask, expected)


def test_ellipse_is_inscribed_in_its_bounding_box():
    mask = region_masks([_box("e", 0, 0, 9, 9, kind="ellipse")], (9, 9))["e"]
    ys, xs = np.mgrid[:9, :9] + 0.5
    expected = ((xs - 4.5) / 4.5) ** 2 + ((ys - 4.5) / 4.5) ** 2 <= 1
    np.testing.assert_array_equal(mask, expected)
    assert mask[4, 4] and not mask[0, 0] and not mask[8, 8]
    assert mask[4, 0] and mask[0, 4]


def test_mask_region_at_the_model_size_passes_through():
    rng = np.random.default_rng(0)
    raw = rng.uniform(size=(6, 7)) > 0.5
    np.testing.assert_array_equal(
        region_masks([{"name": "m", "kind": "mask", "mask": raw}], (6, 7))["m"], raw
    )


def test_regions_with_the_same_name_are_ored_and_order_is_kept():
    masks = region_masks(
        [_box("lung", 0, 0, 2, 2), _box("heart", 3, 3, 4, 4), _box("lung", 4, 0, 6, 1)], (5, 6)
    )
    assert list(masks) == ["lung", "heart"]
    assert masks["lung"].sum() == 4 + 2
    assert masks["lung"][0, 5] and masks["lung"][1, 1] and not masks["lung"][1, 5]


def test_regions_partly_off_the_image_are_clipped():
    mask = region_masks([_box("b", -10, -10, 2, 1)], (4, 4))["b"]
    assert mask.sum() == 2 and mask[0, 0] and mask[0, 1]


def test_a_region_smaller_than_a_pixel_keeps_one_pixel_unless_asked_not_to():
    tiny = _box("t", 2.6, 1.2, 2.8, 1.3)
    mask = region_masks([tiny], (4, 4))["t"]
    assert mask.sum() == 1 and mask[1, 2]
    assert not region_masks([tiny], (4, 4), keep_small=False)["t"].any()
    point = _box("p", 3, 3, 3, 3, kind="ellipse")  # degenerate: a point
    assert region_masks([point], (5, 5))["p"].sum() == 1
    outside = _box("o", 40, 40, 40.5, 40.5)
    assert not region_masks([outside], (4, 4))["o"].any()


@pytest.mark.parametrize(
    ("region", "match"),
    [
        ({"name": "x", "kind": "circle", "x1": 0, "y1": 0, "x2": 1, "y2": 1}, "kind"),
        ({"name": "x", "kind": "box", "x1": 0, "y1": 0, "x2": 1}, "missing coordinate 'y2'"),
        ({"name": "x", "kind": "box", "x1": 2, "y1": 0, "x2": 1, "y2": 1}, "x2 < x1"),
        ({"name": "x", "kind": "box", "x1": "a", "y1": 0, "x2": 1, "y2": 1}, "numbers"),
        ({"name": "x", "kind": "box", "x1": np.nan, "y1": 0, "x2": 1, "y2": 1}, "finite"),
        ({"name": "", "kind": "box", "x1": 0, "y1": 0, "x2": 1, "y2": 1}, "name"),
        ({"name": "x", "kind": "mask", "mask": np.ones((3, 3), bool)}, "mask shape"),
        ({"name": "x", "kind": "mask", "mask": np.ones(3, bool)}, "2-D"),
    ],
)
def test_malformed_regions_are_rejected(region, match):
    with pytest.raises(ValueError, match=match):
        region_masks([region], (4, 4))


# --- region_masks through the resize transform ------------------------------------------------


def test_a_box_on_the_whole_image_covers_the_letterbox_non_padding_area():
    image = np.ones((100, 50), dtype=np.float32)
    resized, transform = letterbox(image, (20, 20))
    assert transform.offset_x == 5  # the 10 x 20 image sits in columns 5..14
    mask = region_masks([_box("all", 0, 0, 50, 100)], (20, 20), transform)["all"]
    np.testing.assert_array_equal(mask, resized > 0.5)
    assert mask[:, 5:15].all() and not mask[:, :5].any() and not mask[:, 15:].any()


def test_a_box_maps_through_letterbox_scale_and_offset():
    _, transform = letterbox(np.zeros((100, 50)), (20, 20))  # scale 0.2, offset_x 5
    mask = region_masks([_box("b", 10, 20, 30, 60)], (20, 20), transform)["b"]
    expected = np.zeros((20, 20), dtype=bool)
    expected[4:12, 7:11] = True  # y: 20*0.2 .. 60*0.2; x: 10*0.2+5 .. 30*0.2+5
    np.testing.assert_array_equal(mask, expected)


def test_a_mask_region_maps_like_the_box_it_draws():
    _, transform = letterbox(np.zeros((90, 60)), (32, 32))
    raw = np.zeros((90, 60), dtype=bool)
    raw[15:45, 12:36] = True
    masks = region_masks(
        [{"name": "m", "kind": "mask", "mask": raw}, _box("b", 12, 15, 36, 45)], (32, 32), transform
    )
    np.testing.assert_array_equal(masks["m"], masks["b"])
    assert masks["m"].any()


def test_masks_are_nearest_neighbour_sampled_like_pad_and_stride_images():
    rng = np.random.default_rng(1)
    raw = rng.uniform(size=(20, 30)) > 0.6
    sampled, transform = pad_and_stride(raw.astype(np.float32), padded=(40, 40), stride=4)
    masks = region_masks(
        [{"name": "m", "kind": "mask", "mask": raw}], transform.out_shape, transform
    )
    np.testing.assert_array_equal(masks["m"], sampled > 0.5)


def test_boxes_follow_pad_and_stride_sampling():
    raw = np.zeros((20, 30), dtype=np.float32)
    raw[3:11, 6:19] = 1
    sampled, transform = pad_and_stride(raw, padded=(40, 40), stride=4)
    mask = region_masks([_box("b", 6, 3, 19, 11)], transform.out_shape, transform)["b"]
    np.testing.assert_array_equal(mask, sampled > 0.5)


def test_a_tiny_box_keeps_the_model_pixel_it_falls_on():
    _, transform = letterbox(np.zeros((100, 50)), (20, 20))
    mask = region_masks([_box("t", 21, 41, 22, 42)], (20, 20), transform)["t"]
    assert mask.sum() == 1
    assert mask[8, 9]  # x: 21.5 * 0.2 + 5 = 9.3; y: 41.5 * 0.2 = 8.3


def test_any_object_with_the_same_forward_mapping_works():
    _, transform = letterbox(np.zeros((100, 50)), (20, 20))
    duck = SimpleNamespace(scale=transform.scale, offset_y=0.0, offset_x=5.0)
    box = _box("b", 10, 20, 30, 60)
    np.testing.assert_array_equal(
        region_masks([box], (20, 20), duck)["b"], region_masks([box], (20, 20), transform)["b"]
    )


def test_transform_mismatches_are_rejected():
    _, transform = letterbox(np.zeros((100, 50)), (20, 20))
    with pytest.raises(ValueError, match="differs from the transform"):
        region_masks([_box("b", 0, 0, 1, 1)], (10, 10), transform)
    with pytest.raises(ValueError, match="mask shape"):
        region_masks(
            [{"name": "m", "kind": "mask", "mask": np.ones((20, 20), bool)}], (20, 20), transform
        )
    odd = SimpleNamespace(scale=1.0, offset_y=0.0, offset_x=0.0, mode="warp")
    with pytest.raises(ValueError, match="unknown transform mode"):
        region_masks([_box("b", 0, 0, 1, 1)], (4, 4), odd)


# --- phantoms ---------------------------------------------------------------------------------


def test_phantom_regions_are_its_masks():
    phantom = make_phantom("Pneumonia", seed=3, height=120, width=100, noise=0)
    regions = phantom_regions(phantom)
    assert [r["name"] for r in regions] == list(PHANTOM_REGIONS)
    masks = region_masks(regions, phantom.image.shape)
    for name in PHANTOM_REGIONS:
        np.testing.assert_array_equal(masks[name], phantom.masks[name])
    resized, transform = letterbox(phantom.image, (64, 64))
    small = region_masks(regions, (64, 64), transform)
    assert small["finding"].any() and small["heart"].any()
    # The finding's box and its mask land on the same model pixels' neighbourhood.
    x0, y0, x1, y1 = phantom.finding_bbox
    box = region_masks([_box("f", x0, y0, x1, y1)], (64, 64), transform)["f"]
    assert (small["finding"] & ~box).sum() == 0


def test_a_normal_phantom_has_no_finding_region_and_unknown_names_fail():
    phantom = make_phantom("Normal", seed=3, height=120, width=100, noise=0)
    names = [r["name"] for r in phantom_regions(phantom)]
    assert "finding" not in names and "heart" in names
    assert [r["name"] for r in phantom_regions(phantom, ["lungs"])] == ["lungs"]
    with pytest.raises(KeyError, match="no mask 'spleen'"):
        phantom_regions(phantom, ["spleen"])


# --- shares -----------------------------------------------------------------------------------


def _quadrant_masks():
    left = np.zeros((4, 4), dtype=bool)
    left[:, :2] = True
    top_left = np.zeros((4, 4), dtype=bool)
    top_left[:2, :2] = True
    bottom_right = np.zeros((4, 4), dtype=bool)
    bottom_right[2:, 2:] = True
    return {"left": left, "top_left": top_left, "bottom_right": bottom_right}


def test_dwell_shares_hand_checked():
    xy = np.array([[0, 0], [3, 3], [1.7, 0.2], [10, 10], [np.nan, 1], [0, 3]])
    durations = np.array([100.0, 300.0, 100.0, 500.0, 200.0, np.nan])
    # On the map: 100 at (0,0), 300 at (3,3), 100 at pixel (1,0); off-map/NaN ones count nowhere.
    shares = dwell_shares(xy, durations, _quadrant_masks())
    assert shares == pytest.approx({"left": 0.4, "top_left": 0.4, "bottom_right": 0.6})


def test_dwell_shares_without_dwell_time_are_nan():
    shares = dwell_shares(np.array([[9.0, 9.0]]), np.array([100.0]), _quadrant_masks())
    assert all(math.isnan(v) for v in shares.values()) and len(shares) == 3
    shares = dwell_shares(np.zeros((0, 2)), np.zeros(0), _quadrant_masks())
    assert all(math.isnan(v) for v in shares.values())
    assert dwell_shares(np.array([[1, 1]]), np.array([5.0]), {}) == {}


def test_dwell_shares_rejects_bad_input():
    masks = _quadrant_masks()
    with pytest.raises(ValueError, match="durations for"):
        dwell_shares(np.array([[1, 1], [2, 2]]), np.array([1.0]), masks)
    with pytest.raises(ValueError, match="negative"):
        dwell_shares(np.array([[1, 1]]), np.array([-1.0]), masks)
    with pytest.raises(ValueError, match="shape"):
        dwell_shares(np.array([[1, 1]]), np.array([1.0]), {"a": np.ones((4, 4)), "b": np.ones(3)})


def test_mass_shares_hand_checked():
    saliency = np.zeros((4, 4))
    saliency[0, 0] = 2.0  # left, top_left
    saliency[3, 3] = 1.0  # bottom_right
    saliency[3, 0] = 1.0  # left only
    shares = mass_shares(saliency, _quadrant_masks())
    assert shares == pytest.approx({"left": 0.75, "top_left": 0.5, "bottom_right": 0.25})


def test_mass_shares_of_a_uniform_map_are_the_areas():
    masks = region_masks([_box("b", 0, 0, 3, 2)], (4, 6))
    assert mass_shares(np.ones((4, 6)), masks)["b"] == pytest.approx(6 / 24)


def test_a_region_holding_all_the_mass_has_a_share_of_exactly_one():
    """Summing the region's values gathered apart rounds differently from the total: for
    these seeds it gave 0.9999999999999999 or 1.0000000000000002 (the regions page showed it)."""
    rng = np.random.default_rng(0)
    frame = np.zeros((256, 320), dtype=bool)
    frame[10:-10, 7:-9] = True
    for _ in range(20):
        saliency = np.where(frame, rng.random(frame.shape), 0.0)
        saliency /= saliency.sum()  # a density, as the evaluation's maps are
        shares = mass_shares(saliency, {"whole": frame, "all": np.ones_like(frame)})
        assert shares == {"whole": 1.0, "all": 1.0}


def test_mass_shares_edge_cases():
    masks = _quadrant_masks()
    assert all(math.isnan(v) for v in mass_shares(np.zeros((4, 4)), masks).values())
    with pytest.raises(ValueError, match="differs"):
        mass_shares(np.ones((5, 5)), masks)
    with pytest.raises(ValueError, match="non-negative"):
        mass_shares(-np.ones((4, 4)), masks)
    with pytest.raises(ValueError, match="2-D"):
        mass_shares(np.ones(4), masks)


# --- EGD-CXR bounding_boxes.csv ---------------------------------------------------------------

EGD = (
    "\ufeffdicom_id,bbox_name,x1,x2,y1,y2\n"
    "abc-1,right lung,100,900,200,1800\n"
    "abc-1,heart,800.5,1400,1000,1700\n"
    "\n"
    '"def-2","left lung",1200,2000,210,1790\n'
)


def test_parse_egd_bounding_boxes():
    boxes = parse_egd_bounding_boxes(EGD)
    assert list(boxes) == ["abc-1", "def-2"]
    assert boxes["abc-1"][0] == _box("right lung", 100.0, 200.0, 900.0, 1800.0)
    assert boxes["abc-1"][1] == _box("heart", 800.5, 1000.0, 1400.0, 1700.0)
    assert boxes["def-2"] == [_box("left lung", 1200.0, 210.0, 2000.0, 1790.0)]


def test_parse_egd_columns_by_name_in_any_order_and_extra_columns_ignored():
    text = "y2,Y1,X2,x1,bbox_name,dicom_id,comment\n40,20,30,10,heart,k,anything\n"
    assert parse_egd_bounding_boxes(text) == {"k": [_box("heart", 10.0, 20.0, 30.0, 40.0)]}
    assert parse_egd_bounding_boxes("dicom_id,bbox_name,x1,x2,y1,y2\n") == {}


@pytest.mark.parametrize(
    ("text", "line", "column", "match"),
    [
        ("dicom_id,bbox_name,x1,x2,y1\na,b,1,2,3\n", 1, "y2", "missing from the header"),
        ("dicom_id,bbox_name,x1,x2,y1,y2\na,b,1,2,3\n", 2, "y2", "missing value"),
        ("dicom_id,bbox_name,x1,x2,y1,y2\na,b,1,2,3,4\na,c,1,two,3,4\n", 3, "x2", "'two'"),
        ("dicom_id,bbox_name,x1,x2,y1,y2\na,b,5,2,3,4\n", 2, "x2", "less than x1"),
        ("dicom_id,bbox_name,x1,x2,y1,y2\na,b,1,2,9,4\n", 2, "y2", "less than y1"),
        ("dicom_id,bbox_name,x1,x2,y1,y2\na,b,1,2,,4\n", 2, "y1", "empty value"),
        ("dicom_id,bbox_name,x1,x2,y1,y2\na,b,1,2,nan,4\n", 2, "y1", "finite"),
        ("dicom_id,bbox_name,x1,x2,y1,y2\n,b,1,2,3,4\n", 2, "dicom_id", "empty value"),
        ("dicom_id,bbox_name,x1,x2,y1,y2\na,b,1,2,3,4\n\n\na,b,1,x,3,4\n", 5, "x2", "not a number"),
        ("dicom_id,bbox_name,x1,x2,y1,y2,x1\n", 1, "x1", "duplicate"),
    ],
)
def test_parse_egd_bad_lines_name_the_line_and_column(text, line, column, match):
    with pytest.raises(RegionFormatError, match=match) as info:
        parse_egd_bounding_boxes(text)
    assert info.value.line == line and info.value.column == column
    assert str(info.value).startswith(f"line {line}, column {column!r}: ")
    assert isinstance(info.value, ValueError)


def test_parse_egd_too_many_fields_and_empty_file():
    with pytest.raises(RegionFormatError, match="line 2: 7 fields") as info:
        parse_egd_bounding_boxes("dicom_id,bbox_name,x1,x2,y1,y2\na,b,1,2,3,4,5\n")
    assert info.value.column is None
    with pytest.raises(RegionFormatError, match="line 1: no header"):
        parse_egd_bounding_boxes("")


# --- REFLACX anomaly_location_ellipses.csv ----------------------------------------------------

REFLACX = (
    "xmin,ymin,xmax,ymax,certainty,Atelectasis,Consolidation,Pleural effusion\n"
    "10,20,110,220,4,False,True,True\n"
    "0,0,5,5,2,False,False,False\n"
    "300.5,400,500,600,5,True,False,False\n"
)


def test_parse_reflacx_ellipses():
    ellipses = parse_reflacx_ellipses(REFLACX, "img-1")
    assert list(ellipses) == ["img-1"]
    first, second, third = ellipses["img-1"]
    assert first == {
        **_box("Consolidation+Pleural effusion", 10.0, 20.0, 110.0, 220.0, kind="ellipse"),
        "certainty": 4.0,
        "findings": ["Consolidation", "Pleural effusion"],
    }
    assert second["name"] == "anomaly" and second["findings"] == []
    assert third["name"] == "Atelectasis" and third["x1"] == 300.5
    masks = region_masks(ellipses["img-1"], (700, 600))
    assert set(masks) == {"Consolidation+Pleural effusion", "anomaly", "Atelectasis"}


def test_parse_reflacx_certainty_filter_booleans_and_header_only():
    kept = parse_reflacx_ellipses(REFLACX, "k", min_certainty=3)["k"]
    assert [e["certainty"] for e in kept] == [4.0, 5.0]
    text = "XMIN,YMIN,XMAX,YMAX,CERTAINTY,Mass,Nodule\n1,2,3,4,3,1,true\n5,6,7,8,3,0,\n"
    found = parse_reflacx_ellipses(text, "k")["k"]
    assert [e["name"] for e in found] == ["Mass+Nodule", "anomaly"]
    assert parse_reflacx_ellipses("xmin,ymin,xmax,ymax,certainty,Mass\n", "k") == {"k": []}


@pytest.mark.parametrize(
    ("text", "line", "column", "match"),
    [
        ("xmin,ymin,xmax,certainty,Mass\n1,2,3,4,True\n", 1, "ymax", "missing from the header"),
        ("xmin,ymin,xmax,ymax,certainty,Mass\n1,2,3,4,3,maybe\n", 2, "Mass", "not a boolean"),
        ("xmin,ymin,xmax,ymax,certainty,Mass\n1,2,3,4,3,True\n9,2,3,4,3,True\n", 3, "xmax", "less"),
        ("xmin,ymin,xmax,ymax,certainty,Mass\n1,2,3,4,high,True\n", 2, "certainty", "'high'"),
        ("xmin,ymin,xmax,ymax,certainty,Mass\n1,2,3,4,3\n", 2, "Mass", "missing value"),
    ],
)
def test_parse_reflacx_bad_lines_name_the_line_and_column(text, line, column, match):
    with pytest.raises(RegionFormatError, match=match) as info:
        parse_reflacx_ellipses(text, "k")
    assert (info.value.line, info.value.column) == (line, column)


# --- the platform's generic boxes CSV ---------------------------------------------------------


def test_parse_boxes_csv():
    text = "image,name,x1,y1,x2,y2\nimg1,lesion,1,2,30,40\nimg2,lesion,0,0,5,5\nimg1,tube,5,5,6,9\n"
    boxes = parse_boxes_csv(text)
    assert boxes == {
        "img1": [_box("lesion", 1.0, 2.0, 30.0, 40.0), _box("tube", 5.0, 5.0, 6.0, 9.0)],
        "img2": [_box("lesion", 0.0, 0.0, 5.0, 5.0)],
    }


def test_parse_boxes_csv_accepts_key_and_an_optional_kind():
    text = "key,name,x1,y1,x2,y2,kind\na,blob,0,0,4,4,ellipse\na,box,0,0,1,1,\n"
    regions = parse_boxes_csv(text)["a"]
    assert [r["kind"] for r in regions] == ["ellipse", "box"]
    with pytest.raises(RegionFormatError, match="'circle'") as info:
        parse_boxes_csv("image,name,x1,y1,x2,y2,kind\na,b,0,0,1,1,circle\n")
    assert (info.value.line, info.value.column) == (2, "kind")


@pytest.mark.parametrize(
    ("text", "line", "column", "match"),
    [
        ("name,x1,y1,x2,y2\nb,0,0,1,1\n", 1, "image", "missing from the header"),
        ("image,key,name,x1,y1,x2,y2\n", 1, "key", "not both"),
        ("image,name,x1,y1,x2,y2\na,b,0,0,1\n", 2, "y2", "missing value"),
        ("image,name,x1,y1,x2,y2\na,b,0,0,1,1\na,b,0,0,one,1\n", 3, "x2", "not a number"),
        ("image,name,x1,y1,x2,y2\na,b,3,0,1,1\n", 2, "x2", "less than x1"),
        ("image,name,x1,y1,x2,y2\na,,0,0,1,1\n", 2, "name", "empty value"),
    ],
)
def test_parse_boxes_csv_bad_lines_name_the_line_and_column(text, line, column, match):
    with pytest.raises(RegionFormatError, match=match) as info:
        parse_boxes_csv(text)
    assert (info.value.line, info.value.column) == (line, column)


def test_a_quoted_line_break_does_not_shift_the_line_numbers():
    text = 'image,name,x1,y1,x2,y2\n"a","two\nlines",0,0,1,1\na,b,0,0,x,1\n'
    with pytest.raises(RegionFormatError) as info:
        parse_boxes_csv(text)
    assert (info.value.line, info.value.column) == (4, "x2")
    assert parse_boxes_csv(text.rsplit("\n", 2)[0] + "\n")["a"][0]["name"] == "two\nlines"
