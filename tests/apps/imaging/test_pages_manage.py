"""Pages that manage images: delete one (saying what goes with it), the class vocabulary (add,
rename, remove unless in use), and labels from a CSV with a preview that writes nothing before
an all-or-nothing apply. Viewers get no button and a 403; lab B gets a 404."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import DatasetSnapshot, SnapshotItem
from apps.gaze.models import Fixation, Reading, SaliencyMap
from apps.imaging import services, views
from apps.imaging.models import Image, ImageClass, ImageRegion
from tests.apps.gaze.objects import gaze_fixation
from tests.apps.imaging.dicoms import dicom_bytes, gradient

pytestmark = pytest.mark.django_db


def add(lab, user, key, label="", seed=0) -> Image:
    data = dicom_bytes(gradient(4, 4, seed=seed))
    return services.image_ingest(
        lab=lab, uploaded_by=user, file=io.BytesIO(data), filename=f"{key}.dcm", size=len(data),
        label=label,
    ).image  # fmt: skip


def csv_file(text: str, name: str = "master_sheet.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def labels(lab) -> dict[str, str]:
    return dict(Image.objects.filter(lab=lab).values_list("key", "label"))


# --- Delete an image ----------------------------------------------------------------------------


def test_image_page_counts_what_goes_with_the_image_and_delete_takes_it(
    client, personas, django_capture_on_commit_callbacks
):
    image = add(personas.lab_a, personas.researcher_a, "k1", "CHF", seed=1)
    fixation = gaze_fixation(personas.lab_a, image)
    Fixation.objects.create(
        lab=personas.lab_a, reading=fixation.reading, index=1, start_ms=300.0, duration_ms=150.0,
        x=2.0, y=2.0, on_image=True, source="vendor",
    )  # fmt: skip
    services.regions_import(
        lab=personas.lab_a, actor=personas.researcher_a, fmt="boxes",
        text="image,name,x1,y1,x2,y2\nk1,heart,0,0,2,2\n",
    )  # fmt: skip
    snapshot = DatasetSnapshot.objects.create(lab=personas.lab_a, name="frozen", status="ready")
    SnapshotItem.objects.create(
        snapshot=snapshot, image=image, key="k1", label="CHF", label_index=1, split="train"
    )
    client.force_login(personas.researcher_a)
    page = client.get(f"/images/{image.pk}/").content.decode()
    assert 'id="delete-card"' in page
    assert "1 reading (in 1 recording" in page and "2 fixations" in page
    assert "0 saliency maps" in page and "1 region<" in page
    assert "1 dataset snapshot holds it: it keeps its frozen copy" in page
    assert (
        'data-confirm="Delete image k1 with its 1 reading, 2 fixations, 0 saliency maps and '
        '1 region? 1 dataset snapshot keeps its frozen copy. This cannot be undone."'
    ) in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/images/{image.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/images/"
    assert not Image.objects.filter(pk=image.pk).exists()
    assert not Reading.objects.exists() and not Fixation.objects.exists()
    assert not ImageRegion.objects.exists() and not SaliencyMap.objects.exists()
    assert SnapshotItem.objects.get().image is None  # the snapshot keeps its frozen copy
    assert "Image “k1” deleted." in client.get("/images/").content.decode()


def test_a_refused_delete_shows_the_reason_on_the_image_page(client, personas, monkeypatch):
    from django.core.exceptions import ValidationError

    image = add(personas.lab_a, personas.researcher_a, "k1")

    def refuse(**kwargs):
        raise ValidationError("A training job reads this image right now; wait for it.")

    monkeypatch.setattr(services, "image_delete", refuse)
    client.force_login(personas.researcher_a)
    response = client.post(f"/images/{image.pk}/delete/")
    assert response.status_code == 400
    assert 'id="delete-error"' in response.content.decode()
    assert "A training job reads this image right now" in response.content.decode()
    assert Image.objects.filter(pk=image.pk).exists()


def test_viewers_see_no_delete_and_get_403_and_lab_b_gets_404(client, personas):
    image = add(personas.lab_a, personas.researcher_a, "k1")
    client.force_login(personas.viewer_a)
    page = client.get(f"/images/{image.pk}/").content.decode()
    assert 'id="delete-card"' not in page and "/delete/" not in page
    assert client.post(f"/images/{image.pk}/delete/").status_code == 403
    assert client.get(f"/images/{image.pk}/delete/").status_code == 405
    client.force_login(personas.admin_b)
    assert client.post(f"/images/{image.pk}/delete/").status_code == 404
    assert Image.objects.filter(pk=image.pk).exists()


# --- The class vocabulary -----------------------------------------------------------------------


def test_classes_page_adds_renames_and_removes(client, personas):
    add(personas.lab_a, personas.researcher_a, "k1", "CHF", seed=1)
    add(personas.lab_a, personas.researcher_a, "k2", "CHF", seed=2)
    client.force_login(personas.researcher_a)
    page = client.get("/images/classes/").content.decode()
    assert 'id="class-table"' in page and 'id="class-add-form"' in page
    assert 'data-class="CHF"' in page and "relabel its 2 images to remove it" in page

    lab = personas.lab_a.pk
    response = client.post("/images/classes/", {"lab": lab, "name": "  Effusion "})
    assert response.status_code == 302
    effusion = ImageClass.objects.get(lab=personas.lab_a, name="Effusion")

    # A name taken (in any case) is an error next to the field; nothing is added.
    taken = client.post("/images/classes/", {"lab": lab, "name": "chf"})
    assert taken.status_code == 400
    assert 'id="id_name_error"' in taken.content.decode() and "already" in taken.content.decode()
    assert ImageClass.objects.filter(lab=personas.lab_a).count() == 4

    chf = ImageClass.objects.get(lab=personas.lab_a, name="CHF")
    renamed = client.post(f"/images/classes/{chf.pk}/rename/", {f"c{chf.pk}-name": "Heart failure"})
    assert renamed.status_code == 302
    assert labels(personas.lab_a) == {"k1": "Heart failure", "k2": "Heart failure"}
    clash = client.post(f"/images/classes/{chf.pk}/rename/", {f"c{chf.pk}-name": "normal"})
    assert clash.status_code == 400
    text = clash.content.decode()
    assert f'id="id_c{chf.pk}-name_error"' in text and "has a class named" in text
    assert ImageClass.objects.get(pk=chf.pk).name == "Heart failure"

    assert client.post(f"/images/classes/{effusion.pk}/delete/").status_code == 302
    assert not ImageClass.objects.filter(pk=effusion.pk).exists()


def test_removing_a_class_in_use_is_refused_with_the_reason(client, personas):
    add(personas.lab_a, personas.researcher_a, "k1", "Pneumonia")
    pneumonia = ImageClass.objects.get(lab=personas.lab_a, name="Pneumonia")
    client.force_login(personas.admin_a)
    response = client.post(f"/images/classes/{pneumonia.pk}/delete/")
    assert response.status_code == 400
    assert f'id="class-error-{pneumonia.pk}"' in response.content.decode()
    assert "1 image(s) carry the label" in response.content.decode()
    assert ImageClass.objects.filter(pk=pneumonia.pk).exists()


def test_class_pages_refuse_viewers_and_lab_b(client, personas):
    chf = ImageClass.objects.get(lab=personas.lab_a, name="CHF")
    client.force_login(personas.viewer_a)
    page = client.get("/images/classes/").content.decode()
    assert 'data-class="CHF"' in page
    assert "<button" not in page.split('id="content"')[1]  # no button of any kind for viewers
    assert (
        client.post("/images/classes/", {"lab": personas.lab_a.pk, "name": "X"}).status_code == 403
    )
    assert (
        client.post(f"/images/classes/{chf.pk}/rename/", {f"c{chf.pk}-name": "Y"}).status_code
        == 403
    )
    assert client.post(f"/images/classes/{chf.pk}/delete/").status_code == 403
    client.force_login(personas.admin_b)
    assert (
        client.post(f"/images/classes/{chf.pk}/rename/", {f"c{chf.pk}-name": "Y"}).status_code
        == 404
    )
    assert client.post(f"/images/classes/{chf.pk}/delete/").status_code == 404
    assert ImageClass.objects.get(pk=chf.pk).name == "CHF"
    assert ImageClass.objects.filter(lab=personas.lab_a).count() == 3


def test_class_rename_through_the_api(personas):
    from tests.conftest import client_for

    add(personas.lab_a, personas.researcher_a, "k1", "CHF")
    chf = ImageClass.objects.get(lab=personas.lab_a, name="CHF")
    url = f"/api/v1/image-classes/{chf.pk}/"
    assert client_for(personas.viewer_a).patch(url, {"name": "X"}, format="json").status_code == 403
    assert client_for(personas.admin_b).patch(url, {"name": "X"}, format="json").status_code == 404
    response = client_for(personas.researcher_a).patch(url, {"name": "Cardiac"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Cardiac"
    assert labels(personas.lab_a) == {"k1": "Cardiac"}


# --- Labels from a CSV --------------------------------------------------------------------------

SHEET = (
    "dicom_id,path,Normal,CHF,pneumonia,consolidation\n"
    "k1,files/k1.dcm,1,0,0,0\n"
    "k2,files/k2.dcm,0,0,1,1\n"
    "k3,files/k3.dcm,0,1,0,0\n"
    "not-uploaded,files/x.dcm,1,0,0,0\n"
)


def three_images(personas):
    add(personas.lab_a, personas.researcher_a, "k1", "CHF", seed=1)
    add(personas.lab_a, personas.researcher_a, "k2", "", seed=2)
    add(personas.lab_a, personas.researcher_a, "k3", "CHF", seed=3)


def test_preview_shows_the_changes_and_writes_nothing_then_apply_writes_all(client, personas):
    three_images(personas)
    client.force_login(personas.researcher_a)
    assert 'id="labels-form"' in client.get("/images/labels/").content.decode()
    before = labels(personas.lab_a)
    response = client.post(
        "/images/labels/",
        {"lab": personas.lab_a.pk, "file": csv_file(SHEET), "findings": "consolidation"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert labels(personas.lab_a) == before  # the preview writes nothing
    assert Image.objects.get(key="k2").findings == {}
    assert 'id="preview-rows">4<' in page and 'id="preview-changes">3<' in page
    assert 'id="preview-unchanged">0<' in page and 'id="preview-unknown">1<' in page
    plan = response.context["plan"]
    # k3 keeps its label; its consolidation flag is set (to no), so it changes too.
    assert [(c.key, c.old_label, c.new_label, c.line) for c in plan.changes] == [
        ("k1", "CHF", "Normal", 2),
        ("k2", "", "Pneumonia", 3),
        ("k3", "CHF", "CHF", 4),
    ]
    assert '<tr data-key="k1">' in page and "consolidation: unset → yes" in page
    assert "not-uploaded" in page and 'id="apply-form"' in page
    token = response.context["apply_form"]["token"].value()

    applied = client.post("/images/labels/apply/", {"token": token, "action": "apply"})
    assert applied.status_code == 302 and applied["Location"] == "/images/"
    assert labels(personas.lab_a) == {"k1": "Normal", "k2": "Pneumonia", "k3": "CHF"}
    assert Image.objects.get(key="k2").findings == {"consolidation": True}
    assert Image.objects.get(key="k3").findings == {"consolidation": False}
    library = client.get("/images/").content.decode()
    assert "3 image(s) changed, 0 unchanged, 1 key(s) naming no image" in library

    # Without finding columns, the same sheet over these images changes nothing.
    response = client.post("/images/labels/", {"lab": personas.lab_a.pk, "file": csv_file(SHEET)})
    page = response.content.decode()
    assert 'id="preview-changes">0<' in page and 'id="nothing-to-change"' in page
    assert 'id="preview-unchanged">3<' in page and 'value="apply"' not in page
    # Applied once: the stored sheet is gone, a second apply changes nothing.
    again = client.post("/images/labels/apply/", {"token": "x" * 22, "action": "apply"})
    assert again.status_code == 400 and "upload the sheet again" in again.content.decode()


def test_apply_refuses_when_the_images_changed_since_the_preview(client, personas):
    three_images(personas)
    client.force_login(personas.researcher_a)
    preview = client.post("/images/labels/", {"lab": personas.lab_a.pk, "file": csv_file(SHEET)})
    token = preview.context["apply_form"]["token"].value()
    k3 = Image.objects.get(key="k3")
    services.image_update(image=k3, actor=personas.admin_a, label="Normal")  # meanwhile
    response = client.post("/images/labels/apply/", {"token": token, "action": "apply"})
    assert response.status_code == 409 and 'id="changed-since"' in response.content.decode()
    assert labels(personas.lab_a) == {"k1": "CHF", "k2": "", "k3": "Normal"}  # nothing written
    assert 'id="preview-changes">3<' in response.content.decode()
    # The new preview can be applied as it stands.
    response = client.post("/images/labels/apply/", {"token": token, "action": "apply"})
    assert response.status_code == 302
    assert labels(personas.lab_a) == {"k1": "Normal", "k2": "Pneumonia", "k3": "CHF"}


def test_cancel_forgets_the_sheet(client, personas):
    three_images(personas)
    client.force_login(personas.researcher_a)
    preview = client.post("/images/labels/", {"lab": personas.lab_a.pk, "file": csv_file(SHEET)})
    token = preview.context["apply_form"]["token"].value()
    assert views.LABELS_SESSION_KEY in client.session
    response = client.post("/images/labels/apply/", {"token": token, "action": "cancel"})
    assert response.status_code == 302 and views.LABELS_SESSION_KEY not in client.session
    assert client.post("/images/labels/apply/", {"token": token}).status_code == 400
    assert labels(personas.lab_a) == {"k1": "CHF", "k2": "", "k3": "CHF"}


@pytest.mark.parametrize(
    ("sheet", "expected"),
    [
        ("dicom_id,Normal,CHF,pneumonia\nk1,1,0,0\nk2,1,maybe,0\n",
         "master_sheet.csv: line 3, column &#x27;CHF&#x27;: &#x27;maybe&#x27; is not 0 or 1"),
        ("key,label\nk1,Normal\nk2,Fracture\n",
         "line 3, column &#x27;label&#x27;: &#x27;Fracture&#x27; is not a class of Lab A"),
        ("key,label\nk1,Normal\n,CHF\n", "line 3, column &#x27;key&#x27;: no key"),
        ("dicom_id,Normal,CHF\nk1,1,1\n", "line 2: more than one class is set (Normal, CHF)"),
        ("name,label\nk1,Normal\n", "needs a &#x27;key&#x27; or &#x27;dicom_id&#x27; column"),
    ],
)  # fmt: skip
def test_a_bad_line_names_line_and_column_and_nothing_is_written(client, personas, sheet, expected):
    three_images(personas)
    client.force_login(personas.researcher_a)
    response = client.post("/images/labels/", {"lab": personas.lab_a.pk, "file": csv_file(sheet)})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_file_error"' in page and expected in page
    assert labels(personas.lab_a) == {"k1": "CHF", "k2": "", "k3": "CHF"}
    assert views.LABELS_SESSION_KEY not in client.session


def test_label_import_input_that_is_not_a_sheet_is_a_400_not_a_500(client, personas, monkeypatch):
    three_images(personas)
    client.force_login(personas.researcher_a)
    lab = personas.lab_a.pk
    binary = SimpleUploadedFile("x.csv", b"key,label\n\xff\xfe\x00,x\n")
    assert (
        "not UTF-8" in client.post("/images/labels/", {"lab": lab, "file": binary}).content.decode()
    )
    assert client.post("/images/labels/", {"lab": lab}).status_code == 400  # no file
    missing = client.post(
        "/images/labels/", {"lab": lab, "file": csv_file(SHEET), "findings": "effusion"}
    )
    assert missing.status_code == 400 and "has no column" in missing.content.decode()
    monkeypatch.setattr(views, "LABELS_PREVIEW_MAX_BYTES", 10)
    big = client.post("/images/labels/", {"lab": lab, "file": csv_file(SHEET)})
    assert big.status_code == 400 and "larger than" in big.content.decode()
    # A lab switched in another tab: the form says so and nothing is previewed.
    switched = client.post("/images/labels/", {"lab": personas.lab_b.pk, "file": csv_file(SHEET)})
    assert (
        switched.status_code == 400 and "The current lab is now Lab A" in switched.content.decode()
    )
    assert labels(personas.lab_a) == {"k1": "CHF", "k2": "", "k3": "CHF"}


def test_label_import_refuses_viewers_and_shows_them_no_form(client, personas):
    three_images(personas)
    client.force_login(personas.viewer_a)
    page = client.get("/images/labels/").content.decode()
    assert 'id="labels-refused"' in page and 'id="labels-form"' not in page
    library = client.get("/images/").content.decode()
    assert "Import labels" not in library and "/images/labels/" not in library
    response = client.post("/images/labels/", {"lab": personas.lab_a.pk, "file": csv_file(SHEET)})
    assert response.status_code == 403
    assert client.post("/images/labels/apply/", {"token": "x"}).status_code == 403
    assert labels(personas.lab_a) == {"k1": "CHF", "k2": "", "k3": "CHF"}


def test_a_preview_of_lab_a_cannot_be_applied_in_lab_b(client, personas):
    from apps.labs.models import Membership

    three_images(personas)
    Membership.objects.create(user=personas.researcher_a, lab=personas.lab_b, role="researcher")
    client.force_login(personas.researcher_a)
    preview = client.post("/images/labels/", {"lab": personas.lab_a.pk, "file": csv_file(SHEET)})
    token = preview.context["apply_form"]["token"].value()
    client.post("/labs/switch/", {"lab": personas.lab_b.pk})
    response = client.post("/images/labels/apply/", {"token": token, "action": "apply"})
    assert response.status_code == 400 and "upload the sheet again" in response.content.decode()
    assert labels(personas.lab_a) == {"k1": "CHF", "k2": "", "k3": "CHF"}


def test_the_api_dry_run_writes_nothing_and_lists_the_changes(personas):
    from tests.conftest import client_for

    three_images(personas)
    response = client_for(personas.researcher_a).post(
        "/api/v1/images/labels/",
        {"lab": personas.lab_a.pk, "file": csv_file(SHEET), "dry_run": "true"},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["rows"], body["updated"], body["unchanged"], body["dry_run"]) == (4, 2, 1, True)
    assert [(c["key"], c["old_label"], c["new_label"], c["line"]) for c in body["changes"]] == [
        ("k1", "CHF", "Normal", 2),
        ("k2", "", "Pneumonia", 3),
    ]
    assert labels(personas.lab_a) == {"k1": "CHF", "k2": "", "k3": "CHF"}


def test_preview_plan_matches_the_import(personas):
    """The preview service and the import share parse and plan: same sheet, same outcome."""
    three_images(personas)
    plan = services.image_labels_preview_csv(
        lab=personas.lab_a, actor=personas.researcher_a, file=io.BytesIO(SHEET.encode()),
        filename="s.csv",
    )  # fmt: skip
    report = services.image_labels_import_csv(
        lab=personas.lab_a, actor=personas.researcher_a, file=io.BytesIO(SHEET.encode()),
        filename="s.csv", expected_digest=plan.digest,
    )  # fmt: skip
    assert (report.updated, report.unchanged, report.unknown_keys) == (
        len(plan.changes), plan.unchanged, plan.unknown_keys,
    )  # fmt: skip
    with pytest.raises(Exception, match="Your role"):
        services.image_labels_preview_csv(
            lab=personas.lab_a, actor=personas.viewer_a, file=io.BytesIO(SHEET.encode()),
            filename="s.csv",
        )  # fmt: skip


def test_a_class_removed_between_preview_and_apply_writes_nothing(client, personas):
    three_images(personas)
    client.force_login(personas.researcher_a)
    client.post("/images/classes/", {"lab": personas.lab_a.pk, "name": "Effusion"})
    sheet = "key,label\nk1,effusion\nk1,Effusion\nk2,Normal\n"
    preview = client.post("/images/labels/", {"lab": personas.lab_a.pk, "file": csv_file(sheet)})
    assert preview.status_code == 200
    assert (
        'id="repeated-keys"' in preview.content.decode()
        and "lines 2, 3" in preview.content.decode()
    )
    token = preview.context["apply_form"]["token"].value()
    effusion = ImageClass.objects.get(lab=personas.lab_a, name="Effusion")
    assert client.post(f"/images/classes/{effusion.pk}/delete/").status_code == 302
    response = client.post("/images/labels/apply/", {"token": token, "action": "apply"})
    assert response.status_code == 400 and 'id="labels-problems"' in response.content.decode()
    assert "line 3, column &#x27;label&#x27;: &#x27;Effusion&#x27; is not a class" in (
        response.content.decode()
    )
    assert labels(personas.lab_a) == {"k1": "CHF", "k2": "", "k3": "CHF"}


def test_the_label_form_posts_without_javascript(client, personas):
    image = add(personas.lab_a, personas.researcher_a, "k1")
    client.force_login(personas.researcher_a)
    page = client.get(f"/images/{image.pk}/").content.decode()
    assert f'method="post" action="/images/{image.pk}/label/"' in page
    response = client.post(f"/images/{image.pk}/label/", {"label": "pneumonia"})
    assert response.status_code == 302 and response["Location"] == f"/images/{image.pk}/"
    assert Image.objects.get(pk=image.pk).label == "Pneumonia"
    refused = client.post(f"/images/{image.pk}/label/", {"label": "Fracture"}, follow=True)
    assert "is not a class of Lab A" in refused.content.decode()
    assert Image.objects.get(pk=image.pk).label == "Pneumonia"
    client.force_login(personas.viewer_a)
    assert client.post(f"/images/{image.pk}/label/", {"label": ""}).status_code == 403
    client.force_login(personas.admin_b)
    assert client.post(f"/images/{image.pk}/label/", {"label": ""}).status_code == 404
    assert Image.objects.get(pk=image.pk).label == "Pneumonia"
