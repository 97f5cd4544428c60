"""The metric names a PromQL expression reads: the tests check that every alert rule,
recording rule and dashboard panel reads metrics the exporters do export (unit: against the
exported list; functional and integration: against what a real stack scrapes)."""
import re

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
             "group_right", "bool", "offset", "inf", "nan"}


def metric_names(expr):
    """Metric (and recording rule) names in a PromQL expression: identifiers that are not
    functions, keywords, label names or strings."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)   # strings
    expr = re.sub(r"\{[^}]*\}", "{}", expr)                               # label matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)                              # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", expr):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in _KEYWORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names
