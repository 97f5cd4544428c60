"""Values encrypted for Salt's gpg renderer, without gpg (_utils/pigsty_gpg.py): a PGP
message left encrypted in the pillar is reported as such, naming the field and the key it
is for, never taken for a bad password; the paste-ready YAML block; the encrypt helper's
refusals (before gpg runs); the import runner's note on overwriting an encrypted file.
The real thing (gpg, Salt's renderer and pillar compiler): tests/functional/test_pillar_gpg.py."""
import copy
import os

import pytest
import yaml

import pigsty_gpg
import pigsty_inventory
from loader import load_module
from pillar_fixture import REPO, default_pillar, meta_pillar

# encrypted for a throwaway key (subkey 37F45AA29E12439A) that no longer exists
MESSAGE = """-----BEGIN PGP MESSAGE-----

hQGMAzf0WqKeEkOaAQwAmThEy82/xqPsfgTFL6qbZHqfcVWozn3SDFpkcWHLyMUr
BK8FWRi/H7LWXLBe6103avmMOWyO/BtHC9QM1QY77qF0zqRYfvjGBypqKG/RaxRE
1/WIU7hgrssX7DjrueVnmnyB50NbuziCMoCYrXQ1zuiwdWb4TjwKeqivIsUmGYuh
24h659EwP8+0pKAE66Ti1rF8pFPybhoijyHigTyZIJQNnEVDsp7b3TQ5Utmo3WFE
Jc90eLeWhSGNmvcJj9hZOu6dAwY+JCA0+pdN9KxpQ27RJzeZ0h889URX/Ozha4CK
bCGF8en9nrTTqgKKTm6YWaydFuZ4kpgFsAzl5MvCd2j51Vtcn2e3TXDjzcPjob4G
JjSDVF7Ul7AJuBWXHpexFjfpXqgyqNsHUIeTO6695k1tcvUEKRW/tO6FNFRuMg6m
s/N1cVvOc7g2y8u+96xdO3wCMl4CTvDjABzk6cGBXku1xLUEu4pEpy+bWHCGbA6G
04Ba3M7jf6EmhMENvcQO0kMB/oAtGREszZ8z4/Pw0YnGvMWdYeYnlB64EU1Qm0P4
iqIuge/Z1FaoRli2EWdoD89wB/cemDm198Us3GswgokN+1Mp
=DZwG
-----END PGP MESSAGE-----
"""
KEY = "37F45AA29E12439A"


def test_the_recipient_is_read_from_the_message_without_decrypting():
    assert pigsty_gpg.recipients(MESSAGE) == [KEY]
    assert pigsty_gpg.recipients(MESSAGE.replace("\n", "\\n")) == [KEY]   # CLI-escaped form
    assert pigsty_gpg.recipients("  prefix " + MESSAGE) == [KEY]
    assert pigsty_gpg.recipients("Sandbox.DBA.test") == []
    assert pigsty_gpg.recipients(pigsty_gpg.BEGIN + "\n\n!!!\n" + pigsty_gpg.END) == []


def test_a_message_left_encrypted_names_the_field_and_key_not_a_bad_password():
    pillar = default_pillar(clusters=["pg-test"])
    cvars = pillar["pigsty"]["clusters"]["pg-test"]["vars"]
    cvars["pg_admin_password"] = MESSAGE
    cvars["pg_users"][0]["password"] = MESSAGE
    problems = pigsty_inventory.validate(pillar, private={"pg-test"})
    assert len(problems) == 2, problems
    for field in ("pg_admin_password", "pg_users[0]:password"):
        assert any(p.startswith("pigsty:clusters:pg-test:vars:%s: still encrypted (a PGP message "
                                "for key %s that the master did not decrypt)" % (field, KEY))
                   for p in problems), problems
    text = "\n".join(problems)
    assert "control character" not in text and "BEGIN PGP" not in text and "#!yaml|gpg" in text


def test_a_message_in_the_public_part_is_reported_too():
    pillar = default_pillar(clusters=[])
    pillar["pigsty"]["vars"]["pg_vip_interface"] = MESSAGE
    problems = pigsty_inventory.validate(pillar, private=set())
    assert any(p.startswith("pigsty:vars:pg_vip_interface: still encrypted") for p in problems)


def test_the_meta_node_secrets_left_encrypted():
    pillar = copy.deepcopy(meta_pillar())
    pillar["pigsty"]["dcs"]["etcd_root_password"] = MESSAGE
    pillar["pigsty"]["dcs"]["etcd_users"]["pg-test"] = MESSAGE
    pillar["pigsty"]["infra"]["portal_password"] = MESSAGE
    dcs = pigsty_inventory.validate_dcs_secrets(pillar)
    assert sorted(p.split(": ", 1)[0] for p in dcs) == [
        "pigsty:dcs:etcd_root_password", "pigsty:dcs:etcd_users:pg-test"], dcs
    assert all("still encrypted" in p for p in dcs)
    web = pigsty_inventory.validate_web_secrets(pillar)
    assert [p.split(": ", 1)[0] for p in web] == ["pigsty:infra:portal_password"], web
    assert "still encrypted" in web[0]


def test_the_yaml_block_reads_back_as_the_message():
    block = pigsty_gpg.yaml_block(MESSAGE, indent=4, name="pg_admin_password")
    assert block.startswith("    pg_admin_password: |\n      -----BEGIN PGP MESSAGE-----\n")
    doc = yaml.safe_load("vars:\n" + block)
    assert doc["vars"]["pg_admin_password"].strip() == MESSAGE.strip()
    assert yaml.safe_load("x: " + pigsty_gpg.yaml_block(MESSAGE))["x"].strip() == MESSAGE.strip()


@pytest.mark.parametrize("secret, recipient, fragment", [
    ("", "master", "secret: expected a non-empty value"),
    ("two\nlines", "master", "secret: it contains a control character"),
    ("tab\there", "master", "secret: it contains a control character"),
    ("fine", "", "recipient: expected"),
    ("fine", "--homedir=/tmp", "recipient: expected"),
])
def test_encrypt_refuses_before_gpg_runs(secret, recipient, fragment):
    with pytest.raises(pigsty_gpg.EncryptError) as err:
        pigsty_gpg.encrypt(secret, recipient, gpg="/nonexistent/gpg")
    assert fragment in str(err.value)
    assert secret not in str(err.value) or not secret


def test_pipeline_and_encrypted_files(tmp_path):
    plain = tmp_path / "plain.sls"
    plain.write_text("pigsty: {}\n")
    shebang = tmp_path / "shebang.sls"
    shebang.write_text("#!jinja|yaml|gpg\npigsty: {}\n")
    inline = tmp_path / "inline.sls"
    inline.write_text("pigsty:\n" + pigsty_gpg.yaml_block(MESSAGE, indent=2, name="x"))
    assert pigsty_gpg.pipeline(str(shebang)) == ["jinja", "yaml", "gpg"]
    assert pigsty_gpg.pipeline(str(plain)) == []
    assert pigsty_gpg.encrypted_files([str(plain), str(shebang), str(inline),
                                       str(tmp_path / "missing.sls")]) == [str(shebang), str(inline)]


def test_the_import_says_when_it_overwrites_an_encrypted_file(tmp_path):
    root = tmp_path / "pillar"
    (root / "clusters").mkdir(parents=True)
    (root / "clusters" / "pg-test.sls").write_text("#!yaml|gpg\npigsty: {}\n")
    runner = load_module("_runners/pigsty.py", opts={"pillar_roots": {"base": [str(root)]}}, context={})
    path = os.path.join(REPO, "tests", "data", "pigsty-v1.5.1.yml")
    out = runner.import_(path=path, test=True, force=True)
    assert "clusters/pg-test.sls held values encrypted for the gpg renderer: would be written " \
           "in plain text" in out["summary"]
    out = runner.import_(path=path)
    assert out["result"] is False and "held values encrypted" not in out.get("summary", "")


def test_the_reason_comes_from_gpg_status_lines(tmp_path):
    said = ("Could not decrypt cipher b'%s', received: b'[GNUPG:] ENC_TO %s 1 0\\n[GNUPG:] "
            "NO_SECKEY %s\\ngpg: decryption failed: No secret key\\n'" % ("x" * 20, KEY, KEY))
    assert pigsty_gpg._reason(said, str(tmp_path)) == (
        "it was encrypted for key %s, whose secret key is not in the master's key ring "
        "(gpg_keydir %s)" % (KEY, tmp_path))
    assert "which does not exist" in pigsty_gpg._reason(said, str(tmp_path / "nowhere"))
    assert pigsty_gpg._reason("GPG unavailable", str(tmp_path)).startswith(
        "the gpg program is not installed on the master")
    other = "Could not decrypt cipher b'x', received: b'gpg: no valid OpenPGP data found.\\n'"
    assert pigsty_gpg._reason(other, str(tmp_path)).endswith(": no valid OpenPGP data found.")
