"""Progress lines of a runner, printed as they happen (pigsty_progress.report fires each as
a ``progress`` event with this outputter): the line itself, nothing around it. With
``--out=json`` salt-run prints the event as JSON instead. Standard library only.

    salt-run pigsty_orch.run orch.site
"""
__virtualname__ = "pigsty_progress"


def __virtual__():
    return __virtualname__


def output(data, **kwargs):  # pylint: disable=unused-argument
    """``data``: what salt-run hands an event's outputter, {"suffix", "event": {"message"}}."""
    if isinstance(data, dict) and isinstance(data.get("event"), dict) and "message" in data["event"]:
        return str(data["event"]["message"])
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return str(data)
