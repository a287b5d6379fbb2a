"""The lab settings page and API: rename, the lab's own quality thresholds (checked, used by every
parse of its recordings, and by the re-grade of stored readings), and deleting the lab once its
name is typed. Admins only write; other members read; lab B gets 404."""

from __future__ import annotations

import io

import pytest

from apps.gaze import services as gaze
from apps.gaze.models import Reading, Recording
from apps.labs import services
from apps.labs.models import Lab
from ml.synthetic.writers import write_eyelink_asc
from tests.apps.gaze.conftest import ingest_phantoms, simulated
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

LABELS = ("CHF", "Pneumonia", "Normal")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(scope="module")
def phantoms():
    from ml.synthetic import make_phantom

    return [
        make_phantom(label, seed=i + 1, height=300, width=250) for i, label in enumerate(LABELS)
    ]


def parsed_recording(lab, user, phantoms, tmp_path) -> Recording:
    """An EyeLink recording of two phantoms (about 8 fixations each), uploaded and parsed in
    ``lab``."""
    ingest_phantoms(lab, user, phantoms, tmp_path)
    reader = gaze.reader_create(lab=lab, code=f"R{lab.pk}")
    session = gaze.reading_session_create(
        lab=lab, reader=reader, created_by=user, name="S1", screen_width_mm=531.0,
        screen_height_mm=299.0, viewing_distance_mm=650.0,
    )  # fmt: skip
    paths = write_eyelink_asc(simulated(phantoms[:2], 1000, n_fix=8), tmp_path / f"r{lab.pk}.asc")
    data = paths["asc"].read_bytes()
    [rec] = gaze.recording_upload(
        session=session, uploaded_by=user,
        uploads=[gaze.Upload(file=io.BytesIO(data), filename="r.asc", size=len(data))],
        enqueue=False,
    )  # fmt: skip
    rec = gaze.recording_parse(recording_id=rec.pk)
    assert rec.status == "done", rec.errors
    return rec


def grades(lab) -> list[str]:
    return list(Reading.objects.filter(lab=lab).order_by("id").values_list("grade", flat=True))


# --- Name and description -------------------------------------------------------------------------


def test_admin_renames_the_lab_with_errors_next_to_the_field(client, personas):
    client.force_login(personas.admin_a)
    page = client.get("/settings/").content.decode()
    assert (
        'id="lab-form"' in page and 'id="quality-form"' in page and 'id="delete-lab-form"' in page
    )
    assert 'href="/settings/"' in page  # the nav link, for admins
    lab = personas.lab_a.pk
    response = client.post("/settings/", {"lab": lab, "name": "Chest Lab", "description": "CXR"})
    assert response.status_code == 302 and response["Location"] == "/settings/"
    assert Lab.objects.values_list("name", "description").get(pk=lab) == ("Chest Lab", "CXR")
    blank = client.post("/settings/", {"lab": lab, "name": "   ", "description": ""})
    assert blank.status_code == 400 and 'id="id_name_error"' in blank.content.decode()
    assert Lab.objects.get(pk=lab).name == "Chest Lab"


def test_non_admins_read_the_settings_without_controls_and_get_403(client, personas):
    services.lab_update(
        lab=personas.lab_a, actor=personas.admin_a, quality_thresholds={"good_valid_pct": 95}
    )
    for persona in (personas.researcher_a, personas.viewer_a):
        client.force_login(persona)
        page = client.get("/settings/").content.decode()
        assert "<form" not in page.split('id="content"')[1].split("</main>")[0]
        assert 'href="/settings/"' not in page  # no nav link for non-admins
        assert "this lab (server: 90%)" in page and "95%" in page
        lab = personas.lab_a.pk
        posts = [
            ("/settings/", {"lab": lab, "name": "X"}),
            ("/settings/quality/", {"lab": lab, "good_valid_pct": "99"}),
            ("/settings/regrade/", {"lab": lab}),
            ("/settings/delete/", {"lab": lab, "confirm_name": "Lab A"}),
        ]
        for url, body in posts:
            assert client.post(url, body).status_code == 403, url
    lab = Lab.objects.get(pk=personas.lab_a.pk)
    assert lab.name == "Lab A" and lab.quality_thresholds == {"good_valid_pct": 95.0}


def test_lab_b_admin_gets_404_for_lab_a(client, personas):
    client.force_login(personas.admin_b)
    lab = personas.lab_a.pk
    assert client.post("/settings/", {"lab": lab, "name": "Mine"}).status_code == 404
    assert (
        client.post("/settings/delete/", {"lab": lab, "confirm_name": "Lab A"}).status_code == 404
    )
    assert client.post("/settings/quality/", {"lab": lab, "min_fixations": "5"}).status_code == 404
    assert client.post("/settings/regrade/", {"lab": "not-a-number"}).status_code == 404
    assert Lab.objects.get(pk=lab).name == "Lab A"
    assert "Lab A" not in client.get("/settings/").content.decode()


# --- Quality thresholds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"good_valid_pct": "101"}, "good_valid_pct", "from 0 to 100"),
        ({"usable_on_image_pct": "-1"}, "usable_on_image_pct", "from 0 to 100"),
        ({"good_error_deg": "0"}, "good_error_deg", "above 0"),
        ({"good_valid_pct": "60"}, "good_valid_pct", "at least the usable limit (70%)"),
        ({"usable_valid_pct": "95"}, "usable_valid_pct", "at most the good limit (90%)"),
        ({"good_error_deg": "2"}, "good_error_deg", "at most the usable limit (1°)"),
        ({"min_fixations": "1.5"}, "min_fixations", "whole number"),
        ({"good_valid_pct": "lots"}, "good_valid_pct", "Enter a number"),
    ],
)
def test_thresholds_are_checked_with_the_error_on_the_field(client, personas, body, field, message):
    client.force_login(personas.admin_a)
    response = client.post("/settings/quality/", {"lab": personas.lab_a.pk, **body})
    assert response.status_code == 400
    page = response.content.decode()
    assert f'id="id_{field}_error"' in page and message in page
    assert Lab.objects.get(pk=personas.lab_a.pk).quality_thresholds == {}


def test_thresholds_form_shows_server_defaults_and_empty_fields_take_them(client, personas):
    client.force_login(personas.admin_a)
    page = client.get("/settings/").content.decode()
    assert 'placeholder="90"' in page and 'placeholder="0.5"' in page
    assert "Empty: the server&#x27;s default, 90%." in page
    response = client.post(
        "/settings/quality/",
        {"lab": personas.lab_a.pk, "good_valid_pct": "95", "min_fixations": "3"},
    )
    assert (
        response.status_code == 302 and response["Location"] == "/settings/?changed=quality#regrade"
    )
    lab = Lab.objects.get(pk=personas.lab_a.pk)
    assert lab.quality_thresholds == {"good_valid_pct": 95.0, "min_fixations": 3}
    offer = client.get(response["Location"]).content.decode()
    assert 'id="regrade-offer"' in offer and 'value="95"' in offer
    # Emptied fields give the limits back to the server's defaults.
    client.post("/settings/quality/", {"lab": personas.lab_a.pk})
    lab.refresh_from_db()
    assert lab.quality_thresholds == {}
    assert services.lab_quality_thresholds(lab=lab) == services.quality_threshold_defaults()


def test_the_lab_thresholds_grade_its_parses_and_the_regrade(client, personas, phantoms, tmp_path):
    """A reading graded with the lab's thresholds differs from the server's default where they
    differ; the re-grade of stored readings gives what a parse with them gives."""
    rec = parsed_recording(personas.lab_a, personas.researcher_a, phantoms, tmp_path / "a")
    assert grades(personas.lab_a) == ["good", "good"]  # the server's defaults
    assert rec.quality["grade"] == "good"

    # Lab B asks for more fixations than a reading has: its parse grades the same data poor.
    services.lab_update(
        lab=personas.lab_b, actor=personas.admin_b, quality_thresholds={"min_fixations": 50}
    )
    parsed_recording(personas.lab_b, personas.admin_b, phantoms, tmp_path / "b")
    assert grades(personas.lab_b) == ["poor", "poor"]
    lab_b_reading = Reading.objects.filter(lab=personas.lab_b).first()
    n = lab_b_reading.quality["fixation_count"]
    assert n < 50 and f"{n} fixations: poor" in lab_b_reading.quality["reasons"]
    assert not lab_b_reading.use_for_training
    assert grades(personas.lab_a) == ["good", "good"]  # lab A is untouched

    # Lab A sets the same limit on its settings page and re-grades its stored readings.
    client.force_login(personas.admin_a)
    client.post("/settings/quality/", {"lab": personas.lab_a.pk, "min_fixations": "50"})
    assert grades(personas.lab_a) == ["good", "good"]  # kept until the re-grade
    response = client.post("/settings/regrade/", {"lab": personas.lab_a.pk})
    assert response.status_code == 302 and response["Location"] == "/settings/#regrade"
    assert grades(personas.lab_a) == ["poor", "poor"]
    regraded = Reading.objects.filter(lab=personas.lab_a).first()
    assert regraded.quality["reasons"] == lab_b_reading.quality["reasons"]
    assert not regraded.use_for_training  # its flag followed its grade
    assert Recording.objects.get(pk=rec.pk).quality["grade"] == "poor"
    page = client.get("/settings/").content.decode()
    assert "2 reading(s) graded again, 2 with another grade (good → poor: 2)" in page
    assert "2 reading(s) followed their new grade into or out of training" in page

    # Back to the defaults: a flag someone switched by hand stays as they chose.
    Reading.objects.filter(pk=regraded.pk).update(use_for_training=True)
    client.post("/settings/quality/", {"lab": personas.lab_a.pk})
    report = gaze.lab_readings_regrade(lab=personas.lab_a, actor=personas.admin_a)
    assert (report.readings, report.changed, report.training_changed) == (2, 2, 1)
    assert grades(personas.lab_a) == ["good", "good"]
    assert all(
        Reading.objects.filter(lab=personas.lab_a).values_list("use_for_training", flat=True)
    )


def test_thresholds_through_the_api(personas):
    url = f"/api/v1/labs/{personas.lab_a.pk}/"
    admin = client_for(personas.admin_a)
    body = admin.get(url).json()
    assert body["quality_thresholds"] == dict.fromkeys(services.QUALITY_THRESHOLD_FIELDS)
    assert body["quality_thresholds_effective"] == services.quality_threshold_defaults()

    response = admin.patch(url, {"quality_thresholds": {"good_error_deg": 0.3}}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["quality_thresholds"]["good_error_deg"] == 0.3
    # A PATCH changes the limits it names and keeps the others; null gives one back.
    admin.patch(url, {"quality_thresholds": {"min_fixations": 4}}, format="json")
    assert Lab.objects.get(pk=personas.lab_a.pk).quality_thresholds == {
        "good_error_deg": 0.3, "min_fixations": 4,
    }  # fmt: skip
    admin.patch(url, {"quality_thresholds": {"good_error_deg": None}}, format="json")
    assert Lab.objects.get(pk=personas.lab_a.pk).quality_thresholds == {"min_fixations": 4}

    bad = admin.patch(url, {"quality_thresholds": {"good_valid_pct": 50}}, format="json")
    assert bad.status_code == 400
    assert "quality_thresholds.good_valid_pct" in bad.json()["error"]["fields"]
    unknown = admin.patch(url, {"quality_thresholds": {"speed": 1}}, format="json")
    assert (
        unknown.status_code == 400
        and "quality_thresholds.speed" in unknown.json()["error"]["fields"]
    )

    viewer = client_for(personas.viewer_a)
    seen = viewer.get(url).json()
    assert seen["quality_thresholds"]["min_fixations"] == 4
    assert seen["quality_thresholds_effective"]["min_fixations"] == 4
    refused = viewer.patch(url, {"quality_thresholds": {"min_fixations": 1}}, format="json")
    assert refused.status_code == 403
    assert viewer.post(f"{url}regrade/").status_code == 403
    assert client_for(personas.admin_b).post(f"{url}regrade/").status_code == 404
    answer = admin.post(f"{url}regrade/")
    assert answer.status_code == 200 and answer.json()["readings"] == 0
    assert Lab.objects.get(pk=personas.lab_a.pk).quality_thresholds == {"min_fixations": 4}


@pytest.mark.parametrize(
    "plural, one",
    [("readers", "reader"), ("de-identification audit entries", "de-identification audit entry"),
     ("model aliases", "model alias"), ("upload batches", "upload batch"),
     ("label classes", "label class"), ("saliency maps", "saliency map")],
)  # fmt: skip
def test_one_of_a_kind_is_said_in_the_singular(plural, one):
    from apps.labs.services import _one

    assert _one(plural) == one


# --- Delete the lab -------------------------------------------------------------------------------


def test_delete_needs_the_lab_name_typed_and_says_what_goes(client, personas, phantoms, tmp_path):
    parsed_recording(personas.lab_a, personas.researcher_a, phantoms, tmp_path)
    client.force_login(personas.admin_a)
    page = client.get("/settings/").content.decode()
    for line in ("4 memberships", "3 images", "1 reader", "1 recording", "2 readings"):
        assert f"<li>{line}</li>" in page, line
    assert "Type “Lab A” to confirm" in page
    lab = personas.lab_a.pk
    for typed in ("lab a", "Lab B", ""):
        wrong = client.post("/settings/delete/", {"lab": lab, "confirm_name": typed})
        assert wrong.status_code == 400 and 'id="id_confirm_name_error"' in wrong.content.decode()
        assert Lab.objects.filter(pk=lab).exists()
    response = client.post("/settings/delete/", {"lab": lab, "confirm_name": " Lab A "})
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Lab.objects.filter(pk=lab).exists()
    assert not Reading.objects.filter(lab_id=lab).exists()
    home = client.get("/").content.decode()
    assert "Lab “Lab A” deleted with 4 memberships" in home and "2 readings" in home
    assert Lab.objects.filter(pk=personas.lab_b.pk).exists()
