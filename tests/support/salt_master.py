"""Salt master options for tests that run Salt's own pillar code offline (no daemon, no
network): a master config whose directories are all under a temp dir, with the given
pillar roots."""
import os


def master_opts(tmpdir, pillar_roots, master_id="salt-master"):
    import salt.config      # pylint: disable=import-outside-toplevel
    tmpdir = str(tmpdir)
    opts = salt.config.master_config(os.path.join(tmpdir, "master"))
    opts.update(root_dir=tmpdir, cachedir=os.path.join(tmpdir, "cache"),
                pki_dir=os.path.join(tmpdir, "pki"), sock_dir=os.path.join(tmpdir, "sock"),
                id=master_id, ext_pillar=[], pillar_roots={"base": [str(p) for p in pillar_roots]},
                file_roots={"base": [os.path.join(tmpdir, "srv")]},
                extension_modules=os.path.join(tmpdir, "extmods"))
    return opts
