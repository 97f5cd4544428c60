"""Bad input to a runner: the SaltInvocationError to raise, with the runner's exit status set.

`salt-run` prints a runner's SaltInvocationError as "Passed invalid arguments: <message>" (Salt
catches it as the TypeError it also is) but takes its exit status from the runner's
``__context__["retcode"]``, 0 unless set: a refusal would look like success to a script. The
runners raise ``error(message, globals())`` instead of the bare exception."""
import collections.abc

import salt.exceptions


def error(message, runner_globals=None):
    """The SaltInvocationError for ``message``; the runner's ``__context__`` (from
    ``runner_globals``, absent outside Salt) gets ``retcode`` 1 so that salt-run exits 1."""
    context = (runner_globals or {}).get("__context__")
    if isinstance(context, collections.abc.MutableMapping):   # Salt's NamedLoaderContext is one
        context["retcode"] = 1
    return salt.exceptions.SaltInvocationError(message)
