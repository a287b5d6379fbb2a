"""Image regions: import of each format (EGD-CXR boxes, REFLACX ellipses, the boxes CSV) from
small hand-written texts, refusals naming line and column with nothing stored, unknown keys,
replace semantics, phantom masks, tenancy and roles."""

from __future__ import annotations

import io

import numpy as np
import pytest

from apps.core import storage
from apps.imaging import services
from apps.imaging.models import ImageRegion
from apps.imaging.services import regions as region_services
from ml.synthetic import make_phantom
from tests.apps.datasets.objects import add_image
from tests.apps.imaging.conftest import as_upload
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/image-regions/"
IMPORT = f"{URL}import/"

# Images are 60 rows x 50 columns: x in [0, 50], y in [0, 60].
EGD = (
    "dicom_id,bbox_name,x1,x2,y1,y2\n"
    "img-a,right upper lung zone,2.0,20.33879000000000004,5,25\n"
    "img-b,cardiac silhouette,10,40,30,55\n"
    "img-a,left upper lung zone,25,48,5,25.5\n"
)
REFLACX = (
    "xmin,ymin,xmax,ymax,certainty,Atelectasis,Consolidation,Pleural effusion\n"
    "10,20,30,40,4,True,False,True\n"
    "-5,50,20,70,2,False,False,False\n"
)
BOXES = "image,name,x1,y1,x2,y2,kind\nimg-a,nodule,1,2,3,4,\nimg-b,mass,5,6,15,16,ellipse\n"


@pytest.fixture
def images(personas):
    lab, user = personas.lab_a, personas.researcher_a
    return {
        key: add_image(lab, user, key, "CHF", size=(60, 50), seed=i)
        for i, key in enumerate(("img-a", "img-b"))
    }


def post(user, lab, text: str | bytes, fmt: str, name="regions.csv", **fields):
    data = text.encode() if isinstance(text, str) else text
    body = {"lab": lab.pk, "format": fmt, "file": as_upload(name, data, "text/csv"), **fields}
    return client_for(user).post(IMPORT, body, format="multipart")


def listed(user, image) -> list[dict]:
    answer = client_for(user).get(URL, {"image": image.pk, "page_size": 500})
    assert answer.status_code == 200, answer.json()
    return answer.json()["results"]


def coords(row) -> tuple:
    return (row["x1"], row["y1"], row["x2"], row["y2"])


def test_egd_bounding_boxes_are_stored_per_image_with_x_and_y_in_their_columns(personas, images):
    answer = post(personas.researcher_a, personas.lab_a, EGD, "egd")
    assert answer.status_code == 200, answer.json()
    assert answer.json() == {"source": "egd", "group": "", "images": 2, "regions": 3,
                             "replaced": 0, "skipped_keys": []}  # fmt: skip
    rows = listed(personas.viewer_a, images["img-a"])
    assert [(r["name"], r["kind"], r["source"], r["image_key"]) for r in rows] == [
        ("right upper lung zone", "box", "egd", "img-a"),
        ("left upper lung zone", "box", "egd", "img-a"),
    ]
    assert coords(rows[0]) == (2.0, 5.0, 20.33879000000000004, 25.0)
    assert coords(rows[1]) == (25.0, 5.0, 48.0, 25.5)
    [heart] = listed(personas.viewer_a, images["img-b"])
    assert coords(heart) == (10.0, 30.0, 40.0, 55.0)
    detail = client_for(personas.viewer_a).get(f"{URL}{heart['id']}/")
    assert detail.status_code == 200 and detail.json() == heart


def test_reflacx_ellipses_need_the_images_key_and_keep_certainty_and_findings(personas, images):
    missing = post(personas.researcher_a, personas.lab_a, REFLACX, "reflacx")
    assert missing.status_code == 400
    assert "key" in missing.json()["error"]["fields"]
    answer = post(personas.researcher_a, personas.lab_a, REFLACX, "reflacx", key="img-b",
                  group="P102R108387")  # fmt: skip
    assert answer.status_code == 200, answer.json()
    assert answer.json()["regions"] == 2 and answer.json()["group"] == "P102R108387"
    rows = listed(personas.researcher_a, images["img-b"])
    assert [(r["name"], r["kind"], r["group"]) for r in rows] == [
        ("Atelectasis+Pleural effusion", "ellipse", "P102R108387"),
        ("anomaly", "ellipse", "P102R108387"),
    ]
    assert rows[0]["attributes"] == {"certainty": 4.0,
                                     "findings": ["Atelectasis", "Pleural effusion"]}  # fmt: skip
    # An ellipse may pass the image's edge (the second), as long as it overlaps the image.
    assert coords(rows[1]) == (-5.0, 50.0, 20.0, 70.0)
    # A second reader's file of the same image, in its own group, keeps the first's.
    other = post(personas.researcher_a, personas.lab_a, REFLACX, "reflacx", key="img-b",
                 group="P102R915840")  # fmt: skip
    assert other.status_code == 200 and other.json()["replaced"] == 0
    assert len(listed(personas.researcher_a, images["img-b"])) == 4


def test_an_ellipse_wholly_off_the_image_is_refused(personas, images):
    text = "xmin,ymin,xmax,ymax,certainty,Edema\n10,10,20,20,3,True\n60,10,70,20,3,True\n"
    answer = post(personas.researcher_a, personas.lab_a, text, "reflacx", key="img-a")
    assert answer.status_code == 400
    assert "line 3, column 'xmin'" in answer.json()["error"]["message"]
    assert not ImageRegion.objects.exists()


def test_boxes_csv_with_kinds_through_the_service(personas, images):
    report = services.regions_import(lab=personas.lab_a, actor=personas.researcher_a,
                                     fmt="boxes", text=BOXES)  # fmt: skip
    assert (report.images, report.regions) == (2, 2)
    rows = {r.name: r for r in ImageRegion.objects.all()}
    assert rows["nodule"].kind == "box" and rows["nodule"].image == images["img-a"]
    assert rows["mass"].kind == "ellipse" and (rows["mass"].x1, rows["mass"].y2) == (5.0, 16.0)
    assert [r.name for r in services.regions_for_image(image=images["img-b"])] == ["mass"]


@pytest.mark.parametrize(
    ("fmt", "text", "where"),
    [
        # a cell that is no number
        ("boxes", "image,name,x1,y1,x2,y2\nimg-a,a,1,2,3,4\nimg-a,b,1,2,abc,4\n",
         "line 3, column 'x2'"),
        # a box past the image's width (50), the bad row after a good one of another image
        ("egd", "dicom_id,bbox_name,x1,x2,y1,y2\nimg-b,a,1,2,3,4\nimg-a,b,1,51,3,4\n",
         "line 3, column 'x2'"),
        # the second box of img-a (line 4, after a row of img-b) is above the image
        ("egd", EGD.replace("25,48,5,25.5", "25,48,-1,25.5"), "line 4, column 'y1'"),
        # past the height (60), a header in other case and order, and a blank line
        ("boxes", "Y2,X1,Key,Name,Y1,X2\n\n61,1,img-a,a,2,3\n", "line 3, column 'Y2'"),
        # x2 before x1
        ("egd", "dicom_id,bbox_name,x1,x2,y1,y2\nimg-a,a,5,4,1,2\n", "line 2, column 'x2'"),
        # a missing header column
        ("boxes", "image,name,x1,y1,x2\nimg-a,a,1,2,3\n", "line 1, column 'y2'"),
        ("reflacx", "xmin,ymin,xmax,ymax,certainty,Edema\n1,2,3,4,5,maybe\n",
         "line 2, column 'Edema'"),
        ("egd", "", "line 1"),
    ],
)  # fmt: skip
def test_a_bad_line_is_a_400_naming_line_and_column_and_stores_nothing(personas, images, fmt,
                                                                       text, where):  # fmt: skip
    services.regions_import(lab=personas.lab_a, actor=personas.researcher_a, fmt="boxes",
                            text="image,name,x1,y1,x2,y2\nimg-a,kept,0,0,1,1\n")  # fmt: skip
    extra = {"key": "img-a"} if fmt == "reflacx" else {}
    answer = post(personas.researcher_a, personas.lab_a, text, fmt, name="bad.csv", **extra)
    assert answer.status_code == 400, answer.json()
    error = answer.json()["error"]
    assert error["code"] == "invalid" and where in error["message"], error
    assert error["message"].startswith("file: bad.csv: ")
    assert list(ImageRegion.objects.values_list("name", flat=True)) == ["kept"]


def test_unknown_keys_are_a_400_listing_the_first_few_unless_skipped(personas, images):
    keys = ["img-a", *(f"ghost-{i}" for i in range(7))]
    text = "image,name,x1,y1,x2,y2\n" + "".join(f"{k},r,1,1,2,2\n" for k in keys)
    answer = post(personas.researcher_a, personas.lab_a, text, "boxes")
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert "7 key(s) name no image" in message and "'ghost-0'" in message
    assert "'ghost-4'" in message and "'ghost-5'" not in message and "and 2 more" in message
    assert not ImageRegion.objects.exists()
    skipped = post(personas.researcher_a, personas.lab_a, text, "boxes", skip_unknown="true")
    assert skipped.status_code == 200, skipped.json()
    assert skipped.json()["skipped_keys"] == keys[1:] and skipped.json()["regions"] == 1
    # Keys are the lab's own: lab B's import of lab A's keys names no image.
    theirs = post(personas.admin_b, personas.lab_b, EGD, "egd")
    assert theirs.status_code == 400 and "name no image" in theirs.json()["error"]["message"]


def test_an_import_replaces_its_sources_regions_of_the_images_it_names(personas, images):
    lab, user = personas.lab_a, personas.researcher_a
    assert post(user, lab, EGD, "egd").status_code == 200
    assert post(user, lab, BOXES, "boxes").status_code == 200
    again = "dicom_id,bbox_name,x1,x2,y1,y2\nimg-a,trachea,20,30,0,10\n"
    answer = post(user, lab, again, "egd")
    assert answer.status_code == 200
    assert answer.json() == {"source": "egd", "group": "", "images": 1, "regions": 1,
                             "replaced": 2, "skipped_keys": []}  # fmt: skip
    names = {(r["source"], r["name"]) for r in listed(user, images["img-a"])}
    assert names == {("egd", "trachea"), ("boxes", "nodule")}  # img-a's boxes stay
    names_b = {(r["source"], r["name"]) for r in listed(user, images["img-b"])}
    assert names_b == {("egd", "cardiac silhouette"), ("boxes", "mass")}  # not named: kept


def test_roles_tenancy_and_delete(personas, images):
    lab = personas.lab_a
    viewer = post(personas.viewer_a, lab, EGD, "egd")
    assert viewer.status_code == 403 and viewer.json()["error"]["code"] == "permission_denied"
    assert not ImageRegion.objects.exists()
    assert post(personas.researcher_a, lab, EGD, "egd").status_code == 200
    region = ImageRegion.objects.first()
    outsider = client_for(personas.admin_b)
    assert outsider.get(f"{URL}{region.pk}/").status_code == 404
    assert outsider.delete(f"{URL}{region.pk}/").status_code == 404
    assert outsider.get(URL, {"image": images["img-a"].pk}).json()["results"] == []
    into_a = post(personas.admin_b, lab, EGD, "egd")
    assert into_a.status_code == 400 and "lab" in into_a.json()["error"]["fields"]
    assert client_for(personas.viewer_a).delete(f"{URL}{region.pk}/").status_code == 403
    assert client_for(personas.researcher_a).delete(f"{URL}{region.pk}/").status_code == 204
    assert ImageRegion.objects.count() == 2


def test_bad_requests_are_400s(personas, images):
    user, lab = personas.researcher_a, personas.lab_a
    assert post(user, lab, EGD, "dicom").json()["error"]["fields"].keys() == {"format"}
    assert post(user, lab, EGD, "egd", key="img-a").json()["error"]["fields"].keys() == {"key"}
    latin = post(user, lab, "image,name,x1,y1,x2,y2\nimg-a,caf\xe9,1,1,2,2\n".encode("latin-1"),
                 "boxes")  # fmt: skip
    assert latin.status_code == 400 and "not UTF-8" in latin.json()["error"]["message"]
    nul = post(user, lab, "image,name,x1,y1,x2,y2\nimg-a,a\x00b,1,1,2,2\n", "boxes")
    assert nul.status_code == 400 and "line 2: a NUL" in nul.json()["error"]["message"]
    long_name = "image,name,x1,y1,x2,y2\nimg-a," + "n" * 201 + ",1,1,2,2\n"
    answer = post(user, lab, long_name, "boxes")
    assert answer.status_code == 400
    assert "line 2, column 'name'" in answer.json()["error"]["message"]
    assert not ImageRegion.objects.exists()


def test_a_file_over_the_limit_is_a_413(personas, images, monkeypatch):
    from apps.imaging import api_regions

    monkeypatch.setattr(api_regions, "REGIONS_MAX_BYTES", 20)
    answer = post(personas.researcher_a, personas.lab_a, EGD, "egd", name="big.csv")
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "too_large"
    assert "big.csv" in answer.json()["error"]["message"]
    monkeypatch.setattr(region_services, "REGIONS_MAX_BYTES", 20)
    with pytest.raises(services.RegionsTooLarge):
        services.regions_import(lab=personas.lab_a, actor=personas.researcher_a, fmt="egd",
                                file=io.BytesIO(EGD.encode()))  # fmt: skip
    assert not ImageRegion.objects.exists()


def test_phantom_masks_are_stored_read_back_and_go_with_their_rows(
    personas, django_capture_on_commit_callbacks
):
    phantom = make_phantom("CHF", seed=3, height=80, width=64)
    image = add_image(personas.lab_a, personas.researcher_a, "phantom-1", "CHF", size=(80, 64))
    rows = services.phantom_regions_store(image=image, phantom=phantom)
    names = [r.name for r in rows]
    assert names[:4] == ["right_lung", "left_lung", "heart", "mediastinum"]
    for row in rows:
        mask = services.region_mask(row)
        np.testing.assert_array_equal(mask, phantom.masks[row.name])
        ys, xs = np.nonzero(mask)
        assert (row.x1, row.y1, row.x2, row.y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    again = services.phantom_regions_store(image=image, phantom=phantom)  # replaces, same files
    assert ImageRegion.objects.filter(image=image).count() == len(again) == len(rows)
    assert all(storage.read_bytes(r.mask_name) for r in again)
    with django_capture_on_commit_callbacks(execute=True):
        services.image_delete(image=image, actor=personas.researcher_a)
    assert not ImageRegion.objects.exists()
    for row in again:
        with pytest.raises(storage.StorageError):
            storage.read_bytes(row.mask_name)
    wrong = add_image(personas.lab_a, personas.researcher_a, "phantom-2", "CHF", size=(60, 50))
    with pytest.raises(ValueError, match="the image"):
        services.phantom_regions_store(image=wrong, phantom=phantom)
