"""Configuring the response kinds of issue 17: a 0-100 probability (no default position), the
reader's accept / modify / reject of the AI advice (AI arms, final stage, fixed answers) and
ordered categories such as BI-RADS (2-10 unique labels, in order) -- through the service, the
coordinator's page and the REST API."""

from __future__ import annotations

import pytest

from core.errors import ServiceError
from studies import services
from studies.models import Question
from tests.studies.api_helpers import api, mentions, url  # noqa: F401 (fixture)

BIRADS = ["1 negative", "2 benign", "3 probably benign", "4 suspicious", "5 highly suggestive"]


def add(coordinator, study, **values) -> Question:
    return services.question_add(acting_user=coordinator, study=study, **values)


def refusal(coordinator, study, **values) -> list[str]:
    with pytest.raises(ServiceError) as caught:
        add(coordinator, study, **values)
    assert not study.questions.filter(key=values.get("key")).exists()
    return caught.value.problems


def test_a_probability_question_is_a_required_0_to_100_answer_asked_at_every_stage(
    coordinator, draft_study
):
    question = add(coordinator, draft_study, key="malignancy", kind="probability", text="P?")
    assert (question.applies_to, question.stage, question.required) == ("all", "every", True)
    assert question.options == [] and question.scale == "" and question.points is None


def test_a_probability_question_has_no_options(coordinator, draft_study):
    problems = refusal(
        coordinator, draft_study, key="p", kind="probability", text="P?", options=["a", "b"]
    )
    assert mentions(problems, "only diagnosis and ordered-category questions have options")


def test_an_advice_question_has_the_fixed_answers_and_is_asked_in_ai_arms_at_the_final_stage(
    coordinator, draft_study
):
    question = add(coordinator, draft_study, key="advice", kind="advice", text="The advice?")
    assert question.options == ["accept", "modify", "reject"]
    assert (question.applies_to, question.stage, question.required) == ("ai", "final", True)
    explained = add(
        coordinator, draft_study, key="advice2", kind="advice", text="?", applies_to="explanation"
    )
    assert explained.applies_to == "explanation"


def test_an_advice_question_for_every_arm_is_refused_with_a_clear_message(
    coordinator, draft_study
):
    problems = refusal(
        coordinator, draft_study, key="advice", kind="advice", text="?", applies_to="all"
    )
    assert mentions(problems, "advice", "only to arms that show the AI", "not every arm")


def test_an_advice_question_at_every_stage_is_refused(coordinator, draft_study):
    problems = refusal(coordinator, draft_study, key="advice", kind="advice", text="?", stage="every")
    assert mentions(problems, "advice", "only at the final stage")


def test_an_advice_question_takes_no_other_answers(coordinator, draft_study):
    problems = refusal(
        coordinator, draft_study, key="advice", kind="advice", text="?", options=["yes", "no"]
    )
    assert mentions(problems, "fixed", "accept, modify, reject")


def test_an_ordinal_question_keeps_its_labels_in_order_and_is_asked_at_every_stage(
    coordinator, draft_study
):
    question = add(coordinator, draft_study, key="birads", kind="ordinal", text="BI-RADS?", options=BIRADS)
    assert question.options == BIRADS
    assert (question.applies_to, question.stage, question.required) == ("all", "every", True)
    two = add(coordinator, draft_study, key="two", kind="ordinal", text="?", options=["low", "high"])
    ten = add(coordinator, draft_study, key="ten", kind="ordinal", text="?", options=list("abcdefghij"))
    assert len(two.options) == 2 and len(ten.options) == 10


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["only one"], "needs 2 to 10 category labels"),
        ([], "needs 2 to 10 category labels"),
        ([f"c{i}" for i in range(11)], "needs 2 to 10 category labels, in order (lowest first), not 11"),
        (["low", "high", "low"], "must be different from each other"),
        (["low", " ", "high"], "cannot be empty"),
    ],
)
def test_an_ordinal_question_with_too_few_too_many_repeated_or_empty_labels_is_refused(
    coordinator, draft_study, options, message
):
    problems = refusal(coordinator, draft_study, key="birads", kind="ordinal", text="?", options=options)
    assert mentions(problems, message)


def test_no_question_may_take_the_key_of_an_ordinal_questions_rank_column(
    coordinator, draft_study
):
    add(coordinator, draft_study, key="birads", kind="ordinal", text="?", options=BIRADS)
    problems = refusal(coordinator, draft_study, key="birads_rank", kind="free_text", text="?")
    assert mentions(problems, "taken by the rank column of question birads")
    add(coordinator, draft_study, key="density_rank", kind="free_text", text="?")
    problems = refusal(
        coordinator, draft_study, key="density", kind="ordinal", text="?", options=["a", "b"]
    )
    assert mentions(problems, "its rank column would clash with question density_rank")


def test_changing_an_advice_question_to_a_diagnosis_drops_the_fixed_answers(
    coordinator, draft_study
):
    question = add(coordinator, draft_study, key="advice", kind="advice", text="?")
    services.question_update(acting_user=coordinator, question=question, text="Your decision?")
    assert question.options == ["accept", "modify", "reject"] and question.text == "Your decision?"
    services.question_update(
        acting_user=coordinator, question=question, kind="diagnosis", applies_to="all"
    )
    question.refresh_from_db()
    assert question.options == list(draft_study.model.class_labels)


# The coordinator's page ---------------------------------------------------------------------


def questions_page(study) -> str:
    return f"/studies/{study.pk}/questions/"


def test_the_page_adds_an_ordinal_question_and_lists_its_categories_in_order(
    coordinator_client, draft_study
):
    response = coordinator_client.post(
        questions_page(draft_study),
        {"kind": "ordinal", "key": "birads", "text": "BI-RADS category?", "options": "\n".join(BIRADS),
         "applies_to": "all", "stage": "", "required": "on"},
    )
    assert response.status_code == 302, response.content.decode()
    assert draft_study.questions.get(key="birads").options == BIRADS
    listing = coordinator_client.get(questions_page(draft_study)).content.decode()
    positions = [listing.index(f"{rank}. {label}") for rank, label in enumerate(BIRADS, start=1)]
    assert positions == sorted(positions)


def test_the_page_refuses_an_advice_question_for_every_arm_and_says_why(
    coordinator_client, draft_study
):
    response = coordinator_client.post(
        questions_page(draft_study),
        {"kind": "advice", "key": "advice", "text": "Do you accept the advice?", "applies_to": "all",
         "stage": "", "required": "on"},
    )
    assert response.status_code == 400
    assert "only to arms that show the AI" in response.content.decode()
    assert not draft_study.questions.filter(key="advice").exists()
    added = coordinator_client.post(
        questions_page(draft_study),
        {"kind": "advice", "key": "advice", "text": "Do you accept the advice?", "applies_to": "ai",
         "stage": "", "required": "on"},
    )
    assert added.status_code == 302
    assert "accept" in coordinator_client.get(questions_page(draft_study)).content.decode()


def test_the_page_adds_a_probability_question(coordinator_client, draft_study):
    response = coordinator_client.post(
        questions_page(draft_study),
        {"kind": "probability", "key": "malignancy", "text": "Probability of malignancy?",
         "applies_to": "all", "stage": "", "required": "on"},
    )
    assert response.status_code == 302
    assert draft_study.questions.get(key="malignancy").stage == "every"
    assert "no default position" in coordinator_client.get(questions_page(draft_study)).content.decode()


# The REST API -------------------------------------------------------------------------------


def test_the_api_adds_the_new_kinds_and_refuses_their_wrong_configurations(api, draft_study):  # noqa: F811
    added = api.post(
        url(draft_study, "questions/"),
        {"key": "birads", "kind": "ordinal", "text": "BI-RADS?", "options": BIRADS},
        format="json",
    )
    assert added.status_code == 201, added.content
    assert added.json()["options"] == BIRADS and added.json()["stage"] == "every"
    advice = api.post(
        url(draft_study, "questions/"), {"key": "advice", "kind": "advice", "text": "?"}, format="json"
    )
    assert advice.status_code == 201
    assert advice.json()["options"] == ["accept", "modify", "reject"]
    assert advice.json()["applies_to"] == "ai" and advice.json()["stage"] == "final"
    for body, phrase in [
        ({"key": "a2", "kind": "advice", "text": "?", "applies_to": "all"}, "only to arms that show the AI"),
        ({"key": "a3", "kind": "advice", "text": "?", "stage": "every"}, "only at the final stage"),
        ({"key": "o1", "kind": "ordinal", "text": "?", "options": ["one"]}, "2 to 10 category labels"),
        ({"key": "o2", "kind": "ordinal", "text": "?", "options": ["a", "a"]}, "different from each other"),
    ]:
        refused = api.post(url(draft_study, "questions/"), body, format="json")
        assert refused.status_code == 400, body
        assert mentions(refused.json()["problems"], phrase), refused.json()
    keys = {q["key"] for q in api.get(url(draft_study, "questions/")).json()}
    assert {"birads", "advice"} <= keys and not {"a2", "a3", "o1", "o2"} & keys
