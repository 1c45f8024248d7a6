"""The run report (report.html in every run directory) and the comparison of several runs."""
