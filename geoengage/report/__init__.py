"""Model -> report: metrics with subject-bootstrap confidence intervals."""
