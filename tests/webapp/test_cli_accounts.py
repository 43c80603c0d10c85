from webapp.models import ApiKey, User


def test_users_create_prints_password_once(runner, db):
    result = runner.invoke(args=["users", "create", "Boss@Example.com"])
    assert result.exit_code == 0, result.output
    assert "Password (shown once):" in result.output
    assert db.session.scalars(db.select(User)).one().email == "boss@example.com"
    again = runner.invoke(args=["users", "create", "boss@example.com"])
    assert again.exit_code != 0
    assert "already exists" in again.output


def test_apikeys_create_and_revoke(runner, client, db):
    result = runner.invoke(args=["apikeys", "create", "store backend"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[0]
    assert key.startswith("sr_")
    assert client.get("/api/v1/ping", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    stored = db.session.scalars(db.select(ApiKey)).one()
    assert runner.invoke(args=["apikeys", "revoke", str(stored.id)]).exit_code == 0
    assert client.get("/api/v1/ping", headers={"Authorization": f"Bearer {key}"}).status_code == 401
