"""Bad input to a runner: a refusal dict with retcode 1 (salt-run exits on it) and retcode 1 in
the runner's __context__ (an orchestration's salt.runner state fails on it), whichever code
raised the SaltInvocationError. The real salt-run: tests/functional/test_salt_run_refusals.py."""
import contextvars
import inspect

import pytest
import salt.loader.context
import salt.utils.args

import pigsty_invalid
from loader import load_module


def test_refusal_sets_the_retcode_and_names_the_field():
    context = {}
    out = pigsty_invalid.refusal("cluster: expected a cluster name", {"__context__": context})
    assert out == {"result": False, "retcode": 1, "comment": "cluster: expected a cluster name"}
    assert context == {"retcode": 1}
    assert pigsty_invalid.refusal("x", None)["retcode"] == 1              # outside Salt: no context


def test_refusal_sets_the_retcode_through_salt_s_own_loader_context():
    """What Salt's loader puts in a runner's globals is a NamedLoaderContext, not a dict."""
    named = salt.loader.context.NamedLoaderContext("__context__", salt.loader.context.LoaderContext(), {})
    contextvars.copy_context().run(lambda: pigsty_invalid.refusal("cluster: x", {"__context__": named}))
    assert named.value() == {"retcode": 1}


def test_a_decorated_function_looks_like_the_runner_s_own_to_salt():
    """Salt reads the argument spec (through __wrapped__), the docstring for salt-run -d, the
    module name, and injects __jid_event__ into the function's __globals__."""
    mod = load_module("_runners/pigsty_orch.py", opts={"id": "meta_master"}, context={})
    func = mod.follow
    assert func.__globals__ is vars(mod) and func.__module__ == mod.__name__
    assert func.__doc__ == func.__wrapped__.__doc__ and "salt-run pigsty_orch.follow" in func.__doc__
    spec = salt.utils.args.get_function_argspec(func)
    assert spec.args == ["timeout"] and inspect.signature(func) == inspect.signature(func.__wrapped__)


def test_other_errors_still_raise():
    mod = load_module("_runners/pigsty_orch.py", opts={"id": "meta_master"}, context={})

    def boom():
        raise RuntimeError("not bad input")
    with pytest.raises(RuntimeError):
        pigsty_invalid.refusing(boom)()
    assert pigsty_invalid.refusing(lambda: 5)() == 5 and mod.__context__ == {}


@pytest.mark.parametrize("relpath, call, field", [
    ("_runners/pigsty_backup.py", lambda m: m.backup("pg-test", type="weekly"), "type:"),
    ("_runners/pigsty_backup.py", lambda m: m.list_(""), "cluster:"),
    ("_runners/pigsty_orch.py", lambda m: m.run("", timeout=10), "mods:"),
    ("_runners/pigsty_orch.py", lambda m: m.follow(timeout="soon"), "timeout:"),
    ("_runners/pigsty_ha.py", lambda m: m.reconcile(test=True), "test:"),
    ("_runners/pigsty_ha.py", lambda m: m.history("../etc"), "cluster"),
])
def test_a_refused_call_returns_retcode_1(relpath, call, field):
    context = {}
    mod = load_module(relpath, opts={"id": "meta_master", "cachedir": "/nonexistent"}, context=context)
    out = call(mod)
    assert out["result"] is False and out["retcode"] == 1 and out["comment"].startswith(field), out
    assert context.get("retcode") == 1


def test_every_public_runner_function_is_decorated():
    for relpath in ("_runners/pigsty.py", "_runners/pigsty_backup.py", "_runners/pigsty_ha.py",
                    "_runners/pigsty_orch.py"):
        mod = load_module(relpath, opts={"id": "meta_master"}, context={})
        public = [n for n, f in vars(mod).items() if inspect.isfunction(f) and not n.startswith("_")
                  and f.__module__ == mod.__name__]
        assert public and all(hasattr(getattr(mod, n), "__wrapped__") for n in public), (
            relpath, [n for n in public if not hasattr(getattr(mod, n), "__wrapped__")])
