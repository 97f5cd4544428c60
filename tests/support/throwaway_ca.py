"""A throwaway CA and node certificates laid out as node.pki lays them out (ca.crt,
node.crt, node.key side by side), for functional tests of the services that serve the node
certificate (HAProxy's admin page, the portal). Made with the ``cryptography`` package (in
Salt's venv), in a fraction of a second; nothing is installed."""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write(path, data, mode=0o644):
    with open(path, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)
    return path


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CA:
    """A CA in ``directory`` (ca.crt, ca.key); ``node(...)`` signs node certificates."""

    def __init__(self, directory, cn="Test CA"):
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                    critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                                    critical=False)
                     .sign(self.key, hashes.SHA256()))
        self.ca_crt = _write(os.path.join(directory, "ca.crt"),
                             self.cert.public_bytes(serialization.Encoding.PEM))
        self.ca_key = _write(os.path.join(directory, "ca.key"), _key_pem(self.key), 0o600)

    def node(self, out_dir, cn, dns=(), ips=()):
        """node.crt and node.key in ``out_dir`` (with a copy of ca.crt), signed by this CA
        with CN ``cn`` and SANs DNS:``dns``..., IP:``ips``... (server and client auth, as
        node.pki's policy). Returns {"ca_crt", "node_crt", "node_key"}."""
        os.makedirs(out_dir, exist_ok=True)
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        paths = {"ca_crt": os.path.join(out_dir, "ca.crt"), "node_crt": os.path.join(out_dir, "node.crt"),
                 "node_key": os.path.join(out_dir, "node.key")}
        if paths["ca_crt"] != self.ca_crt:
            _write(paths["ca_crt"], self.cert.public_bytes(serialization.Encoding.PEM))
        _write(paths["node_crt"], cert.public_bytes(serialization.Encoding.PEM))
        _write(paths["node_key"], _key_pem(key), 0o644)   # tests run daemons as other users
        return paths
