"""The admin lists studies read-only and never shows what an arm is."""

from __future__ import annotations


def test_the_admin_never_shows_an_arms_explainer(client, site_admin, open_study):
    client.force_login(site_admin)
    for url in ("/admin/studies/study/", f"/admin/studies/study/{open_study.pk}/change/", "/admin/studies/enrollment/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"gradcam" not in response.content
    assert client.get("/admin/studies/arm/").status_code == 404


def test_the_admin_cannot_change_a_study(client, site_admin, open_study):
    client.force_login(site_admin)
    response = client.post(f"/admin/studies/study/{open_study.pk}/change/", {"title": "hacked"})
    open_study.refresh_from_db()
    assert response.status_code == 403
    assert open_study.title != "hacked"
