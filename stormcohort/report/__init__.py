"""The cohort report: one self-contained HTML page with provenance, and a shareable version
with disclosure control.

* :mod:`~stormcohort.report.fmt`         every number's format, through the disclosure policy
                                          (:mod:`stormcohort.disclosure`)
* :mod:`~stormcohort.report.sections`    result tables -> display tables, section by section
* :mod:`~stormcohort.report.comparison`  the comparative-effectiveness section (target-trial emulation)
* :mod:`~stormcohort.report.methods`     the methods text, from the resolved config
* :mod:`~stormcohort.report.limitations` limitations computed from the results
* :mod:`~stormcohort.report.strobe`      the STROBE item -> section map
* :mod:`~stormcohort.report.provenance`  input digests, config digest, versions, git, lineage, run log
* :mod:`~stormcohort.report.inputs`      the pipeline outputs the report reads (the rule's inputs)
* :mod:`~stormcohort.report.render`      loading, context and the report's templates
* :mod:`~stormcohort.report.pages`       the one HTML writer (Jinja2) of every page: report, Table 1, diff
"""
