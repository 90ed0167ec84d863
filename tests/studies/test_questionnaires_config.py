"""A study's end-of-session questionnaires: the coordinator's service, page and API (shape
refusals, the audit row, frozen once the study opens)."""

from __future__ import annotations

import pytest

from core.errors import ServiceError
from core.models import AuditEntry
from studies import services
from tests.studies.api_helpers import client_for as api_client_for
from tests.studies.reader_views_helpers import client_for

CONFIG = [
    {"instrument": "nasa_tlx", "after": "each_session", "pairwise": True},
    {"instrument": "sus", "after": "last_session"},
    {"instrument": "jian_trust", "after": "each_session"},
]


def _audit(study):
    return AuditEntry.objects.filter(action="study.questionnaires_set", study_id=study.pk)


def _set(coordinator, study, config):
    return services.study_questionnaires_set(
        acting_user=coordinator, study=study, questionnaires=config
    )


# The service ------------------------------------------------------------------------------


def test_the_configuration_is_stored_normalised_and_audited(coordinator, draft_study):
    config = [{"instrument": "sus", "after": "last_session", "pairwise": False}, CONFIG[0]]
    study = _set(coordinator, draft_study, config)
    study.refresh_from_db()
    assert study.questionnaires == [
        {"instrument": "sus", "after": "last_session"},
        {"instrument": "nasa_tlx", "after": "each_session", "pairwise": True},
    ]
    (entry,) = _audit(study)
    assert entry.actor == coordinator
    assert entry.before == {"questionnaires": []}
    assert entry.after == {"questionnaires": study.questionnaires}


def test_setting_the_same_configuration_again_records_nothing(coordinator, draft_study):
    _set(coordinator, draft_study, CONFIG)
    _set(coordinator, draft_study, CONFIG)
    assert _audit(draft_study).count() == 1


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("sus", "questionnaires must be a list"),
        ([["sus"]], "questionnaire 1: expected an object"),
        ([{"instrument": "tlx", "after": "each_session"}], "unknown instrument 'tlx'"),
        ([{"instrument": "sus", "after": "sometimes"}], "after must be one of"),
        ([{"instrument": "sus", "after": "each_session", "pairwise": True}], "only nasa_tlx"),
        ([{"instrument": "nasa_tlx", "after": "each_session", "pairwise": "yes"}], "true or false"),
        ([{"instrument": "sus", "after": "each_session", "order": 1}], "unknown field 'order'"),
        ([CONFIG[1], CONFIG[1]], "questionnaire 2: sus is configured more than once"),
    ],
)
def test_bad_configurations_are_refused_with_their_problems(
    coordinator, draft_study, config, problem
):
    with pytest.raises(ServiceError) as refused:
        _set(coordinator, draft_study, config)
    assert any(problem in line for line in refused.value.problems)
    draft_study.refresh_from_db()
    assert draft_study.questionnaires == []
    assert not _audit(draft_study).exists()


def test_every_problem_is_listed_at_once(coordinator, draft_study):
    with pytest.raises(ServiceError) as refused:
        _set(
            coordinator, draft_study, [{"instrument": "x", "after": "y"}, {"after": "each_session"}]
        )
    assert len(refused.value.problems) == 3


def test_the_configuration_is_frozen_when_the_study_opens(coordinator, ready_study):
    _set(coordinator, ready_study, CONFIG[:1])
    study = services.study_open(acting_user=coordinator, study=ready_study)
    with pytest.raises(ServiceError, match="frozen"):
        _set(coordinator, study, CONFIG)
    study.refresh_from_db()
    assert study.questionnaires == CONFIG[:1]


# The page ---------------------------------------------------------------------------------


def _page_url(study):
    return f"/studies/{study.pk}/questionnaires/"


def test_the_page_lists_the_instruments_and_saves_the_choice(coordinator, draft_study):
    client = client_for(coordinator)
    page = client.get(_page_url(draft_study))
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("NASA Task Load Index", "System Usability Scale", "Jian et al. 2000"):
        assert name in html
    assert 'aria-current="page">Questionnaires</a>' in html
    answer = client.post(
        _page_url(draft_study),
        {
            "nasa_tlx_on": "1",
            "nasa_tlx_after": "each_session",
            "nasa_tlx_pairwise": "1",
            "sus_on": "1",
            "sus_after": "last_session",
            "jian_trust_after": "each_session",  # not ticked: not asked
        },
    )
    assert answer.status_code == 302
    draft_study.refresh_from_db()
    assert draft_study.questionnaires == [
        {"instrument": "nasa_tlx", "after": "each_session", "pairwise": True},
        {"instrument": "sus", "after": "last_session"},
    ]
    assert "checked" in client.get(_page_url(draft_study)).content.decode()


def test_the_page_shows_a_refusal_with_400(coordinator, draft_study):
    answer = client_for(coordinator).post(
        _page_url(draft_study), {"sus_on": "1", "sus_after": "never"}
    )
    assert answer.status_code == 400
    assert "after must be one of" in answer.content.decode()
    draft_study.refresh_from_db()
    assert draft_study.questionnaires == []


def test_the_page_refuses_changes_once_open(coordinator, open_study):
    answer = client_for(coordinator).post(
        _page_url(open_study), {"sus_on": "1", "sus_after": "each_session"}
    )
    assert answer.status_code == 400
    assert "frozen" in answer.content.decode()


def test_only_the_studys_people_see_the_page(draft_study, outsider):
    assert client_for(outsider).get(_page_url(draft_study)).status_code == 404


# The API ----------------------------------------------------------------------------------


def _api_url(study):
    return f"/api/v1/studies/{study.pk}/questionnaires/"


def test_the_api_reads_and_replaces_the_configuration(coordinator, draft_study):
    api = api_client_for(coordinator)
    got = api.get(_api_url(draft_study))
    assert got.status_code == 200
    assert got.json()["questionnaires"] == []
    assert [i["key"] for i in got.json()["instruments"]] == ["nasa_tlx", "sus", "jian_trust"]
    put = api.put(_api_url(draft_study), {"questionnaires": CONFIG}, format="json")
    assert put.status_code == 200
    assert put.json()["questionnaires"] == [
        CONFIG[0],
        {"instrument": "sus", "after": "last_session"},
        {"instrument": "jian_trust", "after": "each_session"},
    ]
    assert _audit(draft_study).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"questionnaires": "sus"},
        {"questionnaires": [{"instrument": "sus", "after": "later"}]},
        {"questionnaires": [None]},
    ],
)
def test_the_api_refuses_bad_input_with_400(coordinator, draft_study, body):
    answer = api_client_for(coordinator).put(_api_url(draft_study), body, format="json")
    assert answer.status_code == 400
    draft_study.refresh_from_db()
    assert draft_study.questionnaires == []


def test_the_api_refuses_a_frozen_study_and_other_users(coordinator, open_study, outsider):
    body = {"questionnaires": CONFIG}
    frozen = api_client_for(coordinator).put(_api_url(open_study), body, format="json")
    assert frozen.status_code == 400
    assert "frozen" in str(frozen.json())
    assert api_client_for(outsider).get(_api_url(open_study)).status_code == 404
