"""The QA batch report: verdicts.csv, verdicts.jsonl and report.html, a self-contained folder.

No web framework: the HTML is a string template with the table as one embedded JSON blob; the
thumbnails and heatmaps are small WebP files beside it (thumbs/, heatmaps/) that the page loads
lazily by relative path, so the folder opens from a share without a server and reads only the
images on screen.

    writer = ReportWriter(out_dir, resume=False)
    for result in BatchRunner(predictor).run(writer.todo(paths)):
        writer.add(result)
    report = writer.finish(truth=load_truth("labels.csv"), pass_classes=card.pass_classes)
"""

from qa.report.summary import Summary, summarize
from qa.report.truth import Truth, load_truth
from qa.report.writer import ReportError, ReportWriter

__all__ = ["ReportError", "ReportWriter", "Summary", "Truth", "load_truth", "summarize"]
