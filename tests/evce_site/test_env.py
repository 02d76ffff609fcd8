import pytest
from django.core.exceptions import ImproperlyConfigured

from evce_site.env import (
    DatabaseUrl,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_ip_address,
    env_list,
    env_secret,
    env_str,
    env_time_zone,
    parse_database_url,
    variables_read,
)

VAR = "EVCE_TEST_SETTING"


@pytest.fixture
def setenv(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    return lambda value: monkeypatch.setenv(VAR, value)


def test_env_str_returns_the_value_or_the_default(setenv):
    assert env_str(VAR, "fallback") == "fallback"
    setenv("value")
    assert env_str(VAR, "fallback") == "value"


@pytest.mark.parametrize("default", [True, False])
def test_env_bool_unset_gives_the_default(setenv, default):
    assert env_bool(VAR, default) is default


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "On", " true "])
def test_env_bool_true_values(setenv, raw):
    setenv(raw)
    assert env_bool(VAR, False) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "OFF", "", "  "])
def test_env_bool_false_values(setenv, raw):
    setenv(raw)
    assert env_bool(VAR, True) is False


@pytest.mark.parametrize("raw", ["2", "enabled", "y", "truee"])
def test_env_bool_refuses_anything_else(setenv, raw):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured, match=f"{VAR}=.*is not a boolean"):
        env_bool(VAR, False)


def test_env_int_unset_gives_the_default(setenv):
    assert env_int(VAR, 8000, minimum=1, maximum=65535) == 8000


@pytest.mark.parametrize(("raw", "value"), [("9979", 9979), (" 42 ", 42), ("-3", -3), ("+7", 7)])
def test_env_int_parses_integers(setenv, raw, value):
    setenv(raw)
    assert env_int(VAR, 0) == value


@pytest.mark.parametrize("raw", ["", "4.2", "abc", "80 80", "0x50"])
def test_env_int_refuses_non_integers(setenv, raw):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured, match="is not an integer"):
        env_int(VAR, 0)


def test_env_int_bounds_are_inclusive(setenv):
    setenv("1")
    assert env_int(VAR, 0, minimum=1, maximum=65535) == 1
    setenv("65535")
    assert env_int(VAR, 0, minimum=1, maximum=65535) == 65535


@pytest.mark.parametrize(
    ("raw", "message"),
    [("0", "below the minimum 1"), ("65536", "above the maximum 65535")],
)
def test_env_int_refuses_values_out_of_bounds(setenv, raw, message):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        env_int(VAR, 0, minimum=1, maximum=65535)


def test_env_float_parses_numbers_within_inclusive_bounds(setenv):
    assert env_float(VAR, 30.0, minimum=0.1) == 30.0
    setenv(" 2.5 ")
    assert env_float(VAR, 30.0, minimum=0.1, maximum=3600) == 2.5
    setenv("0.1")
    assert env_float(VAR, 30.0, minimum=0.1) == 0.1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("fast", "is not a number"),
        ("", "is not a number"),
        ("nan", "is not a finite number"),
        ("inf", "is not a finite number"),
        ("0", "below the minimum 0.1"),
        ("3601", "above the maximum 3600"),
    ],
)
def test_env_float_refuses_bad_values(setenv, raw, message):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        env_float(VAR, 30.0, minimum=0.1, maximum=3600)


def test_env_list_splits_on_commas_and_drops_blanks(setenv):
    setenv(" evce.local, 10.0.0.2,,  ")
    assert env_list(VAR, ["*"]) == ["evce.local", "10.0.0.2"]


def test_env_list_empty_value_gives_an_empty_list(setenv):
    setenv("")
    assert env_list(VAR, ["*"]) == []


def test_env_list_default_is_a_copy(setenv):
    default = ["*"]
    hosts = env_list(VAR, default)
    hosts.append("x")
    assert default == ["*"]


def test_sqlite_url_with_a_relative_path():
    assert parse_database_url("sqlite:///evce.sqlite3") == DatabaseUrl(
        "django.db.backends.sqlite3", "evce.sqlite3", "", "", "", ""
    )


def test_sqlite_url_with_an_absolute_path():
    assert parse_database_url("sqlite:////var/lib/evce/evce.sqlite3").name == (
        "/var/lib/evce/evce.sqlite3"
    )


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://"])
def test_sqlite_url_without_a_path_is_refused(url):
    with pytest.raises(ImproperlyConfigured, match="needs a file path"):
        parse_database_url(url)


def test_postgres_url_with_port_and_password():
    assert parse_database_url("postgres://evce:s3cr%40t@db.example:5433/evce_prod") == DatabaseUrl(
        engine="django.db.backends.postgresql",
        name="evce_prod",
        user="evce",
        password="s3cr@t",
        host="db.example",
        port="5433",
    )


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql"])
def test_postgres_schemes_without_port_or_credentials(scheme):
    url = parse_database_url(f"{scheme}://localhost/evce")
    assert url.engine == "django.db.backends.postgresql"
    assert (url.name, url.user, url.password, url.host, url.port) == (
        "evce",
        "",
        "",
        "localhost",
        "",
    )


@pytest.mark.parametrize("url", ["mysql://u:p@h/db", "redis://localhost/0", "evce.sqlite3"])
def test_unsupported_schemes_are_refused(url):
    with pytest.raises(ImproperlyConfigured, match="is not supported"):
        parse_database_url(url)


@pytest.mark.parametrize("url", ["postgres://localhost", "postgres://localhost/"])
def test_postgres_url_without_database_name_is_refused(url):
    with pytest.raises(ImproperlyConfigured, match="no database name"):
        parse_database_url(url)


@pytest.mark.parametrize("url", ["postgres://h:port/db", "postgres://h:99999/db"])
def test_postgres_url_with_a_bad_port_is_refused(url):
    with pytest.raises(ImproperlyConfigured, match="invalid port"):
        parse_database_url(url)


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.delenv(f"{VAR}_FILE", raising=False)
    return monkeypatch


def test_env_secret_from_the_variable_or_the_default(secret):
    assert env_secret(VAR, "fallback") == "fallback"
    secret.setenv(VAR, "s3cret")
    assert env_secret(VAR, "fallback") == "s3cret"


def test_env_secret_from_a_file_without_its_trailing_newline(secret, tmp_path):
    path = tmp_path / "secret"
    path.write_text("  s3cret with spaces  \r\n")
    secret.setenv(f"{VAR}_FILE", str(path))
    assert env_secret(VAR, "fallback") == "  s3cret with spaces  "


def test_env_secret_refuses_both_the_variable_and_the_file(secret, tmp_path):
    path = tmp_path / "secret"
    path.write_text("from-file")
    secret.setenv(VAR, "from-env")
    secret.setenv(f"{VAR}_FILE", str(path))
    with pytest.raises(ImproperlyConfigured, match=f"{VAR} and {VAR}_FILE are both set"):
        env_secret(VAR, "")


@pytest.mark.parametrize("kind", ["missing", "directory", "unreadable"])
def test_env_secret_refuses_a_file_it_cannot_read(secret, tmp_path, kind):
    path = tmp_path / "secret"
    if kind == "directory":
        path.mkdir()
    elif kind == "unreadable":
        path.write_bytes(b"\xff\xfe\xfa")  # not text
    secret.setenv(f"{VAR}_FILE", str(path))
    with pytest.raises(ImproperlyConfigured, match=f"{VAR}_FILE=.*cannot be read"):
        env_secret(VAR, "")


def test_env_choice_accepts_any_case_and_refuses_the_rest(setenv):
    assert env_choice(VAR, "INFO", ("DEBUG", "INFO")) == "INFO"
    setenv("debug")
    assert env_choice(VAR, "INFO", ("DEBUG", "INFO")) == "DEBUG"
    setenv("loud")
    with pytest.raises(ImproperlyConfigured, match=f"{VAR}='loud' is not one of DEBUG, INFO"):
        env_choice(VAR, "INFO", ("DEBUG", "INFO"))


def test_the_helpers_record_the_names_they_read(setenv):
    env_int("EVCE_TEST_RECORDED", 1)
    env_secret("EVCE_TEST_RECORDED_SECRET", "")
    read = variables_read()
    assert "EVCE_TEST_RECORDED" in read
    assert {"EVCE_TEST_RECORDED_SECRET", "EVCE_TEST_RECORDED_SECRET_FILE"} <= set(read)


@pytest.mark.parametrize("raw", ["0.0.0.0", "127.0.0.1", "::", " ::1 "])
def test_env_ip_address_accepts_addresses(setenv, raw):
    setenv(raw)
    assert env_ip_address(VAR, "0.0.0.0") == raw.strip()


@pytest.mark.parametrize("raw", ["localhost", "", "300.1.1.1", "0.0.0.0:80"])
def test_env_ip_address_refuses_anything_else(setenv, raw):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured, match=f"{VAR}=.*is not an IP address"):
        env_ip_address(VAR, "0.0.0.0")


def test_env_time_zone_accepts_known_zones_only(setenv):
    assert env_time_zone(VAR, "UTC") == "UTC"
    setenv("Europe/Paris")
    assert env_time_zone(VAR, "UTC") == "Europe/Paris"
    for raw in ["Mars/Olympus", "", "../etc/passwd"]:
        setenv(raw)
        with pytest.raises(ImproperlyConfigured, match=f"{VAR}=.*is not a known time zone"):
            env_time_zone(VAR, "UTC")
