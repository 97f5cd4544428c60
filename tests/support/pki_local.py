"""The node certificate of salt/node/pki.sls, made for real on this host: ``salt-call
--local`` applies node.pki as the CA server (minion id ``meta``) with the repository's
modules into a scratch directory (minion option ``pigsty_pki_dir``). For functional tests
of the services that use the certificate (etcd, ...)."""
import json
import os
import subprocess
import sys

import yaml

import pigsty_pki
from pillar_fixture import REPO

SALT_CALL = os.path.join(os.path.dirname(sys.executable), "salt-call")


def make_node_pki(root, node_ip):
    """Apply node.pki for minion ``meta`` at ``node_ip`` under directory ``root``; returns
    the contract's paths (ca_crt, node_crt, node_key, ...)."""
    inventory = {"pigsty": {"nodes": {"meta": {"ip": node_ip, "meta": True}}, "clusters": {}}}
    pki_dir = os.path.join(root, "pki")
    os.makedirs(os.path.join(root, "pillar"), exist_ok=True)
    with open(os.path.join(root, "pillar", "top.sls"), "w") as fh:
        fh.write("base:\n  '*':\n    - pigsty\n")
    with open(os.path.join(root, "pillar", "pigsty.sls"), "w") as fh:
        fh.write(yaml.safe_dump(inventory))
    conf = {
        "id": "meta", "file_client": "local", "master_type": "disable",
        "root_dir": os.path.join(root, "root"), "pki_dir": os.path.join(root, "root", "minion-pki"),
        "cachedir": os.path.join(root, "cache"), "log_file": os.path.join(root, "minion.log"),
        "file_roots": {"base": [os.path.join(REPO, "salt")]},
        "pillar_roots": {"base": [os.path.join(root, "pillar")]},
        "module_dirs": [os.path.join(REPO, "_modules")],
        "utils_dirs": [os.path.join(REPO, "_utils")],
        "pigsty_pki_dir": pki_dir,
        "x509_signing_policies": pigsty_pki.signing_policies(inventory["pigsty"], pki_dir),
    }
    with open(os.path.join(root, "minion"), "w") as fh:
        fh.write(yaml.safe_dump(conf))
    res = subprocess.run([SALT_CALL, "--local", "-c", root, "--out=json", "--retcode-passthrough",
                          "state.apply", "node.pki"], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError("node.pki failed:\n" + res.stdout[-4000:] + res.stderr[-4000:])
    json.loads(res.stdout)
    return pigsty_pki.paths(pki_dir)


def client_cert(paths, cn, out_dir, ca_key=None, ca_crt=None, ips=()):
    """A client certificate with CN ``cn`` signed by the CA of ``paths`` (or by
    ``ca_key``/``ca_crt``, e.g. a stranger's CA), written to ``out_dir``; returns
    (cert path, key path). For tests of etcd's certificate logins. With ``ips``: also a
    server certificate for those addresses (subjectAltName IPs, serverAuth)."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    with open(ca_key or paths["ca_key"], "rb") as fh:
        signer = serialization.load_pem_private_key(fh.read(), None)
    with open(ca_crt or paths["ca_crt"], "rb") as fh:
        issuer = x509.load_pem_x509_certificate(fh.read())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(issuer.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]
                                                 + ([ExtendedKeyUsageOID.SERVER_AUTH] if ips else [])),
                           critical=False))
    if ips:
        cert = cert.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]), critical=False)
    cert = cert.sign(signer, hashes.SHA256())
    os.makedirs(out_dir, exist_ok=True)
    crt_path, key_path = os.path.join(out_dir, cn + ".crt"), os.path.join(out_dir, cn + ".key")
    with open(crt_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return crt_path, key_path


def stranger_ca(out_dir):
    """A self-signed CA that is not the Pigsty CA: (cert path, key path)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stranger CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    os.makedirs(out_dir, exist_ok=True)
    crt_path, key_path = os.path.join(out_dir, "stranger-ca.crt"), os.path.join(out_dir, "stranger-ca.key")
    with open(crt_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    return crt_path, key_path
