"""The study's sample-size page: power and sample size with the study's own OR analysis as the
pilot, or assumed variance components when it has none; coordinators and statistician only."""

import pytest
from django.urls import reverse

from analysis.export import study_mrmc_data
from analysis.stats.mrmc import or_analysis
from analysis.stats.power import arms_power, assumed_components, cases_needed, readers_needed
from analysis.study_data import study_rows
from studies import services as study_services
from tests.analysis.conftest import finished_study  # noqa: F401
from tests.analysis.test_export import closed_study, crossed_study  # noqa: F401
from tests.studies.conftest import (  # noqa: F401
    draft_study,
    ready_study,
    study_collection,
    study_model,
)

pytestmark = pytest.mark.django_db

COMPONENTS = {"var_tr": "0.0002", "var_error": "0.0008", "cov1": "0.00035", "cov2": "0.00034",
              "cov3": "0.00024", "pilot_cases": "114"}


def url(study):
    return reverse("analysis:study-power", args=[study.pk])


def test_the_page_uses_the_study_analysis_and_shows_a_power_table(
    coordinator_client, crossed_study  # noqa: F811
):
    pilot = or_analysis(study_mrmc_data(study_rows(study=crossed_study)))
    page = coordinator_client.get(url(crossed_study))
    assert page.status_code == 200
    html = page.content.decode()
    prefilled = " ".join(f"{a:.4f}" for a in pilot.arm_means)
    assert f'value="{prefilled}"' in html  # the observed arm AUCs are the default effect
    assert 'name="var_tr"' not in html  # the study's own components are used
    assert 'data-testid="power-table"' not in html
    posted = coordinator_client.post(url(crossed_study), {
        "readers": "4 6", "cases": "80", "aucs": "0.80 0.85 0.85 0.90", "alpha": "0.05",
        "analysis": "rrrc", "target_power": "0.8"})
    assert posted.status_code == 200
    plan = posted.context["plan"]
    assert [(r.n_readers, r.n_cases) for r in plan.table] == [(4, 80), (6, 80)]
    for row in plan.table:
        expected = arms_power(pilot, row.n_readers, 80, (0.80, 0.85, 0.85, 0.90))
        assert row.power == pytest.approx(expected.power, rel=1e-12) and row.df1 == 3
        assert f"<td>{expected.power:.3f}</td>" in posted.content.decode()
    aucs, html = (0.80, 0.85, 0.85, 0.90), posted.content.decode()
    assert [n.n_given for n in plan.cases_needed] == [4, 6]
    assert [n.n_given for n in plan.readers_needed] == [80]
    for n in (*plan.cases_needed, *plan.readers_needed):
        search = cases_needed if n.given == "readers" else readers_needed
        try:  # the study's randomisation decides whether the target is within reach
            expected = search(pilot, n.n_given, aucs, target=0.8)
        except ValueError as exc:  # out of reach: said on its row, not a 500
            assert n.result is None and n.problem == str(exc) and str(exc) in html
        else:
            assert n.result == expected and f"<td>{expected.power:.3f}</td>" in html
    assert 'data-testid="power-needed"' in posted.content.decode()


def test_without_an_analysis_the_page_asks_for_assumed_components(
    coordinator_client, finished_study  # noqa: F811
):
    page = coordinator_client.get(url(finished_study))
    assert page.status_code == 200 and "cannot be the pilot yet" in page.content.decode()
    posted = coordinator_client.post(url(finished_study), {
        "readers": "5", "cases": "100 200", "aucs": "0.8 0.85 0.9", "alpha": "0.05",
        "analysis": "all"})
    assert posted.status_code == 200 and posted.context["plan"] is None
    assert "needed: the study has no analysis to use as the pilot" in posted.content.decode()
    posted = coordinator_client.post(url(finished_study), {
        "readers": "5", "cases": "100 200", "aucs": "0.8 0.85 0.9", "alpha": "0.05",
        "analysis": "all", **COMPONENTS})
    plan = posted.context["plan"]
    assert len(plan.table) == 3 * 2
    vc = assumed_components(**{k: float(v) for k, v in COMPONENTS.items()})
    for row in plan.table:
        assert row == arms_power(vc, 5, row.n_cases, (0.8, 0.85, 0.9), analysis=row.analysis)


@pytest.mark.parametrize(("data", "message"), [
    ({"readers": "five", "cases": "100"}, "readers: not a number: five"),
    ({"readers": "1", "cases": "100"}, "readers: each must be from 2 to 1000, not 1"),
    ({"readers": "5", "cases": "100", "aucs": "0.8"}, "give at least two assumed AUCs"),
    ({"readers": "5", "cases": "100", "alpha": "3"}, "less than or equal to 0.5"),
    ({"readers": "5"}, "give readers and cases for a power table"),
    ({"readers": "5", "cases": "100", "var_error": "0.0003", "cov1": "0.0003", "cov2": "0",
      "cov3": "0", "var_tr": "0", "analysis": "frrc"}, "non-positive error term"),
])
def test_bad_input_is_a_page_with_the_error(coordinator_client, finished_study, data, message):  # noqa: F811
    form = {"aucs": "0.8 0.9", "alpha": "0.05", "analysis": "rrrc", **COMPONENTS, **data}
    posted = coordinator_client.post(url(finished_study), form)
    assert posted.status_code == 200
    assert posted.context["plan"] is None
    assert message in posted.content.decode()


def test_the_statistician_sees_the_page_and_readers_and_outsiders_get_404(
    client, coordinator, statistician, reader_a, outsider, finished_study  # noqa: F811
):
    study_services.study_role_add(
        acting_user=coordinator, study=finished_study, user=statistician, role="statistician"
    )
    client.force_login(statistician)
    assert client.get(url(finished_study)).status_code == 200
    for user in (reader_a, outsider):
        client.force_login(user)
        assert client.get(url(finished_study)).status_code == 404
        assert client.post(url(finished_study), {"readers": "5"}).status_code == 404
    client.logout()
    assert client.get(url(finished_study)).status_code == 302


def test_every_study_page_links_to_the_sample_size_page(coordinator_client, finished_study):  # noqa: F811
    study = finished_study
    page = coordinator_client.get(reverse("studies:study-detail", args=[study.pk])).content
    assert f'href="{url(study)}"'.encode() in page
    power = coordinator_client.get(url(study)).content.decode()
    assert f'<a href="{url(study)}" aria-current="page">Sample size</a>' in power
