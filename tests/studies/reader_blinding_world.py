"""The shared data of the reader blinding crawl (test_reader_blinding_crawl.py): the two open
studies, the reader, and the words no response may contain."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.files.storage import default_storage
from django.test import TestCase

from core.permissions import COORDINATORS_GROUP
from explain.compute.catalog import EXPLAINERS
from explain.explainer_requests import ALIASES
from explain.models import ClassifierModel, Explanation
from library.models import Case, CaseLabel, Collection
from studies import services
from studies.models import Arm, Study
from studies.selectors import BLINDED_KIND

ARM_CODES = {  # (kind, explainer, shows the clinical history) -> code
    ("unaided", "", False): "QZUN",
    ("unaided", "", True): "QZUH",
    ("ai", "", False): "QZAI",
    ("ai_explainer", "gradcam", False): "QZEX",
    ("placebo", "gradcam", False): "QZPL",
    ("ai_explainer", "similar_cases", False): "QZSC",
}
PROTOCOLS = ("single_stage", "two_stage")
XRS_HEADER_KEYS = {"shape", "dtype", "slope", "intercept", "filter", "codec", "size"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
URL_ATTRIBUTE = re.compile(r'(?:href|src|action|data-[\w-]*url)\s*=\s*"([^"]*)"')
PAYLOAD_SCRIPT = re.compile(
    r'(<script id="trial-payload" type="application/json">)(.*?)(</script>)', re.S
)
CSRF = re.compile(r'(data-csrf-token="|name="csrfmiddlewaretoken" value=")[^"]*')
NONCE = re.compile(r"nonce(=\"|-)[^\"' ;]+")
ANSWERS = {
    "diagnosis": None,
    "confidence": 70,
    "likert": 4,
    "free_text": "looked at the whole image",
}
# Words that would give away the ground truth or the AI's correctness.
TRUTH_WORDS = [
    "ai_wrong",
    "ai_right",
    "ai-wrong",
    "ground truth",
    "ground_truth",
    "stratum",
    "strata",
    "correct",
    "incorrect",
    "wrong",
]
PNG_IMAGE_CHUNKS = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"sRGB", b"pHYs", b"bKGD"}


# The studies ------------------------------------------------------------------------------


def clinical_history(case: Case) -> str:
    return f"Adult patient {case.pk}, cough for {case.pk + 2} weeks"



@dataclass
class World:
    reader: User
    coordinator: User
    studies: dict  # protocol -> Study
    forbidden: list  # (token, what it is)
    study_thumbnails: dict  # study pk -> {thumbnail bytes of its cases}
    media: Path = None


def _user(username: str, *, coordinator: bool = False) -> User:
    user = User.objects.create_user(username=username, email=f"{username}@example.org")
    if coordinator:
        user.groups.add(Group.objects.get_or_create(name=COORDINATORS_GROUP)[0])
    return user


def _choose_cases(collection: Collection) -> dict:
    """Main cases of both labels from both splits (the train split is the similar-case
    explainer's reference set), one training and one attention-check case."""

    def positive(case):
        return CaseLabel.objects.filter(case=case, name="nodule", value=1).exists()

    cases = list(collection.cases.order_by("pk"))
    main = []
    for split in ("test", "train"):
        for wanted in (True, False):
            main.append(
                next(
                    c for c in cases if c.split == split and positive(c) == wanted and c not in main
                )
            )
    rest = [c for c in cases if c not in main]
    return {"main": [c.pk for c in main], "training": [rest[0].pk], "attention": [rest[1].pk]}


def _build(dataset: Path, tmp: Path) -> World:
    from library import services as library_services
    from tests.explain.engine_fixtures import register_demo_architecture

    coordinator = _user("coordinator", coordinator=True)
    reader = _user("reader_a")
    report = library_services.cases_import(
        acting_user=coordinator,
        collection="crawl-cases",
        paths=[dataset / "images"],
        labels_path=dataset / "labels.csv",
    )
    assert report.ok, report.to_dict()
    collection = Collection.objects.get(name="crawl-cases")
    for case in collection.cases.all():  # the same words for every case: only numbers differ
        library_services.case_clinical_history_set(
            acting_user=coordinator, case=case, clinical_history=clinical_history(case)
        )
    model = register_demo_architecture(tmp, name="crawl-net")
    assert model.explainers["similar_cases"]["supported"]
    chosen = _choose_cases(collection)
    studies = {}
    for protocol in PROTOCOLS:
        study = services.study_create(
            acting_user=coordinator,
            title=f"QZINTERNALTITLE{len(studies) + 1} nodule protocol",
            description=f"QZPROTOCOLTEXT{len(studies) + 1}: unaided vs AI vs placebo heatmaps",
            reader_title=f"Chest reading QZREADERTITLE{len(studies) + 1}",
            reader_description="QZREADERTEXT: decide whether each radiograph shows a nodule.",
            model=model,
            collections=[collection],
            consent_text="I agree to take part.",
            instructions="Say whether there is a nodule.",
            design="fully_crossed",
            protocol=protocol,
            sessions=len(ARM_CODES),
        )
        for kind, explainer, history in ARM_CODES:
            services.arm_add(
                acting_user=coordinator,
                study=study,
                kind=kind,
                explainer=explainer,
                shows_clinical_history=history,
            )
        for arm in study.arms.all():  # codes that can be searched for (A-F are single letters)
            key = (arm.kind, arm.explainer, arm.shows_clinical_history)
            Arm.objects.filter(pk=arm.pk).update(code=ARM_CODES[key])
        services.questions_add_defaults(acting_user=coordinator, study=study)
        services.study_cases_set(acting_user=coordinator, study=study, **chosen)
        services.study_role_add(acting_user=coordinator, study=study, user=reader, role="reader")
        with TestCase.captureOnCommitCallbacks(execute=True):
            services.study_precompute(acting_user=coordinator, study=study)
        studies[protocol] = services.study_open(acting_user=coordinator, study=study)
    assert Explanation.objects.filter(placebo=True, overlay_file__gt="").exists()
    assert Explanation.objects.exclude(similar_cases=[]).exists()
    thumbnails = {}
    for study in studies.values():
        ids = study.study_cases.values_list("case_id", flat=True)
        thumbnails[study.pk] = {
            default_storage.open(c.thumbnail_file.name).read()
            for c in Case.objects.filter(pk__in=ids)
        }
    return World(reader, coordinator, studies, _forbidden(model), thumbnails)


def _forbidden(model: ClassifierModel) -> list[tuple[str, str]]:
    """Every string that names an explainer, an arm, a file or a case, with what it is."""
    tokens = []
    for name, info in EXPLAINERS.items():
        if name == "similar_cases":
            # every payload has a `similar_cases` list and every trial page a "Similar cases"
            # box (hidden unless the arm shows some): the word names no arm
            continue
        tokens += [
            (name, "explainer"),
            (name.replace("_", " "), "explainer"),
            (name.replace("_", "-"), "explainer"),
        ]
        tokens.append((re.sub(r"\s*\(.*\)", "", info.label), "explainer label"))
    tokens += [
        (alias, "explainer alias")
        for alias, name in ALIASES.items()
        if len(alias) >= 4 and name != "similar_cases"
    ]
    # "AI" and "unaided" are what the reader sees anyway (the AI box; the unaided first stage)
    tokens += [(kind, "arm kind") for kind in Arm.Kind.values if kind not in ("ai", "unaided")]
    tokens += [(BLINDED_KIND, "arm kind")] if BLINDED_KIND != "explanation" else []
    tokens += [("shows_clinical_history", "arm setting")]
    for arm in Arm.objects.all():
        tokens.append((arm.code, "arm code"))
        if arm.param_hash:
            tokens += [(arm.param_hash, "parameter hash"), (arm.param_hash[:10], "parameter hash")]
    for explanation in Explanation.objects.all():
        tokens += [(explanation.param_hash[:10], "parameter hash")]
        for file in (
            explanation.overlay_file,
            explanation.heatmap_file,
            explanation.normalized_file,
        ):
            if file.name:
                tokens.append((file.name, "explanation file"))
    for case in Case.objects.all():
        tokens += [
            (case.key, "case key"),
            (case.source_sha256, "case digest"),
            (case.stored_sha256, "case digest"),
        ]
        for file in (case.display_file, case.pixels_file, case.thumbnail_file):
            if file.name:
                tokens += [(file.name, "case file"), (Path(file.name).name, "case file")]
    tokens += [(model.name, "model name"), (model.file_sha256, "model digest")]
    for study in Study.objects.all():  # the protocol's own words; readers see the reader-facing ones
        tokens += [(study.title, "internal title"), (study.description, "internal description")]
        tokens += [(word, "internal title") for word in re.findall(r"QZ[A-Z]+\d*", study.title)]
        tokens += [(word, "internal description") for word in re.findall(r"QZ[A-Z]+\d*", study.description)]
    tokens += [(word, "truth") for word in TRUTH_WORDS]
    unique = {token.lower(): what for token, what in tokens if token}
    return sorted(unique.items())
