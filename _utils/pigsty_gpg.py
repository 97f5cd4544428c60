"""Pillar values encrypted for Salt's gpg renderer (docs/security.md, "Encrypted pillar").

A pillar file may start with ``#!yaml|gpg`` (or ``#!jinja|yaml|gpg``) and hold values as
ASCII-armored PGP messages; Salt's gpg renderer decrypts them on the master, with the key
ring in ``gpg_keydir``, before the pillar leaves it. This module does not decrypt anything
for use; it:

- names the pillar path of every value that is still a PGP message in a compiled pillar
  (``ciphertext_problems``): the renderer did not decrypt it, because its file's shebang does
  not end in ``gpg`` or ``gpg_decrypt_must_succeed`` is off. Such a value must never be
  taken for a password;
- explains a pillar file whose rendering failed on a value the master cannot decrypt
  (``explain_render_failure``): the field, the key it was encrypted for, the key ring looked
  in; never the value;
- encrypts a value for a recipient's public key (``encrypt``, for scripts/pillar_encrypt).

The checks are pure Python; ``explain_render_failure`` needs a salt.pillar.Pillar (master
side, runners only).
"""
import base64
import binascii
import collections.abc
import os
import re
import shutil
import subprocess

BEGIN = "-----BEGIN PGP MESSAGE-----"
END = "-----END PGP MESSAGE-----"
BLOCK_RE = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
SHEBANG_HINT = ("the file that sets it must start with '#!yaml|gpg' (or '#!jinja|yaml|gpg') "
                "and the master's gpg_keydir must hold the secret key it was encrypted for")


def is_ciphertext(value):
    """Whether ``value`` is (or holds) an ASCII-armored PGP message."""
    return isinstance(value, (str, bytes)) and (
        BEGIN in value if isinstance(value, str) else BEGIN.encode() in value)


def ciphertexts(data, path):
    """(pillar path, value) of every string in ``data`` that holds a PGP message; ``path`` is
    the pillar path of ``data`` itself ("pigsty:clusters:pg-test"), list items are
    ``path[i]``."""
    found = []
    stack = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, collections.abc.Mapping):
            stack.extend(("%s:%s" % (where, k), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend(("%s[%d]" % (where, i), v) for i, v in reversed(list(enumerate(value))))
        elif is_ciphertext(value):
            found.append((where, value))
    return found


def _holds_ciphertext(value):
    """Whether any string in ``value`` holds a PGP message (no paths built: the usual answer
    is no, for every cluster of the inventory)."""
    if isinstance(value, str):
        return BEGIN in value
    if isinstance(value, collections.abc.Mapping):
        return any(_holds_ciphertext(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_ciphertext(v) for v in value)
    return isinstance(value, bytes) and BEGIN.encode() in value


def ciphertext_problems(data, path):
    """One problem per value of ``data`` that is still a PGP message (never its text)."""
    if not _holds_ciphertext(data):
        return []
    problems = []
    for where, value in ciphertexts(data, path):
        keys = recipients(value)
        problems.append("%s: still encrypted (a PGP message%s that the master did not "
                        "decrypt): %s" % (where, " for key %s" % " or ".join(keys) if keys else "",
                                          SHEBANG_HINT))
    return problems


def recipients(value):
    """The key ids (16 hex digits) a PGP message is encrypted for, read from its public-key
    session key packets (RFC 4880 5.1) without decrypting anything; [] when the text is not
    a readable message or names no key (``--throw-keyids``)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    match = BLOCK_RE.search(value or "")
    if not match:
        return []
    lines = match.group().replace("\\n", "\n").splitlines()[1:-1]
    body = []
    seen_blank = not any(":" in line for line in lines[:1])  # no armor headers at all
    for line in lines:
        line = line.strip()
        if not seen_blank:
            seen_blank = not line
            continue
        if line.startswith("="):
            break                                   # the armor checksum
        body.append(line)
    try:
        data = base64.b64decode("".join(body), validate=True)
    except (ValueError, binascii.Error):
        return []
    found = []
    pos = 0
    while pos < len(data):
        head = data[pos]
        if not head & 0x80:
            break
        if head & 0x40:                             # new packet format
            tag, pos = head & 0x3F, pos + 1
            if pos >= len(data):
                break
            first = data[pos]
            if first < 192:
                length, pos = first, pos + 1
            elif first < 224 and pos + 1 < len(data):
                length, pos = ((first - 192) << 8) + data[pos + 1] + 192, pos + 2
            elif first == 255 and pos + 4 < len(data):
                length, pos = int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5
            else:
                break                               # partial lengths: not a session key packet
        else:                                       # old packet format
            tag, size = (head >> 2) & 0x0F, {0: 1, 1: 2, 2: 4}.get(head & 3)
            if size is None or pos + 1 + size > len(data):
                break
            length, pos = int.from_bytes(data[pos + 1:pos + 1 + size], "big"), pos + 1 + size
        if tag == 1 and length >= 10 and pos + 9 <= len(data):
            keyid = data[pos + 1:pos + 9].hex().upper()
            if keyid.strip("0") and keyid not in found:
                found.append(keyid)
        elif tag != 3:                              # past the session key packets
            break
        pos += length
    return found


# ------------------------------------------------------------------ the master's side
def pipeline(path):
    """The renderer names of a pillar file's shebang (``#!jinja|yaml|gpg`` -> [jinja, yaml,
    gpg]); [] without a shebang (the master's default renderer applies)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            line = fh.readline()
    except OSError:
        return []
    if not line.startswith("#!") or line.startswith("#!/"):
        return []
    return [part.strip().split(" ", 1)[0] for part in line[2:].strip().split("|")]


def keydir(opts):
    """The key ring Salt's gpg renderer decrypts with: ``gpg_keydir``, by default
    ``gpgkeys`` beside the master's configuration file (/etc/salt/gpgkeys)."""
    return opts.get("gpg_keydir") or os.path.join(
        opts.get("config_dir") or os.path.dirname(opts.get("conf_file") or "/etc/salt/master"),
        "gpgkeys")


class _WithoutGpg(collections.abc.Mapping):
    """The master's renderers with ``gpg`` passing data through: a file's structure, its
    values still encrypted (no warning logged, unlike a renderer_blacklist entry)."""

    def __init__(self, renderers):
        self._renderers = renderers

    def __getitem__(self, name):
        if name == "gpg":
            return _pass_through
        return self._renderers[name]

    def __iter__(self):
        return iter(self._renderers)

    def __len__(self):
        return len(self._renderers)


def _pass_through(data, saltenv="base", sls="", **_kwargs):  # pylint: disable=unused-argument
    return data


STATUS_RE = re.compile(r"\[GNUPG:\] (NO_SECKEY|ENC_TO) ([0-9A-Fa-f]+)")


def _reason(message, keyring):
    """Why gpg could not decrypt, from the renderer's error (gpg's status lines and
    messages, which never hold the plain text)."""
    if "GPG unavailable" in message:
        return "the gpg program is not installed on the master (Debian: apt-get install gnupg)"
    missing = sorted({k.upper() for tag, k in STATUS_RE.findall(message) if tag == "NO_SECKEY"})
    where = "the master's key ring (gpg_keydir %s%s)" % (
        keyring, "" if os.path.isdir(keyring) else ", which does not exist")
    if missing:
        return ("it was encrypted for key %s, whose secret key is not in %s"
                % (" or ".join(missing), where))
    said = [m.strip() for m in re.findall(r"gpg: ([^\\\n']+)", message)]
    return "gpg could not decrypt it with %s%s" % (where, ": " + said[-1] if said else "")


def explain_render_failure(pillar, sls, saltenv="base"):
    """Problems naming each value of pillar file ``sls`` that Salt's gpg renderer cannot
    decrypt with the master's key ring, or [] when the file's pipeline has no ``gpg`` step
    or every value decrypts (its failure is something else).

    The file is rendered as Salt renders it, with the ``gpg`` step passing data through;
    each PGP message is then given to Salt's own gpg renderer (the plain text it returns is
    dropped)."""
    import salt.exceptions     # pylint: disable=import-outside-toplevel  (master side only)
    import salt.template       # pylint: disable=import-outside-toplevel
    opts = pillar.opts
    path = pillar.client.get_state(sls, saltenv).get("dest")
    if not path or "gpg" not in pipeline(path):
        return []
    try:
        data = salt.template.compile_template(
            path, _WithoutGpg(pillar.rend), opts["renderer"], opts["renderer_blacklist"],
            opts["renderer_whitelist"], saltenv, sls, _pillar_rend=True)
    except Exception:  # pylint: disable=broad-except  (a failure before gpg: not ours to explain)
        return []
    if not isinstance(data, dict):
        return []
    gpg = pillar.rend["gpg"]
    keyring = keydir(opts)
    problems = []
    for where, value in ciphertexts(data, ""):
        try:
            out = gpg(value, saltenv=saltenv, sls=sls)
        except salt.exceptions.SaltRenderError as exc:
            reason = _reason(str(exc), keyring)
        else:
            if not is_ciphertext(out):
                continue
            reason = "gpg could not decrypt it with the master's key ring (gpg_keydir %s)" % keyring
        problems.append("%s (pillar SLS %s): %s: cannot be decrypted: %s" % (
            path, sls, where.lstrip(":"), reason))
    return problems


# ------------------------------------------------------------------ encrypting
class EncryptError(RuntimeError):
    pass


def encrypt(secret, recipient, homedir=None, gpg=None):
    """The ASCII-armored PGP message of ``secret`` (a str) for ``recipient`` (a key id,
    fingerprint or e-mail address of a public key in ``homedir``, gpg's default key ring
    when None), as Salt's documentation makes it: ``gpg --armor --batch --trust-model always
    --encrypt -r RECIPIENT``. The secret goes to gpg on stdin, never on its command line."""
    if not isinstance(recipient, str) or not recipient.strip() or recipient.startswith("-"):
        raise EncryptError("recipient: expected the key id, fingerprint or e-mail address of "
                           "the master's public key, got %r" % (recipient,))
    if not isinstance(secret, str) or not secret:
        raise EncryptError("secret: expected a non-empty value on stdin")
    if re.search(r"[\x00-\x1f\x7f]", secret):
        raise EncryptError("secret: it contains a control character (a line break, tab, NUL...): "
                           "no password of the pillar may (the value was not encrypted)")
    exe = gpg or shutil.which("gpg")
    if not exe:
        raise EncryptError("gpg is not installed (Debian: apt-get install gnupg)")
    cmd = [exe, "--armor", "--batch", "--trust-model", "always", "--encrypt", "-r", recipient]
    if homedir:
        cmd[1:1] = ["--homedir", homedir]
    res = subprocess.run(cmd, input=secret.encode("utf-8"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60, check=False)
    text = res.stdout.decode("ascii", "replace")
    if res.returncode != 0 or BEGIN not in text:
        said = res.stderr.decode("utf-8", "replace").strip().splitlines()
        raise EncryptError("gpg could not encrypt for %s%s (is the master's public key in the "
                           "key ring? gpg --homedir DIR --import master.asc)" % (
                               recipient, ": " + said[-1] if said else ""))
    return text.strip() + "\n"


def yaml_block(armored, indent=0, name=None):
    """The message as a YAML literal block to paste into a pillar file: ``NAME: |`` (or a
    bare ``|``) at ``indent`` spaces, the message's lines two spaces deeper."""
    pad = " " * indent
    head = "%s%s: |" % (pad, name) if name else "%s|" % pad
    return "\n".join([head] + [(pad + "  " + line) if line else "" for line in
                               armored.strip().splitlines()]) + "\n"


def encrypted_files(paths):
    """The files among ``paths`` that hold values for the gpg renderer (a shebang ending in
    gpg, or a PGP message in the text): what an overwrite in plain text would downgrade."""
    found = []
    for path in paths:
        if "gpg" in pipeline(path):
            found.append(path)
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                if BEGIN in fh.read():
                    found.append(path)
        except OSError:
            continue
    return found
