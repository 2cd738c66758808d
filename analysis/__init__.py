"""Which process settings make defects: verdicts joined with process parameters, the drivers ranked,
the best window suggested.

    from analysis import PartRecord, analyze
    result = analyze(records)            # records: PartRecord per logged verdict
    result.top_drivers, result.window    # ranked drivers; the settings window to run in
    write_report(result, Path("out"))    # analysis.report: report.html + summary.json

Pure computation on records (numpy, scikit-learn, scipy); the verdict log is read by the caller.
"""

from analysis.run import ProcessAnalysis, analyze
from analysis.table import PartRecord

__all__ = ["PartRecord", "ProcessAnalysis", "analyze"]
