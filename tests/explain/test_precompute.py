"""Precompute jobs, run eagerly in-process (the zero-setup default)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from core.models import AuditEntry
from explain import result_store, selectors, services, worker
from explain.models import Explanation, PrecomputeItem, PrecomputeJob, Prediction
from explain.precompute_state import MAX_ATTEMPTS
from explain.worker import RunOutcome
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture

pytestmark = pytest.mark.django_db(transaction=True)

FAST = ["gradcam", "saliency", "attention", "similar_cases"]
METRICS = False  # metrics have their own test; they dominate the run time


def _start_without_running(model, collection, *, acting_user):
    """Create a saliency job whose tasks are not run (as if no worker had picked them up)."""
    from config.celery import app

    app.conf.task_always_eager = False
    try:
        return services.precompute_start(
            with_metrics=METRICS,
            acting_user=acting_user,
            model=model,
            collection=collection,
            explainers=["saliency"],
        )
    finally:
        app.conf.task_always_eager = True


@pytest.fixture
def engine_setup(demo_dataset, tmp_path, eager):
    collection = import_demo_collection(demo_dataset)
    model = register_demo_architecture(tmp_path)
    return model, collection


def test_a_job_computes_every_item_exactly_once(engine_setup, coordinator):
    model, collection = engine_setup
    job = services.precompute_start(
        with_metrics=METRICS,
        acting_user=coordinator,
        model=model,
        collection=collection,
        explainers=FAST,
        placebo=["gradcam"],
    )
    progress = selectors.precompute_progress(job=job)
    cases = collection.cases.count()
    assert progress["status"] == "done", progress["failures"]
    assert progress["done"] == progress["total"] == cases * (1 + len(FAST) + 1)
    assert Prediction.objects.filter(model=model).count() == cases
    assert Explanation.objects.filter(model=model).count() == cases * (len(FAST) + 1)
    assert (
        Explanation.objects.filter(model=model, placebo=True, explainer="gradcam").count() == cases
    )
    assert AuditEntry.objects.filter(action="precompute.start").count() == 1
    prediction = Prediction.objects.filter(model=model).first()
    assert abs(sum(prediction.probabilities) - 1) < 1e-5
    assert prediction.positive_probability == pytest.approx(prediction.probabilities[1])


def test_every_explainers_files_look_alike_and_sit_on_the_case_grid(engine_setup):
    model, collection = engine_setup
    services.precompute_start(
        with_metrics=METRICS,
        acting_user=None,
        model=model,
        collection=collection,
        explainers=["gradcam", "saliency"],
    )
    case = collection.cases.order_by("pk").first()
    shapes, names = set(), set()
    for explanation in Explanation.objects.filter(case=case):
        heatmap = np.load(default_storage.open(explanation.heatmap_file.name), allow_pickle=False)
        normalized = np.load(
            default_storage.open(explanation.normalized_file.name), allow_pickle=False
        )
        overlay = Image.open(default_storage.open(explanation.overlay_file.name))
        assert heatmap.dtype == np.float16 and heatmap.shape == (case.rows, case.columns)
        assert float(normalized.min()) >= 0.0 and float(normalized.max()) <= 1.0
        assert overlay.mode == "RGBA" and overlay.size == (case.columns, case.rows)
        assert explanation.raw_min <= explanation.raw_max
        shapes.add((heatmap.shape, overlay.size))
        names.add(
            tuple(
                name.rsplit("/", 1)[1]
                for name in (
                    explanation.heatmap_file.name,
                    explanation.normalized_file.name,
                    explanation.overlay_file.name,
                )
            )
        )
        assert explanation.explainer not in explanation.overlay_file.name
    assert len(shapes) == 1 and names == {("heatmap.npy", "normalized.npy", "overlay.png")}


def test_metrics_are_stored_per_explanation_with_localisation_when_a_mask_exists(engine_setup):
    model, collection = engine_setup
    services.precompute_start(
        with_metrics=True,
        acting_user=None,
        model=model,
        collection=collection,
        explainers=["gradcam"],
    )
    for explanation in Explanation.objects.filter(explainer="gradcam"):
        assert 0.0 <= explanation.metrics["deletion_auc"] <= 1.0
        assert 0.0 <= explanation.metrics["insertion_auc"] <= 1.0
        assert explanation.metrics["faithfulness_steps"] > 0
        assert "sanity_rank_correlation" in explanation.metrics
        has_mask = explanation.case.masks.exists()
        assert ("relevance_mass" in explanation.metrics) == has_mask
    summary = selectors.explanation_metrics_summary(model=model)["gradcam"]
    assert summary["explanations"] == collection.cases.count()
    deletion = [e.metrics["deletion_auc"] for e in Explanation.objects.filter(explainer="gradcam")]
    assert summary["metrics"]["deletion_auc"]["mean"] == pytest.approx(
        sum(deletion) / len(deletion)
    )


def test_a_rerun_skips_existing_results_and_force_overwrites_without_duplicates(engine_setup):
    model, collection = engine_setup
    services.precompute_start(
        with_metrics=METRICS,
        acting_user=None,
        model=model,
        collection=collection,
        explainers=["saliency"],
    )
    first = dict(Explanation.objects.values_list("case_id", "uid"))
    again = services.precompute_start(
        with_metrics=METRICS,
        acting_user=None,
        model=model,
        collection=collection,
        explainers=["saliency"],
    )
    assert set(again.items.values_list("worker", flat=True)) == {"existing result"}
    forced = services.precompute_start(
        with_metrics=METRICS,
        acting_user=None,
        model=model,
        collection=collection,
        explainers=["saliency"],
        force=True,
    )
    assert selectors.precompute_progress(job=forced)["done"] == forced.items.count()
    assert dict(Explanation.objects.values_list("case_id", "uid")) == first
    assert Explanation.objects.count() == collection.cases.count()


def test_a_job_that_wants_metrics_recomputes_results_stored_without_them(engine_setup):
    model, collection = engine_setup
    services.precompute_start(
        with_metrics=False,
        acting_user=None,
        model=model,
        collection=collection,
        explainers=["saliency"],
    )
    job = services.precompute_start(
        with_metrics=True,
        acting_user=None,
        model=model,
        collection=collection,
        explainers=["saliency"],
    )
    assert not job.items.filter(config_key="saliency", worker="existing result").exists()
    assert all(e.metrics for e in Explanation.objects.filter(explainer="saliency"))
    again = services.precompute_start(
        with_metrics=True,
        acting_user=None,
        model=model,
        collection=collection,
        explainers=["saliency"],
    )
    assert set(again.items.filter(config_key="saliency").values_list("worker", flat=True)) == {
        "existing result"
    }


def test_running_the_same_items_twice_computes_them_once(engine_setup):
    model, collection = engine_setup
    job = _start_without_running(model, collection, acting_user=None)
    ids = list(job.items.filter(config_key="saliency").values_list("pk", flat=True))
    first = worker.precompute_run_items(item_ids=ids)
    second = worker.precompute_run_items(item_ids=ids)
    assert first.claimed == len(ids) and second == RunOutcome(claimed=0)
    assert set(PrecomputeItem.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}


def test_a_failing_item_records_its_reason_and_the_job_continues(engine_setup, monkeypatch):
    from explain.compute import engine

    model, collection = engine_setup
    real = engine.explain_batch
    victim = collection.cases.order_by("pk").first().pk

    def flaky(model_, cases, config, **kwargs):
        if any(case.case_id == victim for case in cases):
            raise RuntimeError("explainer exploded")
        return real(model_, cases, config, **kwargs)

    monkeypatch.setattr(engine, "explain_batch", flaky)
    job = services.precompute_start(
        with_metrics=METRICS,
        acting_user=None,
        model=model,
        collection=collection,
        explainers=["saliency"],
        batch_size=1,
    )
    progress = selectors.precompute_progress(job=job)
    assert progress["status"] == "done"
    assert progress["failed"] == 1 and progress["done"] == progress["total"] - 1
    failure = progress["failures"][0]
    assert failure["case"] == victim and "explainer exploded" in failure["error"]
    item = job.items.get(case_id=victim, config_key="saliency")
    assert item.attempts == MAX_ATTEMPTS


def test_unsupported_or_unknown_explainers_are_refused_with_reasons(engine_setup):
    model, collection = engine_setup
    with pytest.raises(services.ServiceError) as excinfo:
        services.precompute_start(
            with_metrics=METRICS,
            acting_user=None,
            model=model,
            collection=collection,
            explainers=["magic", "similar_cases"],
            placebo=["similar_cases"],
        )
    assert "unknown explainer 'magic'" in str(excinfo.value)
    assert "no placebo" in str(excinfo.value)
    assert not PrecomputeJob.objects.exists()


def test_cancelling_a_job_stops_its_pending_items(engine_setup, coordinator):
    model, collection = engine_setup
    job = _start_without_running(model, collection, acting_user=coordinator)
    services.precompute_cancel(acting_user=coordinator, job=job)
    progress = selectors.precompute_progress(job=job)
    assert progress["status"] == "cancelled" and progress["cancelled"] == progress["total"]
    ids = list(job.items.values_list("pk", flat=True))
    assert worker.precompute_run_items(item_ids=ids) == RunOutcome(claimed=0)
    with pytest.raises(services.ServiceError, match="not running"):
        services.precompute_cancel(acting_user=coordinator, job=job)


def test_the_precompute_command_waits_with_progress_and_reports(engine_setup, tmp_path):
    model, collection = engine_setup
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "precompute",
        model=model.name,
        collection=collection.name,
        explainers="ig,gradcam",
        wait=True,
        no_metrics=True,
        stdout=out,
        stderr=err,
    )
    assert "done:" in out.getvalue() and "0 failed" in out.getvalue()
    assert (
        Explanation.objects.filter(explainer="integrated_gradients").count()
        == collection.cases.count()
    )
    with pytest.raises(CommandError):
        call_command(
            "precompute",
            model="nope",
            collection="nada",
            explainers="gradcam",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )


def test_explain_case_writes_a_heatmap_on_the_case_grid(engine_setup, tmp_path):
    model, collection = engine_setup
    case = collection.cases.order_by("pk").first()
    target = tmp_path / "map.npy"
    call_command(
        "explain_case",
        model=model.name,
        case=case.pk,
        explainer="gradcam",
        out=str(target),
        stdout=io.StringIO(),
    )
    heatmap = np.load(target)
    assert heatmap.shape == (case.rows, case.columns) and np.isfinite(heatmap).all()


def test_progress_is_served_to_coordinators_by_the_api(engine_setup, coordinator):
    from rest_framework.test import APIClient

    model, collection = engine_setup
    client = APIClient()
    client.force_authenticate(coordinator)
    response = client.post(
        "/api/v1/precompute/",
        {
            "model": model.pk,
            "collection": collection.pk,
            "explainers": ["saliency"],
            "with_metrics": False,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = client.get(f"/api/v1/precompute/{response.json()['job']}/").json()
    assert (
        body["status"] == "done"
        and body["per_config"]["saliency"]["done"] == collection.cases.count()
    )
    bad = client.post(
        "/api/v1/precompute/",
        {"model": model.pk, "collection": collection.pk, "explainers": ["nonsense"]},
        format="json",
    )
    assert bad.status_code == 400


# --- storing a batch: files and rows together, or neither


def _stored_files(media_root) -> list:
    return sorted(p for p in (media_root / "explanations").rglob("*") if p.is_file())


def test_a_failed_database_write_removes_the_new_files_and_records_the_reason(
    engine_setup, monkeypatch, settings
):
    model, collection = engine_setup
    real = result_store._mark_done

    def failing(items):
        if items[0].config_key != "prediction":
            raise RuntimeError("database went away")
        real(items)

    monkeypatch.setattr(result_store, "_mark_done", failing)
    job = services.precompute_start(
        with_metrics=METRICS, acting_user=None, model=model, collection=collection,
        explainers=["saliency"],
    )
    progress = selectors.precompute_progress(job=job)
    assert progress["failed"] == collection.cases.count()
    assert all("database went away" in failure["error"] for failure in progress["failures"])
    assert not Explanation.objects.exists()
    assert _stored_files(settings.MEDIA_ROOT) == []


def test_a_failed_file_write_fails_the_batch_and_leaves_no_part_of_a_result(
    engine_setup, monkeypatch, settings
):
    from core import storage

    model, collection = engine_setup
    real = storage.storage_replace

    def disk_full_for_overlays(name, content):
        if name.endswith("overlay.png"):
            raise OSError("disk full")
        return real(name, content)

    monkeypatch.setattr(storage, "storage_replace", disk_full_for_overlays)
    job = services.precompute_start(
        with_metrics=METRICS, acting_user=None, model=model, collection=collection,
        explainers=["gradcam"],
    )
    progress = selectors.precompute_progress(job=job)
    assert progress["failed"] == collection.cases.count()
    assert all("disk full" in failure["error"] for failure in progress["failures"])
    assert not Explanation.objects.exists()
    assert _stored_files(settings.MEDIA_ROOT) == []  # the heatmaps written before are gone


def test_a_result_another_job_stored_meanwhile_is_updated_by_the_retry_not_duplicated(
    engine_setup, monkeypatch, settings
):
    model, collection = engine_setup
    real = worker._result_files
    raced = {}

    def racing(lookup, case_ids, **kwargs):
        files = real(lookup, case_ids, **kwargs)
        if not raced:  # another job creates the first case's row after the uids were chosen
            raced["row"] = Explanation.objects.create(
                **lookup, case_id=case_ids[0], params={}, seed=0, target_class="nodule"
            )
        return files

    monkeypatch.setattr(worker, "_result_files", racing)
    job = services.precompute_start(
        with_metrics=METRICS, acting_user=None, model=model, collection=collection,
        explainers=["saliency"],
    )
    assert selectors.precompute_progress(job=job)["status"] == "done"
    cases = collection.cases.count()
    assert Explanation.objects.count() == cases
    row = Explanation.objects.get(pk=raced["row"].pk)
    assert row.uid == raced["row"].uid and row.overlay_file.name == f"explanations/{row.uid}/overlay.png"
    assert set(job.items.filter(config_key="saliency").values_list("attempts", flat=True)) == {2}
    assert len(_stored_files(settings.MEDIA_ROOT)) == 3 * cases  # the first try's files are gone


def test_a_forced_rerun_rewrites_each_results_files_in_place_without_leftovers(
    engine_setup, settings
):
    model, collection = engine_setup
    arguments = dict(
        with_metrics=METRICS, acting_user=None, model=model, collection=collection,
        explainers=["gradcam"],
    )
    services.precompute_start(**arguments)
    before = {path: path.read_bytes() for path in _stored_files(settings.MEDIA_ROOT)}
    for path in before:
        path.write_bytes(b"stale")
    services.precompute_start(**arguments, force=True)
    after = {path: path.read_bytes() for path in _stored_files(settings.MEDIA_ROOT)}
    assert after == before  # same names, fresh contents, no temporary files left


def test_files_written_while_computing_or_after_it_are_the_same(engine_setup, monkeypatch):
    model, collection = engine_setup

    def stored(overlap: bool, force: bool) -> dict:
        monkeypatch.setattr(worker, "_overlap_writes", lambda device: overlap)
        services.precompute_start(
            with_metrics=METRICS, acting_user=None, model=model, collection=collection,
            explainers=["saliency"], force=force,
        )
        return {
            explanation.case_id: [
                default_storage.open(field.name).read()
                for field in (explanation.heatmap_file, explanation.normalized_file, explanation.overlay_file)
            ]
            for explanation in Explanation.objects.filter(explainer="saliency")
        }

    during = stored(overlap=True, force=False)
    after = stored(overlap=False, force=True)
    assert len(during) == collection.cases.count() and during == after
