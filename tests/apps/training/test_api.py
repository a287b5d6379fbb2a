"""The training and registry API: create (202), validation (400 naming the field), tenancy of
snapshots, status, cancel, checkpoint download, aliases."""

from __future__ import annotations

import pytest

from apps.core import storage
from apps.training import services
from apps.training.models import ModelAlias, TrainingJob
from tests.apps.training.objects import model_version
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_queue(monkeypatch):
    sent = []
    monkeypatch.setattr(services, "_enqueue", sent.append)
    return sent


def test_create_answers_202_and_runs_on_a_worker(snapshot, personas, no_queue):
    client = client_for(personas.researcher_a)
    body = {"snapshot": snapshot.pk, "preset": "quick", "base_channels": 4, "epochs": 2}
    response = client.post("/api/v1/training-jobs/", body, format="json")
    assert response.status_code == 202, response.json()
    data = response.json()
    assert (
        response["Location"] == data["status_url"] == f"/api/v1/training-jobs/{data['id']}/status/"
    )
    assert data["status"] == "queued" and data["queue_position"] == 1
    assert data["config"]["base_channels"] == 4 and data["max_epochs"] == 2
    assert data["lab"] == personas.lab_a.pk and no_queue == [data["id"]]

    services.job_run(job_id=data["id"])
    detail = client.get(f"/api/v1/training-jobs/{data['id']}/").json()
    assert detail["status"] == "succeeded", detail["error"]
    assert [e["epoch"] for e in detail["epochs"]] == [1, 2]
    assert detail["attempt_log"][0]["outcome"] == "succeeded" and detail["log_tail"]
    assert detail["version"] is not None
    status = client.get(data["status_url"]).json()
    assert status["status"] == "succeeded" and status["epoch"] == 2

    listed = client.get(f"/api/v1/training-jobs/?status=succeeded&snapshot={snapshot.pk}").json()
    assert [row["id"] for row in listed["results"]] == [data["id"]]

    version = client.get(f"/api/v1/model-versions/{detail['version']}/").json()
    assert version["curves"]["epoch"] == [1, 2] and version["snapshot"] == snapshot.pk
    download = client.get(version["checkpoint_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/octet-stream"
    payload = b"".join(download.streaming_content)
    assert storage.file_sha256(__import__("io").BytesIO(payload)) == version["checkpoint_sha256"]


@pytest.mark.parametrize(
    "extra, field",
    [({"lr": 0}, "lr"), ({"batch_size": 0}, "batch_size"), ({"preset": "huge"}, "preset"),
     ({"model": "resnet"}, "model"), ({"loss": "mse"}, "loss"), ({"colour": 1}, "colour"),
     ({"alias": "Prod uction"}, "alias"), ({"alias": "x" * 61}, "alias")],
)  # fmt: skip
def test_a_bad_config_is_a_400_naming_the_field(snapshot, personas, no_queue, extra, field):
    response = client_for(personas.researcher_a).post(
        "/api/v1/training-jobs/", {"snapshot": snapshot.pk, **extra}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"], response.json()
    assert not TrainingJob.objects.exists()


def test_the_alias_is_set_on_the_version_when_the_job_succeeds(snapshot, personas, no_queue):
    client = client_for(personas.researcher_a)
    body = {"snapshot": snapshot.pk, "base_channels": 4, "epochs": 1, "alias": "candidate"}
    response = client.post("/api/v1/training-jobs/", body, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["alias_on_success"] == "candidate"
    assert not ModelAlias.objects.exists()  # only once the job succeeds
    services.job_run(job_id=response.json()["id"])
    alias = ModelAlias.objects.get(lab=personas.lab_a, name="candidate")
    assert alias.version.job_id == response.json()["id"]
    assert alias.set_by == personas.researcher_a


def test_a_snapshot_not_ready_is_a_400(snapshot, personas, no_queue):
    snapshot.status = "building"
    snapshot.save()
    response = client_for(personas.researcher_a).post(
        "/api/v1/training-jobs/", {"snapshot": snapshot.pk}, format="json"
    )
    assert response.status_code == 400
    assert "snapshot" in response.json()["error"]["fields"]


def test_another_lab_cannot_start_jobs_on_this_labs_snapshot(snapshot, personas, no_queue):
    response = client_for(personas.admin_b).post(
        "/api/v1/training-jobs/", {"snapshot": snapshot.pk}, format="json"
    )
    assert response.status_code == 400  # as if it did not exist
    assert "snapshot" in response.json()["error"]["fields"]
    viewer = client_for(personas.viewer_a).post(
        "/api/v1/training-jobs/", {"snapshot": snapshot.pk}, format="json"
    )
    assert viewer.status_code == 403
    assert not TrainingJob.objects.exists() and no_queue == []


def test_cancel_through_the_api(snapshot, personas, no_queue):
    client = client_for(personas.researcher_a)
    job = client.post("/api/v1/training-jobs/", {"snapshot": snapshot.pk}, format="json").json()
    response = client.post(f"/api/v1/training-jobs/{job['id']}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_aliases_through_the_api(personas):
    one = model_version(personas.lab_a, personas.researcher_a, b"one")
    two = model_version(personas.lab_a, personas.researcher_a, b"two")
    client = client_for(personas.researcher_a)
    assert client.post(f"/api/v1/model-versions/{one.pk}/alias/", {"name": "production"},
                       format="json").status_code == 200  # fmt: skip
    moved = client.post(f"/api/v1/model-versions/{two.pk}/alias/", {"name": "production"},
                        format="json")  # fmt: skip
    assert moved.status_code == 200 and moved.json()["version"] == two.pk
    assert client.get(f"/api/v1/model-versions/{two.pk}/").json()["aliases"] == ["production"]
    bad = client.post(f"/api/v1/model-versions/{two.pk}/alias/", {"name": "No Way"},
                      format="json")  # fmt: skip
    assert bad.status_code == 400 and "name" in bad.json()["error"]["fields"]
    alias = ModelAlias.objects.get(name="production")
    assert (
        client_for(personas.viewer_a).delete(f"/api/v1/model-aliases/{alias.pk}/").status_code
        == 403
    )
    assert client.delete(f"/api/v1/model-aliases/{alias.pk}/").status_code == 204
    assert not ModelAlias.objects.exists()
