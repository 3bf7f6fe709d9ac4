"""Evaluation results -> ``report.json``, ``report.md`` and a self-contained ``report.html``.

The HTML has no external assets (inline CSS, no scripts), so it opens offline. Sections: the
protocol (split, folds, leakage audit; a random split is flagged in red), the metrics of every
estimator beside the majority baseline with 95% subject-bootstrap intervals, per-class
results and confusion matrices, data quality (when given) and the configuration and versions.
"""

from __future__ import annotations

import base64
import html
import json
import platform
from pathlib import Path

from .. import outputs
from .._version import __version__
from ..exceptions import InvalidParameterError
from .explain import feature_label

__all__ = ["render_report", "write_report"]

_HEADLINE = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "auc_roc", "auc_engaged", "minority_recall")
_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}.warn{background:#c62828;color:#fff;padding:.8em;font-weight:bold}
.ok{background:#e8f5e9;padding:.6em}code{background:#f5f5f5;padding:0 3px}"""


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _metric_rows(results: dict[str, dict], headline: list[str]) -> list[list[str]]:
    rows = []
    for name, summary in results.items():
        m = summary["metrics"]
        row = [name] + [f"{m[k]:.3f} [{m['ci95'][k][0]:.3f}, {m['ci95'][k][1]:.3f}]" for k in headline]
        if "calibration" in m:
            c = m["calibration"]
            engaged = f" / {c['ece_engaged']:.3f}" if "ece_engaged" in c else ""
            row.append(f"{c['brier']:.3f} / {c['ece']:.3f}{engaged}")
        rows.append(row)
    return rows


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(results: dict[str, dict], out_dir: str | Path, *, title: str = "geoengage evaluation",
                 protocol: dict[str, object] | None = None, data_quality: dict[str, object] | None = None,
                 config: dict[str, object] | None = None, figures: dict[str, bytes] | None = None,
                 importance: dict[str, float] | None = None, explanations: list[str] | None = None,
                 setup_audit: dict[str, object] | None = None) -> Path:
    """Write the report files into ``out_dir``; return the HTML path.

    Parameters
    ----------
    results : dict
        Estimator name -> :func:`geoengage.report.metrics.summarize` output (include ``"majority"``).
    figures : dict, optional
        Caption -> PNG bytes: embedded in the HTML (base64), saved under ``figures/`` for the Markdown.
    importance : dict, optional
        Feature -> mean absolute SHAP value, most important first.
    explanations : list of str, optional
        Per-window reasons in words (:func:`geoengage.report.explain.explain_windows`).
    setup_audit : dict, optional
        :meth:`geoengage.modeling.audit.SetupAudit.to_dict`: features that identify the subject.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    protocol = protocol or {}
    document = {"title": title, "protocol": protocol, "results": results, "data_quality": data_quality or {},
                "importance": importance or {}, "explanations": explanations or [], "setup_audit": setup_audit,
                "figures": [{"caption": c, "file": f"figures/figure{i}.png"} for i, c in enumerate(figures or {})],
                "config": config or {}, "versions": {"geoengage": __version__, "python": platform.python_version()}}
    outputs.write_text(out / "report.json", json.dumps(document, indent=2, default=str))

    first = next(iter(results.values()))
    headline = [k for k in _HEADLINE if k in first["metrics"]] or list(first["metrics"]["ci95"])
    header = ["estimator", *(f"{k} [95% CI]" for k in headline)]
    if "calibration" in first["metrics"]:
        header.append("Brier / ECE / ECE of P(engaged)" if "ece_engaged" in first["metrics"]["calibration"]
                      else "Brier / ECE")
    rows = _metric_rows(results, headline)
    random_split = first.get("split") == "random"
    audit = first.get("audit", {})
    warning = ("RANDOM SPLIT: windows of the same person are in training and test folds, so these figures "
               "overstate how the model does on new people." if random_split else "")
    no_subjects = first.get("bootstrap_unit") == "windows" or (protocol or {}).get("subjects", 0) is None
    leak_line = (f"Leakage audit: {audit.get('n_subjects_in_train_and_test', 0)} subjects in both train and test; "
                 f"{audit.get('n_near_duplicate_test_windows', 0)} test windows with a near-duplicate in training.")
    if no_subjects:
        leak_line = ("NO SUBJECT IDS: subjects could not be kept apart, so windows of one person may be in training "
                     "and test folds, and the intervals resample windows, not people. Add subject_id to measure "
                     "how the model does on new people.")
    unit = "windows" if no_subjects else "subjects"

    md = [f"# {title}", ""]
    if warning:
        md += [f"**{warning}**", ""]
    md += ["## Protocol", "", *(f"- {k}: {v}" for k, v in protocol.items()), f"- {leak_line}", "",
           f"## Metrics (95% intervals from bootstrapping {unit})", "", _markdown_table(header, rows), ""]
    html_parts = [(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                  f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>")]
    if warning:
        html_parts.append(f"<p class='warn'>{html.escape(warning)}</p>")
    html_parts.append("<h2>Protocol</h2><ul>" + "".join(
        f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in protocol.items()) + "</ul>")
    bad = no_subjects or audit.get("n_subjects_in_train_and_test")
    html_parts.append(f"<p class='{'warn' if bad else 'ok'}'>{html.escape(leak_line)}</p>")
    html_parts.append(f"<h2>Metrics (95% intervals from bootstrapping {unit})</h2>" + _html_table(header, rows))
    for name, summary in results.items():
        m = summary["metrics"]
        if "per_class" not in m:
            continue  # a regressor: no classes
        classes = [str(c) for c in summary["classes"]]
        per_class = [[c, _fmt(v["precision"]), _fmt(v["recall"]), _fmt(v["f1"]), str(v["support"])]
                     for c, v in m["per_class"].items()]
        confusion = [[f"true {c}", *map(str, row)] for c, row in zip(classes, m["confusion_matrix"])]
        md += [f"### {name}", "", _markdown_table(["class", "precision", "recall", "F1", "support"], per_class), "",
               _markdown_table(["", *(f"pred {c}" for c in classes)], confusion), ""]
        html_parts.append(f"<h3>{html.escape(name)}</h3>"
                          + _html_table(["class", "precision", "recall", "F1", "support"], per_class)
                          + _html_table(["", *(f"pred {c}" for c in classes)], confusion))
    if figures:
        (out / "figures").mkdir(exist_ok=True)
        md += ["## Figures", ""]
        html_parts.append("<h2>Figures</h2>")
        for number, (caption, png) in enumerate(figures.items()):
            outputs.write_bytes(out / "figures" / f"figure{number}.png", png)
            md += [f"![{caption}](figures/figure{number}.png)", ""]
            html_parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,"
                              f"{base64.b64encode(png).decode()}'><figcaption>{html.escape(caption)}</figcaption>"
                              "</figure>")
    if importance:
        rows_imp = [[feature_label(name), name, f"{value:.4f}"] for name, value in list(importance.items())[:20]]
        header_imp = ["feature", "column", "mean |SHAP|"]
        md += ["## Explanations (SHAP)", "", _markdown_table(header_imp, rows_imp), ""]
        html_parts.append("<h2>Explanations (SHAP)</h2>" + _html_table(header_imp, rows_imp))
    if explanations:
        md += ["### Example windows", "", *(f"- {text}" for text in explanations), ""]
        html_parts.append("<h3>Example windows</h3><ul>" + "".join(
            f"<li>{html.escape(text)}</li>" for text in explanations) + "</ul>")
    if setup_audit:
        md_audit, html_audit = _audit_section(setup_audit)
        md += md_audit
        html_parts.append(html_audit)
    if data_quality:
        md += ["## Data quality", "", *(f"- {k}: {v}" for k, v in data_quality.items()), ""]
        html_parts.append("<h2>Data quality</h2><ul>" + "".join(
            f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in data_quality.items()) + "</ul>")
    versions = document["versions"]
    md += ["## Configuration and versions", "", "```json", json.dumps({"config": config or {}, "versions": versions},
                                                                      indent=2, default=str), "```", ""]
    html_parts.append("<h2>Configuration and versions</h2><pre>" + html.escape(
        json.dumps({"config": config or {}, "versions": versions}, indent=2, default=str)) + "</pre></body></html>")
    outputs.write_text(out / "report.md", "\n".join(md))
    outputs.write_text(out / "report.html", "".join(html_parts))
    return out / "report.html"


def _audit_section(audit: dict[str, object]) -> tuple[list[str], str]:
    """The set-up audit: the whole set's identity score and the features most tied to the person."""
    flagged = list(audit.get("flagged", []))  # type: ignore[arg-type]
    summary = (f"Whole feature set identifies the subject with score {audit['whole_set_identity_score']:.2f} "
               f"(0 chance, 1 perfect; {audit['n_subjects']} subjects, folds grouped by {audit['grouped_by']}). ")
    summary += (f"{len(flagged)} features have at least {audit['flag_at']:.0%} of their variance between subjects "
                f"(set-up or person, not behaviour): {', '.join(flagged)}." if flagged else
                f"No feature has {audit['flag_at']:.0%} or more of its variance between subjects.")
    rows = [[feature_label(str(f["feature"])), str(f["feature"]), f"{f['eta2']:.2f}", f"{f['identity_score']:.2f}",
             "yes" if f["flagged"] else ""] for f in list(audit.get("features", []))[:15]]  # type: ignore[index]
    header = ["feature", "column", "variance between subjects (eta²)", "identity score", "flagged"]
    md = ["## Set-up audit", "", summary, "", _markdown_table(header, rows), ""]
    page = (f"<h2>Set-up audit</h2><p class='{'warn' if flagged else 'ok'}'>{html.escape(summary)}</p>"
            + _html_table(header, rows))
    return md, page


def render_report(report_json: str | Path, out_dir: str | Path) -> Path:
    """Render ``report.html``/``.md``/``.json`` again from a ``report.json`` (and its ``figures/``) into ``out_dir``."""
    source = Path(report_json)
    if source.is_dir():
        source = source / "report.json"
    try:
        document = json.loads(source.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InvalidParameterError(f"{source}: not a geoengage report.json ({err}).") from err
    figures = {f["caption"]: (source.parent / f["file"]).read_bytes() for f in document.get("figures", [])
               if (source.parent / f["file"]).is_file()}
    return write_report(document["results"], out_dir, title=document.get("title", "geoengage evaluation"),
                        protocol=document.get("protocol"), data_quality=document.get("data_quality"),
                        config=document.get("config"), figures=figures, importance=document.get("importance"),
                        explanations=document.get("explanations"), setup_audit=document.get("setup_audit"))
