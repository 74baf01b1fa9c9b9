"""Asset group names, as constants."""

PROVIDER = "provider"
ANCHORS = "anchors"
EXPRESSIONS = "expressions"
POSES = "poses"
REPORTS = "reports"
