"""The case library left the explain app for its own (library 0001, studies 0004, explain 0005):
state-only migrations that keep the tables, so a populated database keeps every row.

The database is taken back to just before the move, filled through the historical models, and
migrated forward (and back again); the rows are then read through the models of the day. The
database is left fully migrated however the test ends, so the tests after it see the schema.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from explain.models import ClassifierModel, Explanation, PrecomputeItem, PrecomputeJob, Prediction
from library.models import Case, CaseLabel, Collection, LesionMask
from studies.models import Study, StudyCase, Trial

BEFORE_THE_MOVE = [
    ("explain", "0004_case_pixels_encoded"),
    ("studies", "0003_empty_maps_reader_text"),
    ("library", None),
]
MOVED = ("collection", "case", "caselabel", "lesionmask")

CASE_VALUES = {
    "key": "chest/0001.dcm",
    "source_format": "dicom",
    "source_sha256": "a" * 64,
    "stored_sha256": "b" * 64,
    "modality": "CR",
    "sop_class_uid": "1.2.840.10008.5.1.4.1.1.1",
    "patient_pseudonym": "P-0001",
    "study_uid": "2.25.1",
    "series_uid": "2.25.2",
    "sop_instance_uid": "2.25.3",
    "rows": 512,
    "columns": 480,
    "is_color": False,
    "photometric": "MONOCHROME2",
    "bits_stored": 12,
    "frame_index": 0,
    "number_of_frames": 1,
    "window_presets": [{"center": 40.0, "width": 400.0}],
    "value_min": -1024.0,
    "value_max": 3071.0,
    "split": "test",
}
CASE_FILES = {
    "source_file": "cases/u1/source.dcm",
    "pixels_file": "cases/u1/pixels.npy",
    "pixels_encoded_file": "cases/u1/pixels.xrsp",
    "display_file": "cases/u1/display.png",
    "thumbnail_file": "cases/u1/thumbnail.png",
}


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()  # the applied set changed: read it again
    ContentType.objects.clear_cache()
    return executor


def _latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _before_the_move():
    """Migrate back to just before the move; the historical models of that state."""
    executor = _migrate(BEFORE_THE_MOVE)
    return executor.loader.project_state(list(executor.loader.applied_migrations)).apps


@pytest.fixture
def migrated_back(transactional_db):
    """The historical models from before the move; the database ends fully migrated."""
    try:
        yield _before_the_move()
    finally:
        _migrate(_latest())


def _fill(apps, user_id: int) -> dict:
    """One of everything that points at the case library, through the historical models."""
    get = apps.get_model
    collection = get("explain", "Collection").objects.create(
        name="Chest CR", description="Frontal chest radiographs", created_by_id=user_id
    )
    case = get("explain", "Case").objects.create(
        collection=collection, imported_by_id=user_id, **CASE_VALUES, **CASE_FILES
    )
    label = get("explain", "CaseLabel").objects.create(case=case, name="nodule", value=1)
    mask = get("explain", "LesionMask").objects.create(
        case=case, label="nodule", file="cases/u1/mask-nodule.png", pixel_count=321
    )
    model = get("explain", "ClassifierModel").objects.create(
        name="cxr-resnet",
        form="eager",
        file_sha256="c" * 64,
        input_spec={"size": [224, 224]},
        class_labels=["normal", "nodule"],
        positive_class="nodule",
        created_by_id=user_id,
    )
    prediction = get("explain", "Prediction").objects.create(
        model=model,
        case=case,
        probabilities=[0.2, 0.8],
        predicted_class="nodule",
        positive_probability=0.8,
    )
    explanation = get("explain", "Explanation").objects.create(
        model=model,
        case=case,
        explainer="gradcam",
        param_hash="d" * 64,
        params={"layer": "layer4"},
        seed=7,
        target_class="nodule",
        heatmap_file="explanations/e1/heatmap.npy",
    )
    job = get("explain", "PrecomputeJob").objects.create(
        model=model, collection=collection, configs=[], created_by_id=user_id
    )
    item = get("explain", "PrecomputeItem").objects.create(
        job=job, case=case, config_key="prediction"
    )
    study = get("studies", "Study").objects.create(
        title="Nodule detection", seed=2024, model=model, created_by_id=user_id
    )
    study.collections.add(collection)
    study_case = get("studies", "StudyCase").objects.create(study=study, case=case, role="main")
    arm = get("studies", "Arm").objects.create(study=study, code="A", kind="unaided")
    enrollment = get("studies", "Enrollment").objects.create(
        study=study, reader_id=user_id, reader_index=0, seed=1, algorithm="test", schedule=[]
    )
    session = get("studies", "ReadingSession").objects.create(enrollment=enrollment, index=0)
    trial = get("studies", "Trial").objects.create(session=session, position=0, case=case, arm=arm)
    return {
        "collection": collection.pk,
        "case": case.pk,
        "case_uid": case.uid,
        "label": label.pk,
        "mask": mask.pk,
        "model": model.pk,
        "prediction": prediction.pk,
        "explanation": explanation.pk,
        "job": job.pk,
        "item": item.pk,
        "study": study.pk,
        "study_case": study_case.pk,
        "trial": trial.pk,
    }


def _librarians_holding_change_case(apps) -> int:
    """A group granted `change_case` on the case's content type of the day (explain.case)."""
    content_type, _ = apps.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="explain", model="case"
    )
    permission, _ = apps.get_model("auth", "Permission").objects.get_or_create(
        content_type=content_type, codename="change_case", defaults={"name": "Can change case"}
    )
    group = apps.get_model("auth", "Group").objects.create(name="case librarians")
    group.permissions.add(permission)
    return group.pk


def _assert_library_as_filled(ids: dict, user_id: int) -> None:
    collection = Collection.objects.get(pk=ids["collection"])
    assert (collection.name, collection.description) == ("Chest CR", "Frontal chest radiographs")
    assert collection.created_by_id == user_id

    case = Case.objects.get(pk=ids["case"])
    assert case.uid == ids["case_uid"]
    assert case.collection_id == collection.pk and case.imported_by_id == user_id
    assert {field: getattr(case, field) for field in CASE_VALUES} == CASE_VALUES
    assert {field: getattr(case, field).name for field in CASE_FILES} == CASE_FILES
    assert list(collection.cases.all()) == [case]

    label = CaseLabel.objects.get(pk=ids["label"])
    assert (label.case_id, label.name, label.value) == (case.pk, "nodule", 1)
    assert list(case.labels.all()) == [label]
    mask = LesionMask.objects.get(pk=ids["mask"])
    assert (mask.case_id, mask.label, mask.pixel_count) == (case.pk, "nodule", 321)
    assert mask.file.name == "cases/u1/mask-nodule.png"
    assert list(case.masks.all()) == [mask]


def _assert_pointers_as_filled(ids: dict) -> None:
    case = Case.objects.get(pk=ids["case"])
    model = ClassifierModel.objects.get(pk=ids["model"])
    assert model.name == "cxr-resnet"

    prediction = Prediction.objects.get(pk=ids["prediction"])
    assert (prediction.case, prediction.model) == (case, model)
    assert (prediction.probabilities, prediction.positive_probability) == ([0.2, 0.8], 0.8)
    explanation = Explanation.objects.get(pk=ids["explanation"])
    assert (explanation.case, explanation.model, explanation.seed) == (case, model, 7)
    assert explanation.heatmap_file.name == "explanations/e1/heatmap.npy"
    assert list(case.predictions.all()) == [prediction]
    assert list(case.explanations.all()) == [explanation]

    job = PrecomputeJob.objects.get(pk=ids["job"])
    assert job.collection == case.collection
    assert PrecomputeItem.objects.get(pk=ids["item"]).case == case

    study = Study.objects.get(pk=ids["study"])
    assert list(study.collections.all()) == [case.collection]
    assert StudyCase.objects.get(pk=ids["study_case"]).case == case
    assert Trial.objects.get(pk=ids["trial"]).case == case


def _assert_content_types_in(app_label: str, group_id: int, types=ContentType, groups=Group):
    """The moved models' content types are all in `app_label`; the group's permission follows."""
    other = {"library": "explain", "explain": "library"}[app_label]
    assert types.objects.filter(app_label=app_label, model__in=MOVED).count() == len(MOVED)
    assert not types.objects.filter(app_label=other, model__in=MOVED).exists()
    case_type = types.objects.get(app_label=app_label, model="case")
    permission = groups.objects.get(pk=group_id).permissions.get()
    assert (permission.codename, permission.content_type_id) == ("change_case", case_type.pk)


@pytest.mark.django_db(transaction=True)
def test_moving_the_case_library_keeps_every_row_relation_and_permission(
    migrated_back, coordinator
):
    assert "library" not in {model._meta.app_label for model in migrated_back.get_models()}
    ids = _fill(migrated_back, coordinator.pk)
    group_id = _librarians_holding_change_case(migrated_back)

    _migrate(_latest())

    _assert_library_as_filled(ids, coordinator.pk)
    _assert_pointers_as_filled(ids)
    _assert_content_types_in("library", group_id)
    assert (
        ContentType.objects.get_for_model(Case)
        .permission_set.filter(group__pk=group_id, codename="change_case")
        .exists()
    )


@pytest.mark.django_db(transaction=True)
def test_migrating_back_to_before_the_move_keeps_the_rows_too(migrated_back, coordinator):
    ids = _fill(migrated_back, coordinator.pk)
    group_id = _librarians_holding_change_case(migrated_back)
    _migrate(_latest())

    apps = _before_the_move()

    case = apps.get_model("explain", "Case").objects.get(pk=ids["case"])
    assert (case.uid, case.collection_id, case.key) == (
        ids["case_uid"],
        ids["collection"],
        CASE_VALUES["key"],
    )
    assert case.pixels_encoded_file.name == CASE_FILES["pixels_encoded_file"]
    assert [label.pk for label in case.labels.all()] == [ids["label"]]
    assert [mask.pk for mask in case.masks.all()] == [ids["mask"]]
    assert [p.pk for p in case.predictions.all()] == [ids["prediction"]]
    assert [e.pk for e in case.explanations.all()] == [ids["explanation"]]
    study = apps.get_model("studies", "Study").objects.get(pk=ids["study"])
    assert [c.pk for c in study.collections.all()] == [ids["collection"]]
    _assert_content_types_in(
        "explain",
        group_id,
        apps.get_model("contenttypes", "ContentType"),
        apps.get_model("auth", "Group"),
    )

    _migrate(_latest())
    _assert_library_as_filled(ids, coordinator.pk)
    _assert_pointers_as_filled(ids)
    _assert_content_types_in("library", group_id)
