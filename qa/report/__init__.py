"""The QA batch report: verdicts.csv, verdicts.jsonl and a self-contained report.html.

No web framework: the HTML is a string template with the data as embedded JSON and the
thumbnails and heatmaps as base64 data URIs, so the file opens from a share without a server.

    writer = ReportWriter(out_dir, resume=False)
    for result in BatchRunner(predictor).run(writer.todo(paths)):
        writer.add(result)
    report = writer.finish(truth=load_truth("labels.csv"), pass_classes=card.pass_classes)
"""

from qa.report.summary import Summary, summarize
from qa.report.truth import Truth, load_truth
from qa.report.writer import ReportError, ReportWriter

__all__ = ["ReportError", "ReportWriter", "Summary", "Truth", "load_truth", "summarize"]
