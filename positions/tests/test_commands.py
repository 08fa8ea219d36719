"""generate_keys and create_api_client."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from positions import tokens
from positions.models import ApiClient


def test_generate_keys_writes_a_working_pair(tmp_path):
    call_command("generate_keys", "--out", str(tmp_path), "--bits", "2048", stdout=StringIO())
    private_pem = (tmp_path / "private_key.pem").read_bytes()
    public_pem = (tmp_path / "public_key.pem").read_text()
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----")  # X.509 SPKI
    token = tokens.token_parse(tokens.token_sign(private_pem, "c1"))
    tokens.token_verify_signature(token, public_pem)
    assert (tmp_path / "private_key.pem").stat().st_mode & 0o077 == 0


def test_generate_keys_never_overwrites(tmp_path):
    (tmp_path / "public_key.pem").write_text("keep me")
    with pytest.raises(CommandError, match="refusing to overwrite"):
        call_command("generate_keys", "--out", str(tmp_path))
    assert (tmp_path / "public_key.pem").read_text() == "keep me"
    assert not (tmp_path / "private_key.pem").exists()


def test_generate_keys_rejects_odd_sizes(tmp_path):
    with pytest.raises(CommandError):
        call_command("generate_keys", "--out", str(tmp_path), "--bits", "1024")


@pytest.mark.django_db
def test_create_api_client_json(client):
    out = StringIO()
    call_command("create_api_client", "聚宽", "--client-id", "jq-1", "--json", stdout=out)
    printed = json.loads(out.getvalue())
    assert set(printed) == {"client_id", "api_key"}
    assert printed["client_id"] == "jq-1"
    assert client.get("/api/v1/positions/all", HTTP_X_API_KEY=printed["api_key"]).status_code == 200


@pytest.mark.django_db
def test_create_api_client_with_public_key_and_scope(tmp_path, rsa_keys):
    (tmp_path / "public_key.pem").write_text(rsa_keys[1])
    out = StringIO()
    call_command(
        "create_api_client",
        "x",
        "--public-key",
        str(tmp_path / "public_key.pem"),
        "--strategy",
        "甲",
        "--strategy",
        "乙",
        "--json",
        stdout=out,
    )
    api_client = ApiClient.objects.get(client_id=json.loads(out.getvalue())["client_id"])
    assert api_client.public_key.startswith("-----BEGIN PUBLIC KEY-----")
    assert not api_client.all_strategies
    assert sorted(api_client.strategies.values_list("name", flat=True)) == ["乙", "甲"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--client-id", "bad id"], "client_id"),
        (["--public-key", "/nonexistent/key.pem"], "cannot read public key"),
        (["--strategy", "a/b"], "'/'"),
    ],
)
def test_create_api_client_errors(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_client", "x", *args, stdout=StringIO())
    assert not ApiClient.objects.exists()


@pytest.mark.django_db
def test_create_api_client_rejects_duplicate_id():
    call_command("create_api_client", "x", "--client-id", "dup", stdout=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_api_client", "y", "--client-id", "dup", stdout=StringIO())


@pytest.mark.django_db
def test_create_api_client_rejects_small_rsa_key(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = small.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "k.pem").write_bytes(pem)
    with pytest.raises(CommandError, match="2048-4096"):
        call_command("create_api_client", "x", "--public-key", str(tmp_path / "k.pem"), stdout=StringIO())
