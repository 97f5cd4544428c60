"""Bad input to a runner: salt-run must exit 1 on it, an orchestration must see a failure.

What Salt 3008 does with a runner's SaltInvocationError (salt/client/mixins.py, salt/cli/run.py):
it catches it as the TypeError it also is, prints "Passed invalid arguments: <message>" and the
docstring, and ``salt-run`` exits **0**: the CLI takes its exit status only from a ``retcode`` in
the runner's returned dict. An orchestration's ``salt.runner`` state takes success from the
runner's ``__context__["retcode"]``. So a refusal must do both; ``refusing`` makes every public
runner function do it, whichever code raised (the runner itself or a ``_utils`` module)."""
import collections.abc
import functools
import types

import salt.exceptions


def refusal(message, runner_globals=None):
    """The refusal a runner returns: ``{"result": False, "retcode": 1, "comment": message}``;
    the runner's ``__context__`` (from ``runner_globals``, absent outside Salt) gets retcode 1."""
    context = (runner_globals or {}).get("__context__")
    if isinstance(context, collections.abc.MutableMapping):   # Salt's NamedLoaderContext is one
        context["retcode"] = 1
    return {"result": False, "retcode": 1, "comment": message}


def refusing(func):
    """Decorate a public runner function: a SaltInvocationError raised inside it becomes
    ``refusal(message)``. The wrapper is built with the runner module's globals, not this
    module's: Salt's loader reads a loaded function's ``__globals__`` as its module's (the
    runner client injects ``__jid_event__`` there, which progress events need)."""
    invalid, refuse = salt.exceptions.SaltInvocationError, refusal

    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except invalid as exc:
            return refuse(str(exc), func.__globals__)

    rebuilt = types.FunctionType(wrapper.__code__, func.__globals__, func.__name__,
                                 None, wrapper.__closure__)
    return functools.update_wrapper(rebuilt, func)
