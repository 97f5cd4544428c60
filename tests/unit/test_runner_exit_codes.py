"""Bad input to a runner makes salt-run exit 1: Salt prints a SaltInvocationError as "Passed
invalid arguments" (it is also a TypeError) but takes the exit status from the runner's
__context__["retcode"]; pigsty_invalid.error sets it. Checked on each runner that raises."""
import pytest
import salt.exceptions

import pigsty_invalid
from loader import load_module


def test_error_sets_the_runner_s_retcode_and_names_the_field():
    context = {}
    exc = pigsty_invalid.error("cluster: expected a cluster name", {"__context__": context})
    assert isinstance(exc, salt.exceptions.SaltInvocationError) and isinstance(exc, TypeError)
    assert str(exc) == "cluster: expected a cluster name" and context == {"retcode": 1}
    assert str(pigsty_invalid.error("x", None)) == "x"            # outside Salt: no context


def test_error_sets_the_retcode_through_salt_s_own_loader_context():
    """What Salt's loader puts in a runner's globals is a NamedLoaderContext, not a dict."""
    import contextvars
    import salt.loader.context
    loader_context = salt.loader.context.LoaderContext()
    named = salt.loader.context.NamedLoaderContext("__context__", loader_context, {})
    contextvars.copy_context().run(lambda: pigsty_invalid.error("cluster: x", {"__context__": named}))
    assert named.value() == {"retcode": 1}


@pytest.mark.parametrize("relpath, call, field", [
    ("_runners/pigsty_backup.py", lambda m: m.backup("pg-test", type="weekly"), "type:"),
    ("_runners/pigsty_backup.py", lambda m: m.list_(""), "cluster:"),
    ("_runners/pigsty_orch.py", lambda m: m.run("", timeout=10), "mods:"),
    ("_runners/pigsty_orch.py", lambda m: m.follow(timeout="soon"), "timeout:"),
    ("_runners/pigsty_ha.py", lambda m: m.reconcile(test=True), "test:"),
    ("_runners/pigsty_ha.py", lambda m: m.history("../etc"), "cluster"),
])
def test_a_refused_call_leaves_retcode_1(relpath, call, field):
    context = {}
    mod = load_module(relpath, opts={"id": "meta_master", "cachedir": "/nonexistent"}, context=context)
    with pytest.raises(salt.exceptions.SaltInvocationError) as err:
        call(mod)
    assert str(err.value).startswith(field) and context.get("retcode") == 1, (str(err.value), context)
