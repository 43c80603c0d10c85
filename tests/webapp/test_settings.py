import pytest

from webapp.settings import SettingsError, load_settings, resolve_instance


def test_defaults_without_environment():
    values = load_settings({})
    assert values["DATABASE_URL"] is None
    assert values["REDIS_URL"] is None
    assert values["SYNC_MAX_REMOVE_SHARE"] == 0.5


@pytest.mark.parametrize(("env", "value", "needle"), [
    ("SHOPRELAY_SYNC_MAX_REMOVE_SHARE", "1.5", "between 0 and 1"),
    ("SHOPRELAY_API_MAX_BYTES", "lots", "SHOPRELAY_API_MAX_BYTES"),
    ("SHOPRELAY_API_MAX_BYTES", "-3", "positive"),
    ("DATABASE_URL", "mysql://x/y", "sqlite:/// or postgresql://"),
    ("REDIS_URL", "localhost:6379", "redis://"),
    ("SHOPRELAY_LOG_LEVEL", "LOUD", "DEBUG, INFO"),
])
def test_bad_value_fails_with_a_message_naming_the_variable(env, value, needle):
    with pytest.raises(SettingsError) as caught:
        load_settings({env: value})
    assert env in str(caught.value)
    assert needle in str(caught.value)


def test_postgres_urls_use_psycopg3():
    assert load_settings({"DATABASE_URL": "postgres://u@h/db"})["DATABASE_URL"] == "postgresql+psycopg://u@h/db"


def test_generated_secrets_are_persisted_once(tmp_path):
    first = resolve_instance(load_settings({"SHOPRELAY_INSTANCE_PATH": str(tmp_path / "inst")}))
    second = resolve_instance(load_settings({"SHOPRELAY_INSTANCE_PATH": str(tmp_path / "inst")}))
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["ENCRYPTION_KEY"] == second["ENCRYPTION_KEY"]
    assert first["DATABASE_URL"].endswith("inst/shoprelay.db")
    assert (tmp_path / "inst" / "encryption.key").stat().st_mode & 0o077 == 0


def test_bad_encryption_key_is_rejected(tmp_path):
    values = load_settings({"SHOPRELAY_INSTANCE_PATH": str(tmp_path), "SHOPRELAY_ENCRYPTION_KEY": "short"})
    with pytest.raises(SettingsError, match="SHOPRELAY_ENCRYPTION_KEY"):
        resolve_instance(values)
