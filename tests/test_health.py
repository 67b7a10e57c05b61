def test_healthz_ok(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok", "db": "ok"}


def test_healthz_503_when_database_is_down(tmp_path):
    from advisors import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
    assert r.get_json()["db"] != "ok"
