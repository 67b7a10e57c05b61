def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok", "db": "ok"}


def test_login_and_home(client, auth, make):
    user = make.user("finance_office")
    r = auth.login(user.username)
    assert r.status_code == 302
    r = client.get("/")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
